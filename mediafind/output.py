"""Rendering for people (rich tables, progress) and for scripts (JSON, path lists).

Data goes to stdout; progress, warnings and summaries go to stderr, so that
`mediafind search ... --paths | xargs ...` only ever sees paths.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
)
from rich.style import Style
from rich.table import Table
from rich.text import Text

from mediafind.jsontext import json_text
from mediafind.timecodes import format_time

if TYPE_CHECKING:
    # Only for annotations: a search should not import the indexing pipeline.
    from mediafind.db import Root
    from mediafind.duplicates import DuplicateGroup
    from mediafind.events import IndexEvent, IndexSummary
    from mediafind.query import SearchResult
    from mediafind.status import IndexStatus


# What a terminal would act on rather than show: C0 and C1 controls (ESC
# starts escape sequences that clear the screen or set the window title), DEL,
# the bidirectional overrides that make a name display reversed, and the
# surrogate escapes that stand for a name's bytes that are not UTF-8.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\udc80-\udcff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the raw byte of a non-UTF-8 name
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` safe to show a person: control characters and undecodable bytes
    written as escapes (`\\n`, `\\x1b`, `\\xe9`), as `ls` does on a terminal."""
    return _UNPRINTABLE.sub(_escaped, text)


def stderr_line(message: str) -> None:
    """One plain line on stderr: never wrapped, so scripts can grep it, and
    never carrying a file name's control characters to the terminal."""
    sys.stderr.write(printable(" ".join(message.split())) + "\n")
    sys.stderr.flush()


def _write_exact(out: IO[str], text: str) -> None:
    """Write `text` for a program: a file name's bytes exactly as they are on
    disk (surrogate escapes back to the raw bytes), whatever stdout's encoding."""
    data = text.encode("utf-8", "surrogateescape")
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(data.decode("utf-8", "surrogateescape"))
        return
    out.flush()
    buffer.write(data)
    buffer.flush()


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def count(number: int, noun: str) -> str:
    """'1 file', '2 files'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _short(path: str, width: int = 40) -> str:
    """A file's name for a progress line: printable, at most `width` characters."""
    name = printable(os.path.basename(path))
    return name if len(name) <= width else name[: width - 1] + "…"


class _WorkClock:
    """The seconds a pass has spent working: its time less the time spent
    preparing models (loading, converting). The time left is measured by
    this rather than by the wall clock, which a model loading for a minute
    after the first file would make look like a slow library (the estimate
    jumped from 1 s to 6 min); nor by the rate of the last few seconds
    (rich's own), which a pause collapses in the same way. Measured over the
    whole pass, it is steady: a pass works at about one speed."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.started = now()
        self.paused = 0.0
        self.paused_since: float | None = None

    def pause(self) -> None:
        if self.paused_since is None:
            self.paused_since = self.now()

    def resume(self) -> None:
        if self.paused_since is not None:
            self.paused += self.now() - self.paused_since
            self.paused_since = None

    def working(self) -> float:
        until = self.now() if self.paused_since is None else self.paused_since
        return until - self.started - self.paused


class _TimeLeft(ProgressColumn):
    """The time left at the pass's working rate (see _WorkClock)."""

    def __init__(self, clock: _WorkClock) -> None:
        super().__init__()
        self.clock = clock

    def render(self, task: Task) -> Text:
        working = self.clock.working()
        if task.total is None or task.completed <= 0 or working <= 0:
            return Text("-:--:--", style="progress.remaining")
        left = (task.total - task.completed) * working / task.completed
        minutes, seconds = divmod(int(left), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class IndexReporter:
    """Turns indexing events into what a person sees: on a terminal, a spinner
    while a model is prepared, then a progress bar measured in bytes of media
    (so a long video moves it as it is read) with the file being worked on and
    how far into it, or the model being prepared when one is, mid-pass; and
    warning lines, as the problems are found.

    Events come from worker threads too: everything here holds a lock.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, highlight=False)
        self.verbose = verbose
        self.clock = clock
        self.progress: Progress | None = None
        self.status: Any = None
        self.task: Any = None
        self.work = _WorkClock(clock)
        self.lock = threading.RLock()
        self.done_bytes = 0
        self.done_files = 0
        self.total_files = 0
        self.current = ""
        # Files being decoded: path -> (bytes, share of them read so far).
        self.reading: dict[str, tuple[int, float]] = {}
        # Models being prepared, innermost last (a load may convert first):
        # what each is said to be doing, and whether it is done once for good.
        self.preparing: list[tuple[str, bool]] = []

    def __enter__(self) -> IndexReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            if self.status is not None:
                self.status.stop()
            if self.progress is not None:
                self.progress.stop()

    def say(self, line: str) -> None:
        line = printable(" ".join(line.split()))
        if self.progress is not None:
            self.progress.console.print(escape(line), soft_wrap=True, highlight=False)
        elif self.status is not None:
            self.status.console.print(escape(line), soft_wrap=True, highlight=False)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __call__(self, event: IndexEvent) -> None:
        from mediafind.events import (
            FileDone,
            FileProgress,
            ModelPreparing,
            ModelReady,
            Problem,
            ScanDone,
        )

        with self.lock:
            if isinstance(event, ModelPreparing):
                self._preparing(event.name, event.why, event.once)
            elif isinstance(event, ModelReady):
                self._ready(event.name, event.seconds)
            elif isinstance(event, ScanDone):
                self._start(event.to_process, event.work_bytes, event.label)
            elif isinstance(event, Problem):
                self.say(f"mediafind: warning: {event.path}: {_PROBLEMS[event.what]}{event.reason}")
            elif isinstance(event, FileProgress):
                share = min(1.0, event.position / event.duration) if event.duration > 0 else 0.0
                self.reading[event.path] = (event.size, share)
                clock = f" {format_time(event.position)}"
                if event.duration > 0:
                    clock += f"/{format_time(event.duration)}"
                self._update(f"{_short(event.path)}{clock}")
            elif isinstance(event, FileDone):
                self.reading.pop(event.path, None)
                self.done_bytes += event.size
                self.done_files += 1
                self._update(_short(event.path))

    def _preparing(self, name: str, why: str, once: bool) -> None:
        label = printable(f"preparing {name}: {why}")
        self.preparing.append((label, once))
        if self.progress is not None and self.done_files >= self.total_files:
            # The pass is over (the next one loads its models): its bar goes,
            # rather than stay frozen at its last file while the model loads.
            self.progress.stop()
            self.progress = None
        if self.progress is not None:
            # A model prepared mid-pass: said where the file was, and its time
            # kept out of the rate the time left is measured by.
            self.work.pause()
            self._show(_doing(label, once))
        elif self.console.is_terminal:
            shown = escape(_doing(label, once))
            if self.status is None:
                self.status = self.console.status(shown, spinner="dots")
                self.status.start()
            else:
                self.status.update(shown)
        elif self.verbose:
            self.say(f"mediafind: {label}")

    def _ready(self, name: str, seconds: float) -> None:
        once = self.preparing.pop()[1] if self.preparing else True
        if self.preparing:
            # An outer step goes on (the load a conversion was part of).
            outer = _doing(*self.preparing[-1])
            if self.progress is not None:
                self._show(outer)
            elif self.status is not None:
                self.status.update(escape(outer))
        else:
            if self.status is not None:
                self.status.stop()
                self.status = None
            if self.progress is not None:
                self.work.resume()
                self._show(self.current)
        if once and (self.console.is_terminal or self.verbose):
            self.say(f"mediafind: {name} is ready for this CPU ({seconds:.0f} s, once)")

    def _start(self, files: int, work_bytes: int, label: str) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.total_files, self.done_files, self.done_bytes = files, 0, 0
        self.reading.clear()
        self.current = ""
        if not (self.console.is_terminal and files):
            return
        self.work = _WorkClock(self.clock)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn(escape(label)),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[files]}"),
            _TimeLeft(self.work),
            TextColumn("{task.fields[current]}"),
            console=self.console,
            transient=True,
            get_time=self.clock,
        )
        self.task = self.progress.add_task(
            "index", total=max(work_bytes, 1), files=f"0/{files}", current=""
        )
        self.progress.start()

    def _update(self, current: str) -> None:
        self.current = current
        if self.progress is None:
            return
        reading = sum(size * share for size, share in self.reading.values())
        self.progress.update(
            self.task,
            completed=self.done_bytes + reading,
            files=f"{self.done_files}/{self.total_files}",
        )
        if self.work.paused_since is None:
            self._show(current)

    def _show(self, current: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, current=escape(current))


def _doing(label: str, once: bool) -> str:
    """A model's preparation as the spinner says it: a conversion, done once,
    takes long enough to warn of."""
    return f"{label} (this can take a minute)" if once else f"{label} …"


_PROBLEMS = {
    "failed": "",
    "partial": "partly indexed: ",
    "folder": "",
    "root": "",
}


class ModelAnnouncer:
    """For a search: a line on a terminal while a model is prepared for this CPU
    (once, on the first search after installing), so a pause is explained."""

    def __init__(self) -> None:
        self.terminal = sys.stderr.isatty()

    def __call__(self, event: Any) -> None:
        from mediafind.events import ModelPreparing

        if self.terminal and isinstance(event, ModelPreparing):
            stderr_line(f"mediafind: preparing {event.name}: {event.why} (this can take a minute)")


def summary_line(summary: IndexSummary, *, interrupted: bool = False) -> str:
    parts = [
        f"{summary.new} new",
        f"{summary.changed} changed",
        f"{summary.moved} moved",
        *([f"{summary.copied} copied"] if summary.copied else []),
        f"{summary.removed} removed",
        f"{summary.failed} failed",
        *([f"{summary.still_failed} still failed"] if summary.still_failed else []),
        *([f"{summary.partial} partial"] if summary.partial else []),
        f"{summary.unchanged} unchanged",
    ]
    if summary.reused:
        parts.append(f"{summary.reused} reused from identical files")
    if summary.reembedded:
        parts.append(f"{summary.reembedded} re-embedded")
    if summary.words:
        parts.append(f"words read in {count(summary.words, 'file')}")
    head = "interrupted after" if interrupted else "indexed in"
    line = f"mediafind: {head} {summary.elapsed:.1f}s: " + ", ".join(parts)
    if summary.reembed_pending:
        line += (
            f"; {summary.reembed_pending} files in other folders still need re-embedding "
            "before the new model is used"
        )
    return line


def _words(result: SearchResult, query: str | None) -> Text:
    """A result's matched words for the table, around where they matched (the
    library's snippet), those words in bold."""
    from mediafind.words import highlight_spans

    if result.snippet is not None:
        text, marks = result.snippet.text, list(result.snippet.marks)
    else:
        text = one_row(result.text or "")
        marks = highlight_spans(text, query) if query else []
    shown = Text(f"“{printable(text)}”", style="italic")
    if len(printable(text)) == len(text):
        for start, end in marks:
            shown.stylize("bold", start + 1, end + 1)
    return shown


def print_results_table(
    results: Sequence[SearchResult],
    stream: IO[str] | None = None,
    console: Console | None = None,
    query: str | None = None,
    previews: Sequence[Any] | None = None,
) -> None:
    """The results for people; `previews`, one picture (or "") per result,
    adds a column of thumbnails (mediafind.preview makes them)."""
    console = console or Console(file=stream or sys.stdout, highlight=False)
    # The moment column appears once there are moments to show (videos, audio).
    with_moments = any(result.start is not None for result in results)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("#", justify="right")
    if previews is not None:
        table.add_column("")
    table.add_column("score", justify="right")
    table.add_column("kind")
    if with_moments:
        table.add_column("at", justify="right")
    table.add_column("path", overflow="fold")
    for rank, result in enumerate(results, start=1):
        cells = [str(rank), f"{result.score:.3f}", result.kind]
        if previews is not None:
            cells.insert(1, previews[rank - 1])
        if with_moments:
            cells.append(format_time(result.start))
        path = Text(printable(result.path))
        if console.is_terminal:
            # Terminals that know OSC 8 make the path a link that opens the file.
            path.stylize(Style(link=Path(result.path).as_uri()))
        if result.text is not None:
            path.append("\n")
            path.append_text(_words(result, query))
        table.add_row(*cells, path)
    if console.is_terminal:
        console.print(table)
    else:
        _print_piped(table, console)
    line = play_line(results[0]) if results else None
    if line is not None:
        console.print(escape(line), soft_wrap=True)


# Wide enough for any row (a path is at most 4096 bytes, each shown as at most
# 4 characters, plus a matched text block), so a piped table never wraps.
_PIPED_WIDTH = 1_000_000


def _print_piped(table: Table, console: Console) -> None:
    """The table for a script, a file or `less`: each row whole on its line,
    however long the path (folded at the terminal's width, a name would come
    apart mid-word), and no line padded with trailing spaces."""
    lines = console.render_lines(table, console.options.update_width(_PIPED_WIDTH), pad=False)
    console.file.write("".join("".join(s.text for s in line).rstrip() + "\n" for line in lines))
    console.file.flush()


def play_line(top: SearchResult) -> str | None:
    """The command that plays the top result from its moment, for a video or a
    recording. None for a photo: it has no moment to play, its path is
    already a link on a terminal, and naming an image viewer would be a guess
    at what the user has. Never another result's: a line under the table
    speaks of the first row."""
    if top.kind not in ("video", "audio") or top.start is None:
        return None
    return f"play the top moment: mpv --start={top.start:.1f} {shell_word(top.path)}"


def shell_word(text: str) -> str:
    """`text` as one word for bash or zsh, safe to show: quoted as shlex does,
    or, when it holds characters a terminal would act on, in `$'...'` with
    those written as escapes, so that pasting the line gives back the exact
    name (a newline, an escape, a byte that is not UTF-8)."""
    if printable(text) == text:
        return shlex.quote(text)
    return "$'" + "".join(_ansi_c(char) for char in text) + "'"


def _ansi_c(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    if not _UNPRINTABLE.match(char):
        return char
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the raw byte of a non-UTF-8 name
    # A code point, not a byte: $'\x85' would be the byte 0x85, not U+0085.
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def print_results_json(results: Sequence[SearchResult], stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    out.write(json_text([result.to_dict() for result in results], indent=2) + "\n")


def print_results_paths(
    results: Sequence[SearchResult], *, null: bool, stream: IO[str] | None = None
) -> None:
    out = stream or sys.stdout
    end = "\0" if null else "\n"
    _write_exact(out, "".join(result.path + end for result in results))


FORMAT_FIELDS = ("path", "name", "kind", "score", "start", "end", "modality", "rank", "text")
# The number fields and the type letters each takes to be formatted as a
# number (`{score:.2f}`); without one, or with `s`, a field is its text.
_NUMBER_TYPES = {"score": "fFeEgG%", "start": "fFeEgG%", "end": "fFeEgG%", "rank": "d"}
# A --format field's spec: Python's, less what reaches beyond the field
# (nested fields) or is of no use here (`#`, grouping), and with widths a
# terminal could show (a width of 200,000,000 would allocate it).
_FORMAT_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>^=]))?(?P<sign>[-+ ])?(?P<zero>0)?"
    r"(?P<width>\d{0,4})(?:\.(?P<precision>\d{1,4}))?(?P<type>[A-Za-z%])?"
)
MAX_FORMAT_WIDTH = 1000


def _unescape(template: str) -> str:
    """printf's \\t, \\n, \\0 and \\\\ in a --format template typed in a shell."""
    pairs = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\0": "\0"}
    out, at = [], 0
    while at < len(template):
        pair = template[at : at + 2]
        if pair in pairs:
            out.append(pairs[pair])
            at += 2
        else:
            out.append(template[at])
            at += 1
    return "".join(out)


def parse_template(template: str) -> list[tuple[str, str | None, str]]:
    """A --format template as (literal text, field or None, spec) pieces.

    Only the named fields, each with a spec of its own: no attributes or
    indexes (`{path.__class__}`), no conversions, no nested fields, and a type
    only where it fits the field (`{score:.2f}`, `{rank:03d}`, `{path:s}`).
    Raises UsageError naming what is wrong.
    """
    import string

    from mediafind.errors import UsageError

    known = " ".join(f"{{{name}}}" for name in FORMAT_FIELDS)
    try:
        parsed = list(string.Formatter().parse(_unescape(template)))
    except ValueError as error:
        raise UsageError(
            f"{{argument}}: {error} (write {{{{ and }}}} for literal braces)",
            argument="template",
        ) from None
    pieces: list[tuple[str, str | None, str]] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None, ""))
            continue
        if field not in FORMAT_FIELDS:
            raise UsageError(
                f"{{argument}}: unknown field {{{field}}}; known: {known}", argument="template"
            )
        if conversion:
            raise UsageError(
                f"{{argument}}: {{{field}!{conversion}}}: conversions are not supported",
                argument="template",
            )
        _check_spec(field, spec or "")
        pieces.append((literal, field, spec or ""))
    return pieces


def _check_spec(field: str, spec: str) -> None:
    from mediafind.errors import UsageError

    shown = f"{{{field}:{spec}}}"
    match = _FORMAT_SPEC.fullmatch(spec)
    if match is None or any(
        int(number) > MAX_FORMAT_WIDTH for number in match.group("width", "precision") if number
    ):
        raise UsageError(
            f"{{argument}}: {shown}: a field takes only a fill and alignment, a sign, a width, "
            f"a precision (each at most {MAX_FORMAT_WIDTH}) and a type, e.g. {{{field}:<20}} "
            "or {score:>8.2f}",
            argument="template",
        )
    kind = match.group("type")
    numbers = _NUMBER_TYPES.get(field, "")
    if kind not in (None, "s") and kind not in numbers:
        takes = f"the type s (text) or {', '.join(numbers)}" if numbers else "only the type s"
        what = "a number" if numbers else "text"
        raise UsageError(
            f"{{argument}}: {shown}: {field} is {what}; it takes {takes}", argument="template"
        )
    if kind is None or kind == "s":
        try:
            format("text", spec)
        except ValueError:
            fix = f"give a type, e.g. {{{field}:+.2f}}" if numbers else f"{field} is text"
            raise UsageError(
                f"{{argument}}: {shown}: a sign and = alignment are for numbers; {fix}",
                argument="template",
            ) from None


def _null_spec(spec: str) -> str:
    """A number's spec for a field without a value (the start of a photo):
    its width and fill only, so that the empty text keeps the column."""
    match = _FORMAT_SPEC.fullmatch(spec)
    assert match is not None  # checked by parse_template
    fill, align = match.group("fill") or "", match.group("align") or ">"
    width = match.group("width") or ""
    return f"{fill}{'>' if align == '=' else align}{width}" if width else ""


def format_result(
    pieces: Sequence[tuple[str, str | None, str]], result: SearchResult, rank: int
) -> str:
    """One result through a template from `parse_template`."""
    numbers: dict[str, float | int | None] = {
        "score": result.score,
        "start": result.start,
        "end": result.end,
        "rank": rank,
    }
    texts = {
        "path": result.path,
        "name": os.path.basename(result.path),
        "kind": result.kind,
        "score": f"{result.score:.3f}",
        "start": "" if result.start is None else f"{result.start:.1f}",
        "end": "" if result.end is None else f"{result.end:.1f}",
        "modality": result.modality,
        "rank": str(rank),
        # Around where the words matched: a line, not a whole page of text.
        "text": result.snippet.text if result.snippet else one_row(result.text or ""),
    }

    def formatted(field: str, spec: str) -> str:
        kind = spec[-1:]
        if not kind or kind not in _NUMBER_TYPES.get(field, ""):
            return format(texts[field], spec)
        number = numbers[field]
        return format("", _null_spec(spec)) if number is None else format(number, spec)

    return "".join(
        literal + ("" if field is None else formatted(field, spec))
        for literal, field, spec in pieces
    )


def print_results(
    results: Sequence[SearchResult],
    style: str,
    template: str | None = None,
    null: bool = False,
    stream: IO[str] | None = None,
    query: str | None = None,
    previews: Sequence[Any] | None = None,
) -> None:
    """Results as a table (the query's words marked in matched phrases; with
    `previews`, thumbnails), --json, --jsonl, --paths or --format."""
    out = stream or sys.stdout
    if style == "json":
        print_results_json(results, out)
    elif style == "jsonl":
        for result in results:
            out.write(json_text(result.to_dict()) + "\n")
            out.flush()
    elif style == "paths":
        print_results_paths(results, null=null, stream=out)
    elif style == "format":
        pieces = parse_template(template or "")
        end = "\0" if null else "\n"
        lines = [format_result(pieces, r, rank) + end for rank, r in enumerate(results, start=1)]
        _write_exact(out, "".join(lines))
    elif results:
        print_results_table(results, out, query=query, previews=previews)


# Files shown per list in `status`; the rest are counted.
STATUS_LIST = 10


def _unit(modality: str) -> str:
    """What one segment of a words modality is called (phrase, text block)."""
    from mediafind import modalities

    known = {m.name: m.unit for m in modalities.modalities()}
    return known.get(modality, "segment")


def one_row(text: str) -> str:
    """A text of several lines (a sign read off a photo) on one row: lines
    joined with ` / ` (JSON keeps the line breaks)."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def print_status(status: IndexStatus, stream: IO[str] | None = None) -> None:
    """What the index holds, one `name  value` line each, aligned, never padded
    at the end (so it reads well piped into grep or a file)."""
    rows: list[tuple[str, str]] = [("index", f"{status.db_path} ({_human_bytes(status.db_bytes)})")]
    thumbnails = status.thumbnails
    kept = f"{count(thumbnails.files, 'thumbnail')} ({_human_bytes(thumbnails.bytes)})"
    rows.append(("thumbnails", f"{kept} in {status.thumbnails_path}"))
    for model in status.models:
        state = "" if model.active else " (re-embedding, not yet searched)"
        precision = " in int8" if model.precision == "int8" else ""
        held = (
            count(model.vectors, _unit(model.modality))
            if model.dim == 0
            else f"{model.dim} dimensions, {model.vectors} vectors"
        )
        rows.append((f"{model.modality} model", f"{model.model}{precision}, {held}{state}"))
    if not status.models:
        rows.append(("model", "none yet"))
    names = {
        "image": ("photo", "photos"),
        "video": ("video", "videos"),
        "audio": ("recording", "recordings"),
    }
    files = ", ".join(f"{count} {names[kind][count != 1]}" for kind, count in status.files.items())
    rows += [("files", files), ("segments", str(status.segments))]
    if status.languages:
        spoken = ", ".join(f"{language} {count}" for language, count in status.languages.items())
        rows.append(("languages", spoken))
    if status.partial:
        rows.append(("partly indexed", str(len(status.partial))))
        rows += [("", f"{path}: {why}") for path, why in status.partial[:STATUS_LIST]]
        if len(status.partial) > STATUS_LIST:
            rows.append(("", f"... and {len(status.partial) - STATUS_LIST} more: status --failed"))
    failed = f"{len(status.failed)}" + (
        " (list them: mediafind status --failed)" if status.failed else ""
    )
    rows.append(("failed", failed))
    for root in status.roots:
        excludes = f" (excluding {', '.join(root.excludes)})" if root.excludes else ""
        rows.append(("root", root.path + excludes))
    rows.append(("last indexed", _when(status.last_indexed_at)))
    if status.watcher is not None:
        watcher = status.watcher
        rows.append(("watch", f"running since {_when(watcher.since)} (pid {watcher.pid})"))
        rows.append(("", f"{count(watcher.waiting, 'file')} waiting"))
        last = f"{watcher.last_path} at {_when(watcher.last_at)}" if watcher.last_path else "none"
        rows.append(("", f"last change indexed: {last}"))
    rows.append(("sqlite driver", status.sqlite_driver))
    exists = "" if status.config_exists else " (none; optional)"
    rows.append(("config file", status.config_path + exists))
    _print_rows(rows, stream or sys.stdout)


def _print_rows(rows: Sequence[tuple[str, str]], out: IO[str]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        out.write(f"{name:<{width}}  {printable(value)}".rstrip() + "\n")


def print_problem_files(status: IndexStatus, stream: IO[str] | None = None) -> None:
    """`status --failed`: each file that failed, then each indexed only in part,
    as `PATH: why`, one per line."""
    out = stream or sys.stdout
    for label, files in (("failed", status.failed), ("partly indexed", status.partial)):
        for path, why in files:
            out.write(printable(f"{path}: {label}: {why}") + "\n")


def print_roots(roots: Sequence[Root], stream: IO[str] | None = None) -> None:
    """One remembered folder per line, tab-separated: its path, when it was last
    indexed (or `forgotten`: later runs leave it out), and the globs it is
    indexed without. The mark takes the date's column so that the globs stay
    where scripts read them."""
    out = stream or sys.stdout
    for root in roots:
        when = "forgotten" if root.forgotten else _when(root.last_indexed_at)
        fields = [root.path, when, *root.excludes]
        out.write("\t".join(printable(field) for field in fields) + "\n")


def print_duplicates(
    groups: Sequence[DuplicateGroup], *, as_json: bool, stream: IO[str] | None = None
) -> None:
    """Groups as JSON, or for people: a header line per group, then its paths."""
    out = stream or sys.stdout
    if as_json:
        out.write(json_text([group.to_dict() for group in groups], indent=2) + "\n")
        return
    for number, group in enumerate(groups, start=1):
        if number > 1:
            out.write("\n")
        out.write(f"# {len(group.paths)} {group.kind}s alike at {group.similarity:.3f}\n")
        for path in group.paths:
            out.write(printable(path) + "\n")


def print_status_json(status: IndexStatus, stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    out.write(json_text(status.to_dict(), indent=2) + "\n")


def print_transcript(phrases: Sequence[Any], style: str, stream: IO[str] | None = None) -> None:
    """A transcript: `[m:ss] words` lines, SubRip (--srt) or JSON (--json)."""
    out = stream or sys.stdout
    if style == "json":
        rows = [{"start": p.start, "end": p.end, "text": p.text} for p in phrases]
        out.write(json_text(rows, indent=2) + "\n")
        return
    for number, phrase in enumerate(phrases, start=1):
        if style == "srt":
            out.write(
                f"{number}\n{_srt_time(phrase.start)} --> {_srt_time(phrase.end)}\n"
                f"{phrase.text}\n\n"
            )
        else:
            out.write(f"[{format_time(phrase.start)}] {printable(phrase.text)}\n")


def _srt_time(seconds: float | None) -> str:
    millis = round((seconds or 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"
