"""Thumbnails in the terminal, for `mediafind search --preview`.

Pictures are drawn by textual-image, which asks the terminal what it can
show: sixel (xterm, foot, WezTerm, mlterm, Windows Terminal, and iTerm2, which
answers as a sixel terminal), else the kitty graphics protocol (kitty), else
coloured Unicode half blocks, which every terminal with colour shows.

Asking means writing a query to the terminal and reading its answer from
standard input, so pictures are drawn only when both standard output and
standard input are the terminal: piped, redirected or captured, the table is
the plain one and no escape sequence is ever written.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from rich.measure import Measurement

from mediafind import config
from mediafind.db import Store
from mediafind.errors import MediaError
from mediafind.thumbnails import ThumbnailCache, cache_for, thumbnail

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from mediafind.query import SearchResult

# A thumbnail's width in the table: a fifth of the terminal's columns (32
# cells on a 160-column terminal: 32 by 24 coloured half blocks for a 4:3
# photo, enough to tell a beach from a birthday; 12 cells were not), within
# these bounds: smaller is not a picture, larger pushes the paths away.
PREVIEW_SHARE = 5
PREVIEW_MIN_COLUMNS = 12
PREVIEW_MAX_COLUMNS = 40
# What stands for a recording, which has no picture: a sound.
SOUND_SYMBOL = "♪"


def terminal_shows_pictures(stream: IO[str] | None = None) -> bool:
    """Whether pictures may be drawn on `stream` (stdout by default): it and
    standard input are the same kind of thing, a terminal that is not "dumb"."""
    out = stream or sys.stdout
    stdin = sys.__stdin__
    try:
        if not (out.isatty() and stdin is not None and stdin.isatty()):
            return False
        # A terminal without a size (some serial consoles) cannot place pictures.
        columns, lines = os.get_terminal_size(out.fileno())
    except (AttributeError, ValueError, OSError):  # a closed or unusual stream
        return False
    # textual-image talks to the process's own terminal, whatever the stream.
    return (
        out is sys.__stdout__ and os.environ.get("TERM", "") != "dumb" and min(columns, lines) > 0
    )


def _renderable_class() -> tuple[Any, bool]:
    """The picture class for this terminal, and whether it draws with half
    blocks; importing textual-image asks the terminal (once per process)
    which protocol it speaks."""
    from textual_image.renderable import HalfcellImage, Image

    return Image, Image is HalfcellImage


def preview_columns(terminal_columns: int) -> int:
    """How many cells wide a thumbnail is on a terminal this wide."""
    share = terminal_columns // PREVIEW_SHARE
    return max(PREVIEW_MIN_COLUMNS, min(PREVIEW_MAX_COLUMNS, share))


def result_previews(
    store: Store,
    results: Sequence[SearchResult],
    cache: ThumbnailCache | None = None,
    columns: int | None = None,
) -> list[Any]:
    """A picture to put in the results table for each result (photos, and
    videos at their best moment), SOUND_SYMBOL for a recording, or "" where
    there is none (a file deleted since it was indexed). Sized for a terminal
    `columns` wide (by default, this one). Thumbnails not yet made are made
    side by side, one per core."""
    from concurrent.futures import ThreadPoolExecutor

    cache = cache or cache_for(store)
    width = preview_columns(columns or shutil.get_terminal_size().columns)
    Image, half_blocks = _renderable_class()
    # Half blocks are pictures made of colour, which NO_COLOR takes away.
    pictures = not (half_blocks and os.environ.get("NO_COLOR", ""))
    records = store.files_at([result.path for result in results]) if pictures else {}

    def preview(result: SearchResult) -> Any:
        if result.kind == "audio":
            return SOUND_SYMBOL
        record = records.get(result.path)
        if record is None or result.kind not in ("image", "video"):
            return ""
        try:
            data = thumbnail(record, result.start, cache)
        except MediaError:
            return ""
        return _Safe(_sized(Image, data, width))

    with ThreadPoolExecutor(config.usable_cores()) as pool:
        return list(pool.map(preview, results))


def _sized(Image: Any, data: bytes, columns: int) -> Any:
    """A thumbnail as `Image` in a box `columns` cells wide and as tall (cells
    are about twice as tall as wide: half as many rows): a landscape picture
    fills its width, a portrait one its height."""
    from io import BytesIO

    from PIL import Image as PILImage

    picture = PILImage.open(BytesIO(data))
    picture.load()
    if picture.width >= picture.height:
        return Image(picture, width=columns, height="auto")
    return Image(picture, width="auto", height=columns // 2)


class _Safe:
    """A picture that, should drawing it fail in a terminal nobody foresaw,
    leaves its cell empty rather than ending the search with a traceback."""

    def __init__(self, picture: Any) -> None:
        self.picture = picture

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        try:
            segments = list(console.render(self.picture, options))
        except Exception:
            segments = []
        yield from segments

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        try:
            return Measurement.get(console, options, self.picture)
        except Exception:
            return Measurement(0, 0)
