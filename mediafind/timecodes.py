"""Times as people write them: 83.5, 1:23, 1:02:03."""

from __future__ import annotations

import math

from mediafind.errors import UsageError


def format_time(seconds: float | None) -> str:
    """83.4 -> '1:23'; 3723 -> '1:02:03'; None -> ''."""
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def parse_time(text: str) -> float:
    """'83', '83.5', '1:23' or '1:02:03' -> seconds. After the first part,
    minutes and seconds are below 60: '9:99' is a typo, not 10:39."""
    parts = text.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3 or any(part.strip() == "" for part in parts):
            raise ValueError
        values = [float(part) for part in parts]
        if any(value < 0 or not math.isfinite(value) for value in values):
            raise ValueError
        if any(value >= 60 for value in values[1:]):
            raise ValueError
    except ValueError:
        raise UsageError(
            f"{text!r} is not a time; use seconds (83.5), m:ss or h:mm:ss "
            "(minutes and seconds below 60)"
        ) from None
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return seconds
