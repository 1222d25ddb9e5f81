"""`mediafind watch`: keep the index current as files change.

Registered on the app of `cli_base` (cli.py imports this module so that the
command exists); it parses, calls the library (mediafind.watch) and words
what it says, one line per change.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from mediafind import config
from mediafind.cli_base import (
    DbOption,
    DeviceOption,
    IncludeHiddenOption,
    ModelChoices,
    app,
    number_parser,
    registry,
    with_model_options,
)


@app.command()
@with_model_options(skips=True)
def watch(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATHS",
            help="Folders to watch. None: the remembered folders.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    device: DeviceOption = None,
    include_hidden: IncludeHiddenOption = False,
    settle: Annotated[
        float,
        typer.Option(
            "--settle",
            metavar="SECONDS",
            parser=number_parser(),
            help="How long a file must stop changing before it is indexed (a copy in progress).",
        ),
    ] = 2.0,
    rescan_every: Annotated[
        float,
        typer.Option(
            "--rescan-every",
            metavar="SECONDS",
            parser=number_parser(),
            help="How often folders that send no events (network shares) are rescanned.",
        ),
    ] = 300.0,
    poll: Annotated[
        bool,
        typer.Option("--poll", help="Rescan every folder on the schedule instead of watching."),
    ] = False,
    *,
    models: ModelChoices,
) -> None:
    """Keep the index current: index new, changed and moved files as they come,
    drop deleted ones. Ctrl-C (or SIGTERM) stops; nothing is lost."""
    from mediafind.db import Store
    from mediafind.index import IndexOptions
    from mediafind.output import stderr_line
    from mediafind.watch import Watcher, WatchNote, WatchOptions

    options = WatchOptions(
        settle=settle,
        rescan_every=rescan_every,
        polling=poll,
        index=IndexOptions(
            include_hidden=include_hidden, default_excludes=config.default_excludes()
        ),
    )
    with Store.open(config.resolve_db_path(db), create=True) as store:
        roots = [str(p) for p in paths] if paths else [root.path for root in store.roots()]
        embedders = registry.models_for_index(
            store,
            models.requests(),
            device=config.resolve_device(device),
            skip=models.skipped,
        )

        def noted(note: WatchNote) -> None:
            _line(f"mediafind: warning: {note.path}: {note.message}")

        watcher = Watcher(store, roots, embedders, options, _said, noted)
        service = _warm_service(store.path)
        stderr_line(f"mediafind: watching {', '.join(watcher.roots)} (Ctrl-C stops)")
        try:
            watcher.run(threading.Event())
        finally:
            if service is not None:
                service.close()


def _warm_service(db_path: Path) -> Any:
    """Answer searches of this index from here, models warm; None where no
    socket can be made (searches then run in their own process)."""
    from mediafind import __version__
    from mediafind.cli_base import keep_models_warm
    from mediafind.output import stderr_line
    from mediafind.warm import Service

    keep_models_warm()
    try:
        return Service(db_path, __version__, _answer)
    except OSError as error:
        stderr_line(f"mediafind: warning: searches are not answered from here ({error})")
        return None


class _Stream(io.TextIOWrapper):
    """A captured stream that is a terminal when the client's is."""

    def __init__(self, raw: io.BytesIO, encoding: str, errors: str, tty: bool) -> None:
        super().__init__(raw, encoding=encoding, errors=errors, write_through=True)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


# One command at a time runs in this process: the environment, the working
# folder and sys.stdout are the process's.
_ONE_AT_A_TIME = threading.Lock()


def _answer(request: Any) -> Any:
    """Run the client's command here, as it would run there: its environment,
    folder and encodings, its output captured byte for byte."""
    import contextlib
    import os
    import sys

    from mediafind.cli_base import app
    from mediafind.warm import Answer

    out, err = io.BytesIO(), io.BytesIO()
    stdout = _Stream(out, request.encoding, request.errors, False)
    # Python's stderr replaces what it cannot encode, whatever stdout does.
    stderr = _Stream(err, request.encoding, "backslashreplace", request.stderr_tty)
    code = 0
    with _ONE_AT_A_TIME:
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        saved_streams = sys.stdout, sys.stderr
        try:
            os.environ.clear()
            os.environ.update(request.env)
            os.chdir(request.cwd)
            sys.stdout, sys.stderr = stdout, stderr
            try:
                app(args=request.argv, prog_name="mediafind")
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        finally:
            with contextlib.suppress(ValueError):
                stdout.flush()
                stderr.flush()
            sys.stdout, sys.stderr = saved_streams
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
    return Answer(out.getvalue(), err.getvalue(), code)


def _said(event: Any) -> None:
    from mediafind.events import FileDone, Problem
    from mediafind.output import printable

    if isinstance(event, FileDone) and event.outcome != "touched":
        _line(f"mediafind: {event.outcome}: {printable(event.path)}")
    elif isinstance(event, Problem):
        _line(f"mediafind: warning: {printable(event.path)}: {event.reason}")


def _line(message: str) -> None:
    """A line of the watcher's own on the process's stderr: never into the
    output of a search it answers meanwhile (`_answer` swaps sys.stderr)."""
    import sys

    from mediafind.output import printable

    stream = sys.__stderr__
    if stream is not None:
        stream.write(printable(" ".join(message.split())) + "\n")
        stream.flush()
