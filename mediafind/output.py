"""Rendering for people (rich tables, progress) and for scripts (JSON, path lists).

Data goes to stdout; progress, warnings and summaries go to stderr, so that
`mediafind search ... --paths | xargs ...` only ever sees paths.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.style import Style
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    # Only for annotations: a search should not import the indexing pipeline.
    from mediafind.duplicates import DuplicateGroup
    from mediafind.index import IndexEvent, IndexSummary
    from mediafind.search import SearchResult
    from mediafind.status import IndexStatus


def stderr_line(message: str) -> None:
    """One plain line on stderr: never wrapped, so scripts can grep it."""
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.stderr.flush()


def format_time(seconds: float | None) -> str:
    """83.4 -> '1:23'; 3723 -> '1:02:03'."""
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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


class IndexReporter:
    """Turns indexing events into a progress bar (on a terminal) and warning lines."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, highlight=False)
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> IndexReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def warn(self, message: str) -> None:
        line = "mediafind: warning: " + " ".join(message.split())
        if self.progress is not None:
            self.progress.console.print(escape(line), soft_wrap=True, highlight=False)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __call__(self, event: IndexEvent) -> None:
        from mediafind.index import FileDone, FileFailed, FilePartial, FolderSkipped, ScanDone

        if isinstance(event, ScanDone):
            if self.console.is_terminal and event.to_process:
                self.progress = Progress(
                    TextColumn("indexing"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                    TextColumn("ETA"),
                    TimeRemainingColumn(),
                    console=self.console,
                    transient=True,
                )
                self.task = self.progress.add_task("index", total=event.to_process, rate="")
                self.started = time.monotonic()
                self.progress.start()
        elif isinstance(event, FileFailed):
            self.warn(f"{event.path}: {event.reason}")
        elif isinstance(event, FilePartial):
            self.warn(f"{event.path}: partly indexed: {event.reason}")
        elif isinstance(event, FolderSkipped):
            self.warn(f"{event.path}: cannot list folder ({event.reason}); kept what was indexed")
        elif isinstance(event, FileDone) and self.progress is not None:
            self.progress.advance(self.task)
            done = self.progress.tasks[0].completed
            rate = done / max(time.monotonic() - self.started, 1e-6)
            self.progress.update(self.task, rate=f"{rate:.1f} files/s")


def summary_line(summary: IndexSummary, *, interrupted: bool = False) -> str:
    parts = [
        f"{summary.new} new",
        f"{summary.changed} changed",
        f"{summary.moved} moved",
        f"{summary.removed} removed",
        f"{summary.failed} failed",
        *([f"{summary.partial} partial"] if summary.partial else []),
        f"{summary.unchanged} unchanged",
    ]
    if summary.reused:
        parts.append(f"{summary.reused} reused from identical files")
    if summary.reembedded:
        parts.append(f"{summary.reembedded} re-embedded")
    head = "interrupted after" if interrupted else "indexed in"
    line = f"mediafind: {head} {summary.elapsed:.1f}s: " + ", ".join(parts)
    if summary.reembed_pending:
        line += (
            f"; {summary.reembed_pending} files in other folders still need re-embedding "
            "before the new model is used"
        )
    return line


def print_results_table(
    results: Sequence[SearchResult],
    stream: IO[str] | None = None,
    console: Console | None = None,
) -> None:
    console = console or Console(file=stream or sys.stdout, highlight=False)
    # The moment column appears once there are moments to show (videos, audio).
    with_moments = any(result.start is not None for result in results)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("kind")
    if with_moments:
        table.add_column("at", justify="right")
    table.add_column("path", overflow="fold")
    for rank, result in enumerate(results, start=1):
        cells = [str(rank), f"{result.score:.3f}", result.kind]
        if with_moments:
            cells.append(format_time(result.start))
        path = Text(result.path)
        if console.is_terminal:
            # Terminals that know OSC 8 make the path a link that opens the file.
            path.stylize(Style(link=Path(result.path).as_uri()))
        table.add_row(*cells, path)
    console.print(table)
    video = next((r for r in results if r.kind == "video" and r.start is not None), None)
    if video is not None:
        console.print(
            escape(f"play the top moment: mpv --start={video.start:.1f} {shlex.quote(video.path)}"),
            soft_wrap=True,
        )


def print_results_json(results: Sequence[SearchResult], stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    json.dump([result.to_dict() for result in results], out, ensure_ascii=False, indent=2)
    out.write("\n")


def print_results_paths(
    results: Sequence[SearchResult], *, null: bool, stream: IO[str] | None = None
) -> None:
    out = stream or sys.stdout
    end = "\0" if null else "\n"
    for result in results:
        out.write(result.path + end)
    out.flush()


FORMAT_FIELDS = ("path", "name", "kind", "score", "start", "end", "modality", "rank")


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


def format_result(template: str, result: SearchResult, rank: int) -> str:
    """One result through a --format template; unknown fields are a UsageError."""
    import os

    from mediafind.errors import UsageError

    fields = {
        "path": result.path,
        "name": os.path.basename(result.path),
        "kind": result.kind,
        "score": f"{result.score:.3f}",
        "start": "" if result.start is None else f"{result.start:.1f}",
        "end": "" if result.end is None else f"{result.end:.1f}",
        "modality": result.modality,
        "rank": str(rank),
    }
    try:
        return _unescape(template).format_map(fields)
    except KeyError as error:
        raise UsageError(
            f"--format: unknown field {{{error.args[0]}}}; known: "
            + " ".join(f"{{{name}}}" for name in FORMAT_FIELDS)
        ) from None
    except (ValueError, IndexError) as error:
        raise UsageError(f"--format: {error} (write {{{{ and }}}} for literal braces)") from None


def print_results(
    results: Sequence[SearchResult],
    style: str,
    template: str | None = None,
    null: bool = False,
    stream: IO[str] | None = None,
) -> None:
    """Results as a table, --json, --jsonl, --paths or --format."""
    out = stream or sys.stdout
    if style == "json":
        print_results_json(results, out)
    elif style == "jsonl":
        for result in results:
            out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
            out.flush()
    elif style == "paths":
        print_results_paths(results, null=null, stream=out)
    elif style == "format":
        assert template is not None
        lines = [format_result(template, r, rank) for rank, r in enumerate(results, start=1)]
        end = "\0" if null else "\n"
        for line in lines:
            out.write(line + end)
        out.flush()
    elif results:
        print_results_table(results, out)


def print_status(status: IndexStatus, stream: IO[str] | None = None) -> None:
    console = Console(file=stream or sys.stdout, highlight=False)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("index", escape(f"{status.db_path} ({_human_bytes(status.db_bytes)})"))
    for model in status.models:
        state = "" if model.active else " (re-embedding, not yet searched)"
        table.add_row(
            f"{model.modality} model",
            escape(
                f"{model.model}{' in int8' if model.precision == 'int8' else ''}, "
                f"{model.dim} dimensions, {model.vectors} vectors{state}"
            ),
        )
    if not status.models:
        table.add_row("model", "none yet")
    names = {
        "image": ("photo", "photos"),
        "video": ("video", "videos"),
        "audio": ("recording", "recordings"),
    }
    files = ", ".join(f"{count} {names[kind][count != 1]}" for kind, count in status.files.items())
    table.add_row("files", files)
    table.add_row("segments", str(status.segments))
    table.add_row("failed", str(len(status.failed)))
    for path, error in status.failed[:10]:
        table.add_row("", escape(f"{path}: {error}"))
    if len(status.failed) > 10:
        table.add_row("", f"... and {len(status.failed) - 10} more (see status --json)")
    for path, _ in status.roots:
        table.add_row("root", escape(path))
    table.add_row("last indexed", _when(status.last_indexed_at))
    table.add_row("sqlite driver", status.sqlite_driver)
    exists = "" if status.config_exists else " (none; optional)"
    table.add_row("config file", escape(status.config_path + exists))
    console.print(table)


def print_roots(roots: Sequence[tuple[str, float | None]], stream: IO[str] | None = None) -> None:
    """One remembered folder per line, with when it was last indexed (tab-separated)."""
    out = stream or sys.stdout
    for path, indexed_at in roots:
        out.write(f"{path}\t{_when(indexed_at)}\n")


def print_duplicates(
    groups: Sequence[DuplicateGroup], *, as_json: bool, stream: IO[str] | None = None
) -> None:
    """Groups as JSON, or for people: a header line per group, then its paths."""
    out = stream or sys.stdout
    if as_json:
        json.dump([group.to_dict() for group in groups], out, ensure_ascii=False, indent=2)
        out.write("\n")
        return
    for number, group in enumerate(groups, start=1):
        if number > 1:
            out.write("\n")
        out.write(f"# {len(group.paths)} {group.kind}s alike at {group.similarity:.3f}\n")
        for path in group.paths:
            out.write(path + "\n")


def print_status_json(status: IndexStatus, stream: IO[str] | None = None) -> None:
    out = stream or sys.stdout
    json.dump(status.to_dict(), out, ensure_ascii=False, indent=2)
    out.write("\n")
