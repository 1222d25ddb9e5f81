"""Small pictures of results: photos and video moments, made once and kept.

A thumbnail is a JPEG about 256 px on its long side, kept in the per-user
cache folder (`~/.cache/mediafind/thumbnails` on Linux: config.thumbnails_root),
in a folder of the index's own (so that pruning one index never drops
another's), named by the file's content hash, and for a video by the moment's
time too: a moved, renamed or copied file has the same hash, so its
thumbnails are found again without decoding anything.

They are made when first viewed, not while indexing (bench/README.md, on
this project's 2-core machine): a 1024x768 photo costs 6 ms, a 12-megapixel
one 36 ms and a moment of a 720p video 81 ms, so a first page of 20 photos is
ready in under 0.2 s even with none made yet. Made while indexing, from the
picture already decoded for the model, each would cost 2.3 ms, but every
photo and kept frame would get one: 100,000 photos would write over a
gigabyte of thumbnails, more than the cache keeps, most never looked at.

Each index's cache is bounded (`DEFAULT_LIMIT_BYTES`): past the limit, the
thumbnails least recently used go first. A thumbnail's modification time is
its last use (refreshed at most once a day, so looking is not writing).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mediafind import config
from mediafind.db import FileRecord, Store
from mediafind.errors import MediaError

if TYPE_CHECKING:
    from PIL.Image import Image

# Long side in pixels: about one pixel per CSS pixel in the page's cards
# (13-16 rem wide) and plenty for a dozen terminal cells; 3-13 KB as JPEG
# (bench/README.md).
THUMBNAIL_SIDE = 256
JPEG_QUALITY = 82
# About 40,000 thumbnails of detailed photos: a large library's worth of browsing.
DEFAULT_LIMIT_BYTES = 512 * 1024 * 1024
# Eviction frees this much more than needed, so it is not run on every write.
EVICT_TO_SHARE = 0.9
# A thumbnail used again is marked as recently used at most this often.
TOUCH_EVERY_SECONDS = 24 * 3600
# A temporary file this old is left over from a killed process.
STALE_TEMP_SECONDS = 3600
_SUFFIX = ".jpg"
_TEMP_PREFIX = ".tmp-"


class NoThumbnail(MediaError):
    """The file has no picture to show (a recording), or cannot give one now."""


@dataclass(frozen=True)
class CacheUsage:
    files: int
    bytes: int


def thumbnail_key(content_hash: str, kind: str, time: float | None = None) -> str:
    """A thumbnail's name: the content hash, and for a video the moment in
    milliseconds (a moment's stored start is the time of one frame, so every
    view of it asks for the same name)."""
    if kind == "video":
        return f"{content_hash}-{round(max(time or 0.0, 0.0) * 1000)}"
    return content_hash


def _hash_of(name: str) -> str:
    return name.removesuffix(_SUFFIX).split("-", 1)[0]


class ThumbnailCache:
    """Thumbnails on disk, written atomically, bounded in size.

    Safe to share between threads and processes: a thumbnail appears whole (a
    temporary file renamed over it) or not at all, and one deleted by another
    process's eviction is simply made again.
    """

    def __init__(self, root: Path, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        self.root = root
        self.limit_bytes = limit_bytes
        # Bytes held, learnt by one scan on the first write, then counted.
        self._bytes: int | None = None

    def path(self, key: str) -> Path:
        # Two hex digits of fan-out keep folders small (30,000 files: ~120 each).
        return self.root / key[:2] / f"{key}{_SUFFIX}"

    def get(self, key: str) -> bytes | None:
        """The thumbnail's JPEG, or None when it is not in the cache."""
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
                modified = os.fstat(handle.fileno()).st_mtime
        except OSError:
            return None
        now = time.time()
        if now - modified > TOUCH_EVERY_SECONDS:
            with contextlib.suppress(OSError):
                os.utime(path, (now, now))
        return data

    def put(self, key: str, data: bytes) -> None:
        """Keep a thumbnail; a full disk or a read-only cache only costs speed."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError:
            return
        if self._bytes is None:
            self._bytes = self.usage().bytes
        else:
            self._bytes += len(data)
        if self._bytes > self.limit_bytes:
            self.evict(int(self.limit_bytes * EVICT_TO_SHARE))

    def _entries(self) -> Iterator[os.DirEntry[str]]:
        try:
            folders = list(os.scandir(self.root))
        except OSError:
            return
        for folder in folders:
            if not folder.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError), os.scandir(folder.path) as entries:
                yield from (entry for entry in entries if entry.is_file(follow_symlinks=False))

    def usage(self) -> CacheUsage:
        """How many thumbnails the cache holds, and their bytes on disk."""
        files = size = 0
        for entry in self._entries():
            with contextlib.suppress(OSError):
                size += entry.stat(follow_symlinks=False).st_size
                files += not entry.name.startswith(_TEMP_PREFIX)
        return CacheUsage(files, size)

    def evict(self, target_bytes: int) -> int:
        """Delete the least recently used thumbnails until at most
        `target_bytes` remain; how many were deleted."""
        entries = []
        for entry in self._entries():
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                entries.append((info.st_mtime, info.st_size, entry.path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in entries:
            if total <= target_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
            total -= size
        self._bytes = total
        return removed

    def remove_unindexed(self, indexed_hashes: set[str]) -> CacheUsage:
        """Delete the thumbnails of content no longer in the index, and
        temporary files left by killed processes; what was deleted."""
        files = size = 0
        now = time.time()
        for entry in self._entries():
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.name.startswith(_TEMP_PREFIX):
                doomed = now - info.st_mtime > STALE_TEMP_SECONDS
            else:
                doomed = _hash_of(entry.name) not in indexed_hashes
            if doomed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    files += not entry.name.startswith(_TEMP_PREFIX)
                    size += info.st_size
        self._bytes = None
        return CacheUsage(files, size)


def cache_for(store: Store) -> ThumbnailCache:
    """The thumbnails of an index's files: a folder of the per-user cache
    named after the index file's real path."""
    name = os.fsencode(os.path.realpath(store.path))
    return ThumbnailCache(
        config.thumbnails_root() / hashlib.blake2b(name, digest_size=8).hexdigest()
    )


def prune_thumbnails(store: Store) -> CacheUsage:
    """Delete the thumbnails of files no longer in the index, for `mediafind prune`."""
    return cache_for(store).remove_unindexed(store.content_hashes())


# Making thumbnails ----------------------------------------------------------


def check_unchanged(record: FileRecord) -> os.stat_result:
    """The file's status, when it is still the regular file that was indexed
    (same size and modification time); NoThumbnail saying why not."""
    try:
        info = os.stat(record.path)
    except FileNotFoundError:
        raise NoThumbnail("no longer on disk (deleted or moved since it was indexed)") from None
    except OSError as error:
        raise NoThumbnail(error.strerror or str(error)) from None
    if not stat.S_ISREG(info.st_mode):
        raise NoThumbnail("not a regular file any more")
    if info.st_size != record.size or info.st_mtime_ns != record.mtime_ns:
        raise NoThumbnail("changed since it was indexed; run mediafind index to see it")
    return info


def picture(path: str, kind: str, time: float | None = None) -> Image:
    """The upright picture of a photo, or of a video at `time` seconds, at
    thumbnail size. Raises MediaError (NoThumbnail for a recording)."""
    if kind == "image":
        from mediafind.media.image import load_image

        image = load_image(path, THUMBNAIL_SIDE).image
    elif kind == "video":
        from mediafind.media.video import frame_at

        image = frame_at(path, max(time or 0.0, 0.0), min_side=THUMBNAIL_SIDE)
    else:
        raise NoThumbnail(f"a {kind} file has no picture")
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), reducing_gap=2.0)
    return image


def encode_jpeg(image: Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def moment_of(record: FileRecord, time: float | None) -> float | None:
    """The time a thumbnail of `record` shows: for a video, `time` to the
    millisecond (as named in the cache: what is made is what is named)."""
    return round(max(time or 0.0, 0.0), 3) if record.kind == "video" else None


def cache_key(record: FileRecord, time: float | None = None) -> str | None:
    """The cache's name for the thumbnail of `record` at `time`; None for a
    file indexed without a content hash (it is made each time)."""
    if record.content_hash is None:
        return None
    return thumbnail_key(record.content_hash, record.kind, moment_of(record, time))


def thumbnail(record: FileRecord, time: float | None, cache: ThumbnailCache) -> bytes:
    """The JPEG thumbnail of an indexed photo, or of a video at `time` seconds:
    from the cache, else made from the file (when it is still the one indexed)
    and kept. Raises NoThumbnail or MediaError saying why there is none."""
    if record.kind not in ("image", "video"):
        raise NoThumbnail(f"a {record.kind} file has no picture")
    key = cache_key(record, time)
    if key is not None and (cached := cache.get(key)) is not None:
        return cached
    check_unchanged(record)
    data = encode_jpeg(picture(record.path, record.kind, moment_of(record, time)))
    if key is not None:
        cache.put(key, data)
    return data
