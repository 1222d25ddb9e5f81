"""Content fingerprints that survive renames and copies, and safe opening of media files."""

from __future__ import annotations

import hashlib
import io
import os
import stat

from mediafind.errors import MediaError

_CHUNK = 1024 * 1024


def open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    """Open a file for reading, refusing anything but a regular file.

    A file swapped for a FIFO after the scan would block `open()` forever (a
    FIFO opens only once a writer appears), and a device could be endless; the
    open never blocks (O_NONBLOCK, which changes nothing for regular files)
    and the type is checked on the opened handle, not on the path.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError as error:
        raise MediaError("file disappeared while indexing") from error
    except PermissionError as error:
        raise MediaError("permission denied") from error
    except OSError as error:
        raise MediaError(error.strerror or str(error)) from error
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise MediaError("not a regular file any more (a FIFO, device or socket)")
    return os.fdopen(descriptor, "rb")


def content_hash(path: str | os.PathLike[str]) -> str:
    """A hex digest of the file's whole content.

    Whole, because vectors reused by hash must belong to exactly this content:
    an earlier version sampled 3 MiB of files over 16 MiB, so an edit outside
    the samples kept stale vectors. Hashing reads at over 1 GB/s on one core
    (bench/README.md), and the file is read anyway to be decoded. The size
    comes first, as it always has, so stored hashes of files up to 16 MiB stay
    valid. Raises MediaError when the file cannot be read.
    """
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        digest = hashlib.blake2b(digest_size=20)
        digest.update(size.to_bytes(8, "little"))
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        try:
            while count := handle.readinto(buffer):
                digest.update(view[:count])
        except OSError as error:
            raise MediaError(f"cannot read the file ({error.strerror or error})") from error
    return digest.hexdigest()


# Model weights are identified by their size and three 1 MiB samples: a model
# file is hundreds of megabytes, read on every load, and replaced whole or not
# at all. The index keys its vectors by this value, so it must never change.
_WHOLE_FILE_LIMIT = 16 * 1024 * 1024


def weights_fingerprint(path: str | os.PathLike[str]) -> str:
    """A hex digest identifying a model's weight file (sampled beyond 16 MiB)."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        if size <= _WHOLE_FILE_LIMIT:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        else:
            for offset in (0, size // 2 - _CHUNK // 2, size - _CHUNK):
                handle.seek(offset)
                digest.update(handle.read(_CHUNK))
    return digest.hexdigest()
