"""Content fingerprints that survive renames and copies."""

from __future__ import annotations

import hashlib
import os

# Files up to this size are hashed whole: a photo is read anyway to decode it.
_WHOLE_FILE_LIMIT = 16 * 1024 * 1024
# Larger files (videos, model weights) are fingerprinted by their size and
# three 1 MiB samples, so a 4 GB video costs 3 MiB of reading, not 4 GB.
_SAMPLE = 1024 * 1024


def content_hash(path: str | os.PathLike[str]) -> str:
    """A hex digest of the file's content (sampled beyond 16 MiB)."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        if size <= _WHOLE_FILE_LIMIT:
            while chunk := handle.read(_SAMPLE):
                digest.update(chunk)
        else:
            for offset in (0, size // 2 - _SAMPLE // 2, size - _SAMPLE):
                handle.seek(offset)
                digest.update(handle.read(_SAMPLE))
    return digest.hexdigest()
