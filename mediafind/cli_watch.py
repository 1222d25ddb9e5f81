"""`mediafind watch`: keep the index current as files change.

Registered on the app of `cli_base` (cli.py imports this module so that the
command exists); it parses, calls the library (mediafind.watch) and words
what it says, one line per change.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from mediafind import config
from mediafind.cli_base import (
    DbOption,
    DeviceOption,
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
    include_hidden: Annotated[
        bool, typer.Option("--include-hidden", help="Also index hidden files and folders.")
    ] = False,
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
            stderr_line(f"mediafind: warning: {note.path}: {note.message}")

        watcher = Watcher(store, roots, embedders, options, _said, noted)
        stderr_line(f"mediafind: watching {', '.join(watcher.roots)} (Ctrl-C stops)")
        watcher.run(threading.Event())


def _said(event: Any) -> None:
    from mediafind.events import FileDone, Problem
    from mediafind.output import printable, stderr_line

    if isinstance(event, FileDone) and event.outcome != "touched":
        stderr_line(f"mediafind: {event.outcome}: {printable(event.path)}")
    elif isinstance(event, Problem):
        stderr_line(f"mediafind: warning: {printable(event.path)}: {event.reason}")
