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

# A thumbnail's box in the table, in terminal cells: a landscape picture is
# this wide, a portrait one this tall (cells are about twice as tall as wide).
PREVIEW_COLUMNS = 12
PREVIEW_ROWS = 5


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


def result_previews(
    store: Store, results: Sequence[SearchResult], cache: ThumbnailCache | None = None
) -> list[Any]:
    """A picture to put in the results table for each result (photos, and
    videos at their best moment), or "" where there is none (a recording, a
    file deleted since it was indexed). Thumbnails not yet made are made
    side by side, one per core."""
    from concurrent.futures import ThreadPoolExecutor

    cache = cache or cache_for(store)
    Image, half_blocks = _renderable_class()
    if half_blocks and os.environ.get("NO_COLOR", ""):
        # Half blocks are pictures made of colour, which NO_COLOR takes away.
        return ["" for _ in results]
    records = store.files_at([result.path for result in results])

    def preview(result: SearchResult) -> Any:
        record = records.get(result.path)
        if record is None or result.kind not in ("image", "video"):
            return ""
        try:
            data = thumbnail(record, result.start, cache)
        except MediaError:
            return ""
        return _Safe(_sized(Image, data))

    with ThreadPoolExecutor(config.usable_cores()) as pool:
        return list(pool.map(preview, results))


def _sized(Image: Any, data: bytes) -> Any:
    """A thumbnail as `Image`, a landscape one PREVIEW_COLUMNS wide, a portrait
    one PREVIEW_ROWS tall."""
    from io import BytesIO

    from PIL import Image as PILImage

    picture = PILImage.open(BytesIO(data))
    picture.load()
    if picture.width >= picture.height:
        return Image(picture, width=PREVIEW_COLUMNS, height="auto")
    return Image(picture, width="auto", height=PREVIEW_ROWS)


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
