"""The `mediafind` commands: parse arguments, call the library, render the result.

The commands, with `cli_view` (serve), are the only code that prints for
people or chooses exit codes (see `cli_base`, which they share).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from mediafind import __version__, config
from mediafind.cli_base import (
    EXIT_NOT_FOUND,
    KIND_ALIASES,
    KINDS,
    PICTURE_KINDS,
    PRECISIONS,
    DbOption,
    DeviceOption,
    Group,
    IncludeHiddenOption,
    ModelChoices,
    SearchModels,
    VerboseOption,
    app,
    choice_parser,
    number_parser,
    print_notes,
    registry,
    with_model_options,
)
from mediafind.duplicates import DEFAULT_THRESHOLD
from mediafind.errors import MediafindError
from mediafind.modalities.base import DecodeOptions
from mediafind.query import DEFAULT_LIKE_WEIGHT

__all__ = ["app", "main"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mediafind {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Search your photos, videos and recordings by meaning. Nothing leaves this machine."""


@app.command()
@with_model_options(skips=True)
def index(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATHS",
            help="Folders (or files) to index. None: the remembered folders.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            metavar="CODE",
            help="The language spoken (en, fr, ...), when you know it: else detected per file.",
        ),
    ] = None,
    device: DeviceOption = None,
    include_hidden: IncludeHiddenOption = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="GLOB",
            help="Skip names or relative paths matching GLOB (repeatable; remembered).",
        ),
    ] = None,
    reembed: Annotated[
        bool,
        typer.Option(
            "--reembed",
            help="Switch to a new model (any of the model options), re-reading every file.",
        ),
    ] = False,
    max_gap: Annotated[
        float,
        typer.Option(
            "--max-gap",
            metavar="SECONDS",
            parser=number_parser(),
            help="Longest stretch of a video without an embedded frame.",
        ),
    ] = DecodeOptions.max_gap,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            metavar="|".join(PRECISIONS),
            parser=choice_parser(PRECISIONS),
            autocompletion=lambda: PRECISIONS,
            help=(
                "int8: about twice as fast on the CPU, slightly less exact; remembered by the "
                "index. Default: the index's own, else fp32."
            ),
            show_default=False,
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            metavar="ADDRESS",
            help=(
                "Decode and embed on a Ray cluster (ray://HOST:10001, HOST:PORT, or auto for "
                f"one started here; local: here). Default: ${config.ENV_CLUSTER}, else the "
                "config file's cluster. Needs: pip install 'mediafind[cluster]'"
            ),
            show_default=False,
        ),
    ] = None,
    path_map: Annotated[
        list[str] | None,
        typer.Option(
            "--path-map",
            metavar="LOCAL=REMOTE",
            help="With --cluster: the workers find the folder LOCAL at REMOTE (repeatable).",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Print the summary even without a terminal, and how models ran.",
        ),
    ] = False,
    *,
    models: ModelChoices,
) -> None:
    """Index the photos, videos and recordings under PATHS; only what changed is embedded."""
    from mediafind.db import Store, check_not_watched
    from mediafind.index import IndexOptions, discard_if_unused, index_paths
    from mediafind.output import IndexReporter, stderr_line, summary_line
    from mediafind.scan import present_paths

    if not reembed:
        check_not_watched(config.resolve_db_path(db))
    runner = _cluster_runner(cluster, path_map)
    options = IndexOptions(
        include_hidden=include_hidden,
        excludes=exclude or None,
        default_excludes=config.default_excludes(),
        reembed=reembed,
        decode=DecodeOptions(max_gap=max_gap, language=language),
        runner=runner,
    )
    # No paths: cron's form, the remembered folders (less any not there today).
    # Checked before the index file is created: a typo leaves nothing behind.
    checked = present_paths([str(p) for p in paths or ()])
    if checked.absent:
        stderr_line(f"mediafind: warning: left out: {'; '.join(checked.absent)}")
    targets = checked.present
    with (
        Store.open(config.resolve_db_path(db), create=True) as store,
        runner or contextlib.nullcontext(),
    ):
        try:
            embedders = registry.models_for_index(
                store,
                models.requests(),
                device=config.resolve_device(device),
                precision=precision,
                skip=models.skipped,
            )
            with IndexReporter(verbose=verbose) as reporter:
                try:
                    summary = index_paths(store, targets, embedders, options, reporter)
                finally:
                    if verbose:
                        print_notes([*embedders.values(), *([runner] if runner else [])])
        except MediafindError:
            discard_if_unused(store)
            raise
    # Quiet in cron (no paths, no terminal) unless asked; always by hand.
    if paths or verbose or sys.stderr.isatty():
        stderr_line(summary_line(summary))


def _cluster_runner(cluster: str | None, path_maps: list[str] | None) -> Any:
    """The Ray cluster that does the heavy work, if one is asked for (checked
    before the index file is touched: Ray installed, the maps well formed)."""
    from mediafind.errors import UsageError

    if cluster is not None and not cluster.strip():
        raise UsageError(
            "{argument} is empty: expected ray://HOST:PORT, HOST:PORT, auto, or local "
            "to index here",
            argument="cluster",
        )
    address = config.resolve_cluster(cluster)
    if address is None:
        if path_maps:
            raise UsageError("--path-map goes with --cluster (or the config file's cluster)")
        return None
    from mediafind.cluster import ClusterRunner

    return ClusterRunner(address, config.resolve_path_maps(path_maps))


LimitOption = Annotated[
    int | None,
    typer.Option(
        "--limit",
        "-n",
        metavar="N",
        parser=number_parser(low=1, whole=True),
        help=f"Most results to show [default: {config.DEFAULT_LIMIT}].",
    ),
]


def _kind_option(kinds: list[str], what: str) -> Any:
    """--type, offering `kinds` (photo is image, as the README calls them)."""
    return typer.Option(
        "--type",
        "-t",
        metavar="|".join(kinds),
        parser=choice_parser(kinds, KIND_ALIASES),
        autocompletion=lambda: kinds,
        help=f"Only {what} of this kind (repeatable; photo = image).",
    )


TypeOption = Annotated[list[str] | None, _kind_option(KINDS, "results")]
JsonOption = Annotated[bool, typer.Option("--json", help="A JSON array of results.")]
JsonlOption = Annotated[
    bool, typer.Option("--jsonl", help="One JSON object per line, written as found.")
]
PathsOption = Annotated[bool, typer.Option("--paths", help="One path per line.")]
PreviewOption = Annotated[
    bool | None,
    typer.Option(
        "--preview/--no-preview",
        help="Show thumbnails in the table (only on a terminal). Default: the config file's "
        "preview, else off.",
        show_default=False,
    ),
]
NullOption = Annotated[
    bool,
    typer.Option("--null", "-0", help="With --paths or --format: end each result with NUL."),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="TEMPLATE",
        help=(
            "One line per result from TEMPLATE, with fields {path} {name} {kind} {score} "
            "{start} {end} {modality} {rank} {text}; \\t and \\n are tab and newline."
        ),
    ),
]


FolderFilter = Annotated[
    list[Path] | None,
    typer.Option("--in", metavar="DIR", help="Only files under DIR (repeatable)."),
]
SinceFilter = Annotated[
    str | None,
    typer.Option("--since", metavar="DATE", help="Taken or recorded on or after DATE (ISO)."),
]
UntilFilter = Annotated[
    str | None,
    typer.Option("--until", metavar="DATE", help="Taken or recorded on or before DATE (ISO)."),
]
MinDurationFilter = Annotated[
    str | None,
    typer.Option("--min-duration", metavar="TIME", help="Videos and audio at least this long."),
]
MaxDurationFilter = Annotated[
    str | None,
    typer.Option("--max-duration", metavar="TIME", help="Videos and audio at most this long."),
]


def _filters(
    folder: list[Path] | None,
    since: str | None,
    until: str | None,
    min_duration: str | None,
    max_duration: str | None,
) -> dict[str, Any]:
    return {
        "folders": [str(p) for p in folder or ()],
        "since": since,
        "until": until,
        "min_duration": min_duration,
        "max_duration": max_duration,
    }


@dataclass
class _Output:
    """The output options shared by search and similar."""

    json: bool = False
    jsonl: bool = False
    paths: bool = False
    template: str | None = None
    null: bool = False
    preview: bool | None = None

    def style(self) -> str:
        from mediafind.errors import UsageError

        chosen = [
            name
            for name, on in (
                ("json", self.json),
                ("jsonl", self.jsonl),
                ("paths", self.paths),
                ("format", self.template is not None),
            )
            if on
        ]
        if len(chosen) > 1:
            raise UsageError("choose one of " + ", ".join(f"--{name}" for name in chosen))
        if self.null and not (self.paths or self.template is not None):
            raise UsageError("-0/--null goes with --paths or --format")
        return config.resolve_output(chosen[0] if chosen else None)


@dataclass
class _Query:
    """What to search for and where: everything but the models and the output."""

    text: str | None = None
    like: list[str] = field(default_factory=list)
    like_weight: float = DEFAULT_LIKE_WEIGHT
    and_: list[str] = field(default_factory=list)
    not_: list[str] = field(default_factory=list)
    min_score: float | None = None
    limit: int | None = None
    kinds: list[str] = field(default_factory=list)
    modalities: list[str] = field(default_factory=list)
    filters: dict[str, Any] = field(default_factory=dict)


def _search_and_print(query: _Query, output: _Output, chosen: SearchModels) -> None:
    from dataclasses import replace

    from mediafind.db import Filters, Store
    from mediafind.output import ModelAnnouncer, count, print_results, stderr_line
    from mediafind.query import make_filters, parse_example, parse_part, readable_query
    from mediafind.query import search as run_search

    style = output.style()
    parts = [parse_part(text) for text in query.and_]
    parts += [parse_part(text, negative=True) for text in query.not_]
    filters = make_filters(**query.filters)
    kinds = query.kinds
    with Store.open(config.resolve_db_path(chosen.db), create=False, readonly=True) as store:
        models = chosen.for_searching(store)
        announcer = ModelAnnouncer()
        for embedder in models.values():
            embedder.on_prepare = announcer
        for folder in filters.folders:
            if store.count_files(Filters(folders=[folder])) == 0:
                stderr_line(f"mediafind: warning: --in {folder}: no indexed files there")
        try:
            results = run_search(
                store,
                query.text,
                models,
                like=[parse_example(item) for item in query.like],
                like_weight=query.like_weight,
                parts=parts,
                min_score=query.min_score,
                limit=config.resolve_limit(query.limit),
                kinds=kinds,
                modalities=query.modalities,
                filters=filters,
            )
        finally:
            if chosen.verbose:
                print_notes(models.values())
        with_previews = style == "table" and config.resolve_preview(output.preview)
        previews = _previews(store, results) if with_previews else None
        if not results and sys.stderr.isatty():
            passed = store.count_files(replace(filters, kinds=kinds))
            below = f" scoring --min-score {query.min_score} or more" if query.min_score else ""
            stderr_line(
                f"mediafind: no results{below} ({count(passed, 'indexed file')} "
                f"{'passes' if passed == 1 else 'pass'} the filters)"
            )
    words = readable_query(query.text) if query.text is not None else None
    print_results(results, style, output.template, output.null, query=words, previews=previews)
    global _quick_exit
    _quick_exit = True
    if not results:
        raise typer.Exit(EXIT_NOT_FOUND)


def _previews(store: Any, results: list[Any]) -> list[Any] | None:
    """Thumbnails for the results table, when stdout is a terminal that can
    show them (never into a pipe or a file: no escape sequences there)."""
    from mediafind.preview import result_previews, terminal_shows_pictures

    if not results or not terminal_shows_pictures():
        return None
    return result_previews(store, results)


@app.command()
@with_model_options(modality_filter=True)
def search(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="QUERY",
            help='What to look for, in words (quotes optional: red bicycle = "red bicycle").',
            show_default=False,
        ),
    ] = None,
    like: Annotated[
        list[str] | None,
        typer.Option(
            "--like",
            metavar="FILE[@TIME]",
            help="Find what looks or sounds like this photo, video or recording (clip.mp4@1:23).",
        ),
    ] = None,
    like_weight: Annotated[
        float,
        typer.Option(
            "--like-weight",
            metavar="W",
            parser=number_parser(),
            help="With QUERY and --like: the example's share, 0 to 1.",
        ),
    ] = DEFAULT_LIKE_WEIGHT,
    and_: Annotated[
        list[str] | None,
        typer.Option(
            "--and",
            metavar="[W:]WORDS|FILE",
            help="Also match these words or this photo/clip, weight W (repeatable).",
        ),
    ] = None,
    not_: Annotated[
        list[str] | None,
        typer.Option(
            "--not",
            metavar="[W:]WORDS|FILE",
            help="Match away from these words or this photo/clip, e.g. 0.5:people (repeatable).",
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score",
            metavar="X",
            parser=number_parser(),
            help="Drop results scoring under X (calibrated).",
        ),
    ] = None,
    folder: FolderFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    min_duration: MinDurationFilter = None,
    max_duration: MaxDurationFilter = None,
    limit: LimitOption = None,
    kind: TypeOption = None,
    as_json: JsonOption = False,
    jsonl: JsonlOption = False,
    paths: PathsOption = False,
    null: NullOption = False,
    template: FormatOption = None,
    preview: PreviewOption = None,
    db: DbOption = None,
    device: DeviceOption = None,
    verbose: VerboseOption = False,
    *,
    models: ModelChoices,
    modality: list[str] | None = None,
) -> None:
    """Find the photos, video moments, sounds and words that best match QUERY (or --like FILE)."""
    text = " ".join(words) if words else None
    _refuse_a_file_as_words(text)
    query = _Query(
        text=text,
        like=like or [],
        like_weight=like_weight,
        and_=and_ or [],
        not_=not_ or [],
        min_score=min_score,
        limit=limit,
        kinds=list(kind or []),
        modalities=list(modality or []),
        filters=_filters(folder, since, until, min_duration, max_duration),
    )
    output = _Output(as_json, jsonl, paths, template, null, preview)
    _search_and_print(query, output, SearchModels(db, models, device, verbose))


def _refuse_a_file_as_words(text: str | None) -> None:
    """A media file given as the query was meant as an example: searching for
    its name's words would answer with nothing related to it."""
    from mediafind.errors import UsageError
    from mediafind.scan import kind_by_extension

    if text is None or not os.path.isfile(os.path.expanduser(text)):
        return
    if os.path.splitext(text)[1].lower() in kind_by_extension():
        quoted = shlex.quote(text)
        raise UsageError(
            f"{text} is a file, and QUERY is words; to find what looks or sounds like it: "
            f"mediafind search --like {quoted} (or: mediafind similar {quoted})"
        )


@app.command()
@with_model_options(modality_filter=True)
def similar(
    example: Annotated[
        str, typer.Argument(metavar="FILE[@TIME]", help="A photo, video, recording, or a moment.")
    ],
    limit: LimitOption = None,
    kind: TypeOption = None,
    as_json: JsonOption = False,
    jsonl: JsonlOption = False,
    paths: PathsOption = False,
    null: NullOption = False,
    template: FormatOption = None,
    preview: PreviewOption = None,
    folder: FolderFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    min_duration: MinDurationFilter = None,
    max_duration: MaxDurationFilter = None,
    db: DbOption = None,
    device: DeviceOption = None,
    verbose: VerboseOption = False,
    *,
    models: ModelChoices,
    modality: list[str] | None = None,
) -> None:
    """Find what looks, sounds, speaks or reads like FILE (the short form of search --like FILE)."""
    query = _Query(
        like=[example],
        like_weight=1.0,
        limit=limit,
        kinds=list(kind or []),
        modalities=list(modality or []),
        filters=_filters(folder, since, until, min_duration, max_duration),
    )
    output = _Output(as_json, jsonl, paths, template, null, preview)
    _search_and_print(query, output, SearchModels(db, models, device, verbose))


@app.command()
def transcript(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="An indexed video or recording.")],
    srt: Annotated[bool, typer.Option("--srt", help="As SubRip subtitles.")] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Print what is said in FILE, with timestamps, as the index holds it."""
    from mediafind.db import Store
    from mediafind.output import print_transcript, stderr_line
    from mediafind.query import transcript as read_transcript

    with Store.open(config.resolve_db_path(db), create=False, readonly=True) as store:
        phrases = read_transcript(store, str(file))
    print_transcript(phrases, style="srt" if srt else "json" if as_json else "plain")
    if not phrases:
        if sys.stderr.isatty():
            stderr_line(f"mediafind: nothing is said in {file} (no speech was heard in it)")
        raise typer.Exit(EXIT_NOT_FOUND)


@app.command()
def status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed", help="List the files that failed or were indexed in part, and why."
        ),
    ] = False,
) -> None:
    """Show what the index holds: models, files, failures, last run."""
    from mediafind.db import Store
    from mediafind.output import print_problem_files, print_status, print_status_json
    from mediafind.status import index_status

    with Store.open(config.resolve_db_path(db), create=False, readonly=True) as store:
        info = index_status(store)
    if as_json:
        print_status_json(info)
    elif failed:
        print_problem_files(info)
    else:
        print_status(info)


@app.command()
def duplicates(
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            metavar="X",
            parser=number_parser(low=0, high=1),
            help="How alike (cosine, 0 to 1) files must be to group.",
        ),
    ] = DEFAULT_THRESHOLD,
    kind: Annotated[list[str] | None, _kind_option(PICTURE_KINDS, "groups")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Groups of near-duplicate photos and videos (re-encoded, resized, trimmed)."""
    from mediafind.db import Store
    from mediafind.duplicates import find_duplicates
    from mediafind.output import print_duplicates

    with Store.open(config.resolve_db_path(db), create=False, readonly=True) as store:
        groups = find_duplicates(store, threshold=threshold, kinds=tuple(kind or ()))
    print_duplicates(groups, as_json=as_json)
    if not groups:
        raise typer.Exit(EXIT_NOT_FOUND)


roots_app = typer.Typer(
    cls=Group, invoke_without_command=True, help="List or forget the remembered folders."
)
app.add_typer(roots_app, name="roots")


@roots_app.callback()
def roots(ctx: typer.Context, db: DbOption = None) -> None:
    """List the folders this index remembers (`mediafind index` alone re-indexes them)."""
    if ctx.invoked_subcommand is not None:
        return
    from mediafind.db import Store
    from mediafind.output import print_roots

    with Store.open(config.resolve_db_path(db), create=False, readonly=True) as store:
        print_roots(store.roots())


@roots_app.command("remove")
def roots_remove(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="A remembered folder.")],
    db: DbOption = None,
) -> None:
    """Forget a remembered folder and the files indexed from it."""
    from mediafind.db import Store
    from mediafind.output import count, stderr_line
    from mediafind.upkeep import forget_root

    with Store.open(config.resolve_db_path(db), create=False) as store:
        removed = forget_root(store, folder)
    stderr_line(f"mediafind: forgot {folder} and {count(removed, 'file')}")


@app.command()
def prune(db: DbOption = None) -> None:
    """Drop files that no longer exist (kept: those on a remembered folder that is missing),
    and the thumbnails of files no longer indexed."""
    from mediafind.db import Store
    from mediafind.output import count, stderr_line
    from mediafind.thumbnails import prune_thumbnails
    from mediafind.upkeep import prune as run_prune

    with Store.open(config.resolve_db_path(db), create=False) as store:
        summary = run_prune(store)
        dropped = prune_thumbnails(store)
    for root in summary.missing_roots:
        stderr_line(f"mediafind: warning: {root}: not found (unmounted?); its files kept")
    if summary.vacuum_failed:
        stderr_line(
            f"mediafind: warning: could not compact the index ({summary.vacuum_failed}); "
            "the next prune tries again"
        )
    compacted = ", index compacted" if summary.vacuumed else ""
    thumbnails = f", {count(dropped.files, 'thumbnail')} dropped" if dropped.files else ""
    stderr_line(f"mediafind: pruned {count(summary.removed, 'file')}{thumbnails}{compacted}")


@app.command()
def forget(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATHS", help="Files or folders to remove from the index."),
    ],
    db: DbOption = None,
) -> None:
    """Remove files, or everything under folders, from the index (the files stay on
    disk), and leave them out of later runs until indexed by name again."""
    from mediafind.db import Store
    from mediafind.output import count, stderr_line
    from mediafind.upkeep import forget as run_forget

    with Store.open(config.resolve_db_path(db), create=False) as store:
        forgotten = run_forget(store, [str(p) for p in paths])
    for path, removed in forgotten.removed.items():
        if removed:
            stderr_line(f"mediafind: forgot {count(removed, 'file')} at {path}")
        else:
            stderr_line(f"mediafind: nothing indexed at {path}")
    them = "it" if len(forgotten.removed) == 1 else "them"
    one = "it" if len(forgotten.removed) == 1 else "one"
    stderr_line(f"mediafind: later runs leave {them} out until you index {one} by name")


# Set once a search has printed its results: nothing is left to clean up.
_quick_exit = False


def main() -> None:
    try:
        app(prog_name="mediafind")
    except SystemExit as done:
        if not _quick_exit:
            raise
        # The results are out and the index is closed. Tearing the interpreter
        # down (ONNX Runtime's sessions, a memory map of the whole index,
        # thousands of modules) would add up to 0.1 s to every search.
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, OSError):
            code = code or 1
        os._exit(code)


# Commands defined in their own modules register on `app` when imported.
from mediafind import cli_mcp, cli_view, cli_watch  # noqa: E402, F401
