"""When a photo was taken or a recording made, from the file's own metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_OFFSET_TIME_ORIGINAL = 36881
_DATETIME = 306


def exif_capture_time(exif: Any) -> float | None:
    """EXIF DateTimeOriginal (else DateTime) as a Unix time; local time unless
    the camera recorded its UTC offset."""
    try:
        details = exif.get_ifd(_EXIF_IFD)
    except Exception:
        details = {}
    text = details.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if not isinstance(text, str):
        return None
    offset = details.get(_OFFSET_TIME_ORIGINAL)
    stamp = text.strip().replace("\x00", "")
    try:
        when = datetime.strptime(stamp[:19], "%Y:%m:%d %H:%M:%S")
        if isinstance(offset, str) and offset.strip():
            when = datetime.fromisoformat(when.isoformat() + offset.strip())
        return when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def container_capture_time(container: Any) -> float | None:
    """A video's or recording's creation_time tag (ISO 8601) as a Unix time."""
    text = (container.metadata or {}).get("creation_time")
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        stamp = when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    # Some cameras write 1970 or 1904 when their clock was never set.
    return stamp if stamp > 86400 * 365 * 2 else None
