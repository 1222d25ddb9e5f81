"""Opening files with PyAV, shared by the video and sound readers."""

from __future__ import annotations

from typing import Any

from mediafind.errors import MediaError, one_line
from mediafind.hashing import open_regular


def open_media(path: str, what: str) -> Any:
    """An open PyAV container; MediaError saying why not (`what`: "video", "audio file")."""
    import av

    # FFmpeg would block forever opening a FIFO swapped in after the scan.
    open_regular(path).close()
    try:
        return av.open(path, metadata_errors="ignore")
    except FileNotFoundError as error:
        raise MediaError("file disappeared while indexing") from error
    except PermissionError as error:
        raise MediaError("permission denied") from error
    except av.error.FFmpegError as error:
        raise MediaError(f"not a readable {what} ({one_line(error)})") from error
