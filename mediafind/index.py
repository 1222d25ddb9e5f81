"""The indexing pipeline: scan -> hash -> decode -> embed in batches -> write per file.

Work is incremental: a file whose size and mtime are unchanged is not opened;
a changed or new file whose content is already indexed (a move, a copy, a
touch) reuses the stored vectors; only new content is decoded and embedded.
Each file is written in its own transaction, so an interrupted run loses at
most the batch in flight and the next run picks up where it stopped.

A file has a part per modality that reads its kind (see `mediafind.modalities`).
Each modality's model writes to its own space, and a file missing from a
space (a modality switched on, a model changed) gets just that part added.
Before any work, every model the run needs is checked (one error lists all
that are missing) and made ready, with events saying so: converting a model
for the CPU can take a minute.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mediafind import modalities
from mediafind.config import usable_cores
from mediafind.db import FileFacts, FileRecord, Part, Root, Space, Store, WriterLock
from mediafind.errors import (
    IndexInterruptedError,
    MediafindError,
    ModelMismatchError,
    ModelUnavailableError,
    UsageError,
)
from mediafind.events import (
    FileDone,
    IndexEvent,
    IndexSummary,
    ModelPreparing,
    ModelReady,
    Problem,
    ScanDone,
)
from mediafind.filework import (
    PassModels,
    Prepared,
    Results,
    Runner,
    Task,
    embed_prepared,
    prepare,
)
from mediafind.modalities import DecodeOptions, Modality, Model
from mediafind.scan import (
    FoundFile,
    canonical_path,
    found_file,
    is_under,
    normalize_roots,
    scan,
)

# Files decoded ahead of the one being written: enough to keep every core
# busy, few enough that a run's memory stays small.
WINDOW = 64


@dataclass
class IndexOptions:
    include_hidden: bool = False
    # Globs given with the roots of this run, remembered with them; None: each
    # root's remembered globs.
    excludes: Sequence[str] | None = None
    # Globs for every root (the config file's).
    default_excludes: Sequence[str] = ()
    # Allow switching the index to another model by embedding everything again.
    reembed: bool = False
    # How files are read (the longest gap between a video's kept frames, ...).
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    # Where files are hashed, decoded and embedded; None: here, in threads
    # (`mediafind.cluster.ClusterRunner`: on a Ray cluster). Writing stays here.
    runner: Runner | None = None


def existing_space(
    store: Store, modality: Modality, embedder: Model, *, reembed: bool
) -> Space | None:
    """The space holding `embedder`'s vectors, if any; refuses to mix two models.

    Cheap: it loads no model, so a wrong model fails before any work. A space
    that never received a vector (a run that failed before its first file)
    is dropped rather than held against another model.
    """
    active = store.active_space(modality.name)
    key = embedder.key
    if active is not None and active.model_key != key and not store.has_vectors(active):
        store.drop_space(active)
        active = None
    if active is not None and active.model_key == key:
        return active
    if active is not None and not reembed:
        raise _mismatch(store, modality, embedder, active)
    return store.find_space(modality.name, key)


def _mismatch(store: Store, modality: Modality, embedder: Model, active: Space) -> MediafindError:
    asked = embedder.choice
    if active.model != embedder.name and asked.source in ("environment", "config"):
        # Not a flag the user typed: name the variable or setting that asked.
        return ModelMismatchError(
            f"{asked.described(modality.noun + ' model')} asks for {modality.noun} model "
            f"{embedder.name}, but the index {store.path} holds vectors from {active.model}, "
            f"and vectors of two models cannot be compared; {asked.withdrawn()} to go on with "
            f"{active.model}, or re-embed every file with the new model: mediafind index "
            "{reembed} FOLDER...",
            arguments=("reembed",),
        )
    if active.model != embedder.name:
        return ModelMismatchError(
            f"the index {store.path} holds {modality.name} vectors from model {active.model}, "
            f"not {embedder.name}, and vectors of two models cannot be compared; to switch, "
            f"re-embed every file with: mediafind index {{{modality.argument}}} {embedder.name} "
            "{reembed} FOLDER... (or keep both with another {db})",
            arguments=(modality.argument, "reembed", "db"),
        )
    if active.precision != embedder.precision:
        return ModelMismatchError(
            f"the index {store.path} holds {active.precision} {modality.name} vectors of "
            f"{active.model}, not {embedder.precision} ones, and the two are not mixed; to "
            "switch, re-embed every file with: mediafind index {precision} "
            f"{embedder.precision} {{reembed}} FOLDER...",
            arguments=("precision", "reembed"),
        )
    return ModelMismatchError(
        f"the {modality.name} model {active.model} holds other weights than those that made "
        f"the index {store.path} (its files were replaced); put the original files back, or "
        "re-embed every file with the new ones: mediafind index {reembed} FOLDER...",
        arguments=("reembed",),
    )


def new_space(store: Store, modality: Modality, embedder: Model) -> Space:
    """A space for `embedder` (loads the model to learn its dimension); it is
    searched at once unless another model's space is still active."""
    active = store.active_space(modality.name) is not None
    return store.create_space(
        modality.name, embedder.name, embedder.key, embedder.dim, active=not active
    )


def check_models(models: Mapping[str, Model]) -> None:
    """Raise one ModelUnavailableError naming every model that cannot be had,
    each with what to do, before any work is done."""
    problems = [problem for model in models.values() if (problem := model.problem()) is not None]
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    arguments = tuple(dict.fromkeys(name for p in problems for name in p.arguments))
    # Each problem's own {argument} becomes its argument's name in the whole.
    parts = [
        p.template.replace("{argument}", f"{{{p.argument}}}" if p.argument else "")
        for p in problems
    ]
    raise ModelUnavailableError(
        f"{len(problems)} models this run needs cannot be had: " + "; and ".join(parts),
        arguments=arguments,
    )


class _Run:
    """One indexing run's state; `index_paths` is the public entry point."""

    def __init__(
        self,
        store: Store,
        models: PassModels,
        emit: Callable[[IndexEvent], None],
        summary: IndexSummary,
        runner: Runner | None = None,
    ) -> None:
        self.store = store
        self.models = models
        self.emit = emit
        self.summary = summary
        self.runner = runner
        self.reusable = store.reusable_by_hash()
        # Files that could not be read where the work ran (on a cluster: not
        # found on its workers), left unrecorded so that the next run tries
        # them again; this run's later passes leave them alone.
        self.unread: set[str] = set()

    def facts(self, prepared: Prepared) -> FileFacts:
        found, decoded = prepared.task.found, prepared.facts
        if prepared.outcome == "failed":
            status, error = "failed", prepared.error
        elif decoded.partial:
            status, error = "partial", decoded.partial
        else:
            status, error = "ok", None
        return FileFacts(
            path=found.path,
            kind=found.kind,
            size=found.size,
            mtime_ns=found.mtime_ns,
            content_hash=prepared.content_hash,
            status=status,
            error=error,
            width=decoded.width,
            height=decoded.height,
            duration=decoded.duration,
            captured_at=decoded.captured_at,
        )

    def finish(self, prepared: Prepared, outcome: str) -> None:
        summary, task = self.summary, prepared.task
        if outcome == "failed":
            summary.failed += 1
        elif outcome == "moved":
            summary.moved += 1
        elif outcome == "touched":
            summary.unchanged += 1
        elif task.reason == "incomplete" and all(m.family == "words" for m in task.modalities):
            summary.words += 1
        elif task.reason == "incomplete":
            summary.reembedded += 1
        elif outcome == "copied" and task.reason == "new":
            summary.copied += 1
        elif task.reason == "new":
            summary.new += 1
        else:
            summary.changed += 1
        if outcome == "copied" and task.reason != "new":
            summary.reused += 1
        self.emit(FileDone(task.found.path, outcome, task.found.size))

    def write_without_model(self, prepared: Prepared) -> bool:
        """Write what needs no embedding; False when the file must be embedded."""
        task = prepared.task
        if prepared.outcome == "failed":
            self.store.write_failed(self.facts(prepared))
            self.finish(prepared, "failed")
        elif prepared.outcome == "touched" and task.record is not None:
            self.store.touch_file(task.record.id, task.found.size, task.found.mtime_ns)
            self.finish(prepared, "touched")
        elif prepared.outcome == "reuse" and prepared.content_hash is not None:
            self.reuse(prepared, self.reusable[prepared.content_hash], prepared.content_hash)
        elif prepared.outcome == "unread":
            self.unread.add(task.found.path)
            self.finish(prepared, "failed")
        else:
            return False
        return True

    def reuse(self, prepared: Prepared, source_id: int, content_hash: str) -> None:
        """Store a file whose content is indexed already: moved, when one of the
        files with that content is gone from its path (any of them: a renamed
        folder holding two identical files moves both), else copied."""
        facts = self.facts(prepared)
        gone = next(
            (
                file_id
                for file_id, path in self.store.reusable_with_hash(content_hash)
                if path != facts.path and not os.path.exists(path)
            ),
            None,
        )
        if gone is not None:
            self.store.move_file(gone, facts)
            self.finish(prepared, "moved")
        else:
            self.store.copy_file(source_id, facts)
            self.finish(prepared, "copied")

    def write(self, prepared: Prepared, vectors: dict[str, list[Any]]) -> None:
        task, spaces = prepared.task, self.models.spaces
        facts = self.facts(prepared)
        parts = [
            Part(
                spaces[name],
                decoded.segments,
                vectors.get(name, ()),
                decoded.texts,
                decoded.boxes,
                decoded.language,
                modalities.get(name).detects_language,
            )
            for name, decoded in prepared.parts.items()
        ]
        if task.reason == "incomplete" and task.record is not None:
            for part, decoded in zip(parts, prepared.parts.values(), strict=True):
                if part.space.words:
                    self.store.replace_words(task.record.id, part, decoded.partial)
                    continue
                spans = [(s.start, s.end) for s in part.segments]
                if spans and self.store.segment_spans(task.record.id, part.space.modality) == spans:
                    # Same file, new model: add vectors beside the old model's,
                    # so that search stays whole until the switch is done.
                    self.store.add_vectors(task.record.id, facts.kind, part.vectors, part.space)
                else:
                    self.store.replace_part(task.record.id, facts, part)
        else:
            file_id = self.store.write_file(facts, parts)
            if prepared.content_hash is not None and facts.status == "ok":
                self.reusable.setdefault(prepared.content_hash, file_id)
        if facts.status == "partial":
            self.summary.partial += 1
        self.finish(prepared, "embedded")

    def embedded(self, batch: list[Prepared]) -> Results:
        if not batch:
            return
        vectors = embed_prepared(batch, self.models.embedding())
        for prepared in batch:
            yield prepared, vectors[id(prepared)]

    def batch_full(self, batch: list[Prepared]) -> bool:
        """Whether the batch should be written now: some model has a full batch
        of inputs waiting, or none waits for anything (words are written file
        by file, as they are read)."""
        waiting_any = False
        for name, embedder in self.models.embedding().items():
            waiting = sum(len(item.parts[name].inputs) for item in batch if name in item.parts)
            if waiting >= embedder.batch_size:
                return True
            waiting_any = waiting_any or waiting > 0
        return not waiting_any

    def process(self, tasks: list[Task]) -> None:
        """Write each file as its results come, from this machine or a cluster."""
        if not tasks:
            return  # nothing is started, nor sent anywhere
        run = self.runner or self.local
        results = run(tasks, self.models, self.reusable, self.emit)
        try:
            for prepared, vectors in results:
                if vectors is None:
                    self.write_without_model(prepared)
                else:
                    self.write(prepared, vectors)
        finally:
            results.close()

    def local(
        self,
        tasks: list[Task],
        models: PassModels,
        reusable: Mapping[str, int],
        emit: Callable[[IndexEvent], None],
    ) -> Results:
        """Hash and decode in threads here, embed in batches here."""
        # Decoding releases the GIL; on a GPU it is the bottleneck, so use the
        # cores there are (measured in bench/README.md), up to 8.
        pool = ThreadPoolExecutor(max_workers=max(2, min(8, usable_cores())))
        pending: deque[Future[Prepared]] = deque()
        queue = iter(tasks)
        batch: list[Prepared] = []

        def submit(task: Task) -> None:
            pending.append(pool.submit(prepare, task, reusable, models, emit))

        try:
            for task in queue:
                submit(task)
                if len(pending) >= WINDOW:
                    break
            while pending:
                prepared = pending.popleft().result()
                next_task = next(queue, None)
                if next_task is not None:
                    submit(next_task)
                if prepared.outcome != "decoded":
                    yield prepared, None
                    continue
                batch.append(prepared)
                if self.batch_full(batch):
                    yield from self.embedded(batch)
                    batch = []
            yield from self.embedded(batch)
        except BaseException:
            # A worker may be stuck in a read that never returns (a hung
            # network mount): do not wait for it on the way out.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def _plan(
    found: list[FoundFile],
    known: dict[str, FileRecord],
    present: dict[int, set[int]],
    used: list[Modality],
    space_ids: dict[str, int | None],
) -> tuple[list[Task], int, int]:
    """What each found file needs, how many are unchanged, and how many failed
    before and are unchanged since (not retried): `space_ids` are the ids of
    the spaces the run writes (None: not created yet, so no file has it)."""
    tasks: list[Task] = []
    unchanged = still_failed = 0
    for item in found:
        needed = tuple(m for m in used if item.kind in m.kinds)
        record = known.get(item.path)
        if record is None:
            if needed:
                tasks.append(Task(item, None, "new", needed))
            continue
        stored = present.get(record.id, set())
        missing = tuple(m for m in needed if space_ids[m.name] not in stored)
        if record.size != item.size or record.mtime_ns != item.mtime_ns:
            if needed:
                tasks.append(Task(item, record, "changed", needed, has_every_part=not missing))
            else:
                unchanged += 1
        elif record.status == "failed":
            still_failed += 1
        elif not missing:
            unchanged += 1
        else:
            tasks.append(Task(item, record, "incomplete", missing))
    return tasks, unchanged, still_failed


def _named_roots(
    store: Store, paths: Sequence[str | os.PathLike[str]], options: IndexOptions
) -> list[Root]:
    """The roots the user named: each is indexed even if it was forgotten (naming
    it brings it back), under its one canonical spelling."""
    remembered = {root.path: root for root in store.roots()}
    for raw in paths:
        spelled = os.path.abspath(os.path.expanduser(os.fspath(raw)))
        canonical = canonical_path(raw)
        if os.path.exists(canonical):
            store.unforget(canonical)
        if spelled != canonical and os.path.isdir(canonical):
            # Indexed before through a link: one folder, one set of rows.
            store.rename_folder(spelled, canonical)
            store.forget_roots([spelled])
    roots = normalize_roots(paths, skipped=store.forgotten())
    return [
        Root(
            root,
            excludes=tuple(options.excludes)
            if options.excludes is not None
            else remembered.get(root, Root(root)).excludes,
        )
        for root in roots
    ]


def _remembered_roots(store: Store, emit: Callable[[IndexEvent], None]) -> list[Root]:
    """The remembered roots that are there today; those that are not (an
    unmounted disk) are reported and their files kept."""
    remembered = store.roots()
    if not remembered:
        raise UsageError("no folder given and none remembered; try: mediafind index ~/Pictures")
    present: list[Root] = []
    for root in remembered:
        if not os.path.exists(root.path):
            emit(Problem(root.path, "not found (unmounted?); its files kept", "root"))
            continue
        canonical = canonical_path(root.path)
        if canonical != root.path:
            store.rename_folder(root.path, canonical)
            store.forget_roots([root.path])
        present.append(Root(canonical, root.last_indexed_at, root.excludes))
    if not present:
        raise UsageError("none of the remembered folders is there; is the disk mounted?")
    kept = set(normalize_roots([root.path for root in present], skipped=store.forgotten()))
    return [root for root in present if root.path in kept]


def index_paths(
    store: Store,
    paths: Sequence[str | os.PathLike[str]] = (),
    models: Mapping[str, Model] | None = None,
    options: IndexOptions | None = None,
    on_event: Callable[[IndexEvent], None] | None = None,
) -> IndexSummary:
    """Bring the index up to date with the media files under `paths` (none:
    the folders the index remembers).

    `models` maps modality names to their embedders (by default
    `modalities.models_for_index(store)`: the environment's and config
    file's choices, else the index's own models, else the defaults); a
    modality left out is left out of the run. Files that cannot be read are
    recorded as failed, reported through `on_event` and skipped; they are
    retried once they change. One run at a time writes to an index
    (IndexBusyError otherwise). Raises IndexInterruptedError (carrying the
    summary so far) on Ctrl-C.
    """
    options = options or IndexOptions()
    if options.decode.max_gap <= 0:
        raise UsageError(
            f"{{argument}} must be a positive number of seconds, got {options.decode.max_gap}",
            argument="max_gap",
        )
    if models is None:
        models = modalities.models_for_index(store)
    emit = on_event or (lambda event: None)
    started = time.monotonic()
    with WriterLock(store.path):
        store.check_writable()
        roots = _named_roots(store, paths, options) if paths else _remembered_roots(store, emit)
        summary = _index_roots(store, roots, models, options, emit, started)
    return summary


def discard_if_unused(store: Store) -> bool:
    """Remove an index that `store` created and nothing was written to (its
    lock file too): a first run that stopped before any work, a model that
    cannot be had say, leaves nothing that later passes for an empty index.
    Returns whether it was removed; an index another run is writing to stays."""
    if not store.created or store.readonly:
        return False
    lock = WriterLock(store.path)
    try:
        lock.acquire()
    except MediafindError:
        return False
    try:
        if store.all_paths() or store.roots():
            return False
        store.discard()
        lock.remove()
        return True
    finally:
        lock.release()


def _ready(
    store: Store,
    used: list[Modality],
    models: Mapping[str, Model],
    spaces: dict[str, Space],
    emit: Callable[[IndexEvent], None],
) -> None:
    """Make each model ready and give it a space: the slow parts happen here,
    said (ModelPreparing), before the first file of a pass. Loading is said
    too: seconds of a silent pause would look like the last file hanging."""
    for modality in used:
        embedder = models[modality.name]
        embedder.on_prepare = emit
        started = time.monotonic()
        emit(ModelPreparing(embedder.name, "loading it", once=False))
        try:
            embedder.prepare()
        finally:
            emit(ModelReady(embedder.name, time.monotonic() - started))
        if modality.name not in spaces:
            spaces[modality.name] = new_space(store, modality, embedder)


def _pass(
    store: Store,
    label: str,
    tasks: list[Task],
    models: PassModels,
    emit: Callable[[IndexEvent], None],
    summary: IndexSummary,
    found: int,
    runner: Runner | None = None,
) -> set[str]:
    """Process one pass's tasks (the vectors, then the words), interruptible.
    Returns the paths that could not be read where the work ran."""
    if tasks:
        _ready(store, models.used, models.embedders, models.spaces, emit)
    emit(ScanDone(found, len(tasks), sum(task.found.size for task in tasks), label))
    run = _Run(store, models, emit, summary, runner)
    run.process(tasks)
    return run.unread


def _settle(store: Store, used: list[Modality], spaces: dict[str, Space], changed: bool) -> int:
    """After a pass: switch to a new model's space once every file has it, and
    refresh the statistics that calibrate scores. Returns the files that
    still lack a new model's part."""
    pending_total = 0
    for modality in used:
        space = spaces.get(modality.name)
        if space is None:
            continue
        if not space.active:
            pending = store.files_missing_from(space, modality.kinds)
            pending_total += pending
            if pending == 0:
                store.activate_space(space)
        if changed and not space.words:
            store.update_stats(space)
        if changed:
            modality.settle(store, space)
    return pending_total


def _spaces(
    store: Store, chosen: list[Modality], models: Mapping[str, Model], reembed: bool
) -> dict[str, Space]:
    """The spaces the run's models already have in the index."""
    spaces: dict[str, Space] = {}
    for modality in chosen:
        try:
            space = existing_space(store, modality, models[modality.name], reembed=reembed)
        except ModelUnavailableError:
            # Its folder is gone, so its vectors cannot be told apart from the
            # index's: `check_models` names it, with every other model the run
            # cannot have, once it is known that the run needs it.
            continue
        if space is not None:
            spaces[modality.name] = space
    return spaces


def passes(used: Sequence[Modality]) -> list[list[Modality]]:
    """The run's passes, in order: each modality comes in the pass after the
    last of those it declares `after` (among those used), so the first pass
    gives every file its pictures and sounds, the next reads its words, and
    a modality that reads words comes after that."""
    by_name = {m.name: m for m in used}
    depth: dict[str, int] = {}

    def level(modality: Modality, seen: tuple[str, ...] = ()) -> int:
        if modality.name in seen:
            raise ValueError(f"modalities come after each other in a circle: {seen}")
        if modality.name not in depth:
            earlier = [
                by_name[name] for name in (*modality.after, *modality.reads) if name in by_name
            ]
            depth[modality.name] = 1 + max(
                (level(m, (*seen, modality.name)) for m in earlier), default=-1
            )
        return depth[modality.name]

    layers: list[list[Modality]] = []
    for modality in used:
        at = level(modality)
        layers.extend([] for _ in range(at + 1 - len(layers)))
        layers[at].append(modality)
    return [layer for layer in layers if layer]


def _index_found(
    store: Store,
    found: list[FoundFile],
    known: Callable[[], dict[str, FileRecord]],
    models: Mapping[str, Model],
    options: IndexOptions,
    emit: Callable[[IndexEvent], None],
    started: float,
    after_first_pass: Callable[[IndexSummary, bool], bool] = lambda summary, changed: changed,
    *,
    first: bool = True,
    later: bool = True,
) -> IndexSummary:
    """Index `found` (files as a walk found them, and `known` their rows), pass
    by pass. `after_first_pass` runs once the first pass is written (the
    files are searchable by sight and sound from there): a walk sweeps what
    is gone and remembers its roots; it returns whether the index changed.
    `first` and `later` choose the passes that run: the pictures and sounds,
    the words after them."""
    chosen = [modality for modality in modalities.modalities() if modality.name in models]
    spaces = _spaces(store, chosen, models, options.reembed)
    # A model is needed only when there is something for it: a photo folder
    # never loads the sound model.
    kinds = {item.kind for item in found}
    layers = passes([modality for modality in chosen if kinds & set(modality.kinds)]) or [[]]

    def plan(passing: list[Modality]) -> tuple[list[Task], int, int]:
        ids = {m.name: spaces[m.name].id if m.name in spaces else None for m in passing}
        return _plan(found, known(), store.spaces_by_file(), passing, ids)

    if not first:
        layers = layers[1:] or [[]]
    elif not later:
        layers = layers[:1]
    tasks, unchanged, still_failed = plan(layers[0])
    # Every model any pass needs is checked now, before any work: one
    # message names all that are missing.
    needed = {m.name: models[m.name] for m in layers[0]} if tasks else {}
    for passing in layers[1:]:
        if plan(passing)[0]:
            needed.update({m.name: models[m.name] for m in passing})
    check_models(needed)

    summary = IndexSummary(unchanged=unchanged, still_failed=still_failed)
    embedders = {m.name: models[m.name] for layer in layers for m in layer}
    unread: set[str] = set()
    try:
        for number, passing in enumerate(layers):
            if number:
                # A file not read in one pass is not sent again in the next.
                tasks = [task for task in plan(passing)[0] if task.found.path not in unread]
            if number or not first:
                _read_earlier(store, tasks)
            label = passing[0].pass_label if passing else "indexing"
            unread |= _pass(
                store,
                label,
                tasks,
                PassModels(passing, embedders, spaces, options.decode),
                emit,
                summary,
                len(found),
                options.runner,
            )
            changed = bool(tasks)
            if number == 0:
                changed = after_first_pass(summary, changed)
            summary.reembed_pending += _settle(store, passing, spaces, changed)
    except KeyboardInterrupt:
        summary.elapsed = time.monotonic() - started
        raise IndexInterruptedError(summary) from None
    summary.elapsed = time.monotonic() - started
    return summary


def _read_earlier(store: Store, tasks: list[Task]) -> None:
    """Give each task the words its modalities read, as the index holds them."""
    for task in tasks:
        for name in {name for modality in task.modalities for name in modality.reads}:
            task.earlier[name] = store.words_of(task.found.path, name)


def _index_roots(
    store: Store,
    roots: list[Root],
    models: Mapping[str, Model],
    options: IndexOptions,
    emit: Callable[[IndexEvent], None],
    started: float,
) -> IndexSummary:
    paths = [root.path for root in roots]
    found = scan(
        paths,
        include_hidden=options.include_hidden,
        excludes=options.default_excludes,
        root_excludes={root.path: root.excludes for root in roots},
        skipped=store.forgotten(),
    )
    for folder, reason in found.unreadable:
        emit(Problem(folder, f"cannot list folder ({reason}); kept what was indexed", "folder"))
    known = store.files_under(paths)

    def sweep(summary: IndexSummary, changed: bool) -> bool:
        # Only a finished walk may conclude that a file is gone, and a folder
        # that could not be listed is not evidence that its files were deleted.
        present = {item.path for item in found.files}
        missing = [
            path
            for path in known
            if path not in present and not any(is_under(path, f) for f, _ in found.unreadable)
        ]
        summary.removed = store.delete_files(missing)
        store.record_roots(Root(root.path, time.time(), root.excludes) for root in roots)
        return changed or bool(summary.removed)

    return _index_found(
        store,
        found.files,
        lambda: store.files_under(paths),
        models,
        options,
        emit,
        started,
        sweep,
    )


def index_files(
    store: Store,
    paths: Sequence[str | os.PathLike[str]],
    models: Mapping[str, Model],
    options: IndexOptions | None = None,
    on_event: Callable[[IndexEvent], None] | None = None,
    *,
    lock: WriterLock | None = None,
    first: bool = True,
    later: bool = True,
) -> IndexSummary:
    """Index these files as they are now (new, changed, or lacking a part),
    and nothing else: no folder is walked or remembered, nothing is swept.
    For a watcher, or any caller that knows what changed: `models` are
    loaded once, however many calls use them. A path that is not a media
    file, or is gone, is passed over (`forget_files` drops what is gone).
    Takes the index's writer lock for the call, unless the caller holds it
    (`lock`). `first=True, later=False` gives the files their pictures and
    sounds only; `first=False` then reads their words: a watcher runs the
    words later, so that a long recording never holds back new photos."""
    options = options or IndexOptions()
    emit = on_event or (lambda event: None)
    started = time.monotonic()
    with contextlib.nullcontext() if lock is not None else WriterLock(store.path):
        store.check_writable()
        found = [item for item in map(found_file, paths) if item is not None]
        found = list({item.path: item for item in found}.values())
        canonical = [item.path for item in found]
        return _index_found(
            store,
            found,
            lambda: store.files_at(canonical),
            models,
            options,
            emit,
            started,
            first=first,
            later=later,
        )


def forget_files(
    store: Store, paths: Sequence[str | os.PathLike[str]], *, lock: WriterLock | None = None
) -> int:
    """Drop these files from the index (they were deleted, or moved away), and
    nothing else: unlike `upkeep.forget`, later runs index them again if they
    come back. Returns how many were indexed."""
    with contextlib.nullcontext() if lock is not None else WriterLock(store.path):
        store.check_writable()
        return store.delete_files([canonical_path(path) for path in paths])
