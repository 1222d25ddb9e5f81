"""The indexing pipeline: scan -> hash -> decode -> embed in batches -> write per file.

Work is incremental: a file whose size and mtime are unchanged is not opened;
a changed or new file whose content is already indexed (a move, a copy, a
touch) reuses the stored vectors; only new content is decoded and embedded.
Each file is written in its own transaction, so an interrupted run loses at
most the batch in flight and the next run picks up where it stopped.

A file has a part per modality: photos and video frames are embedded by the
visual model, recordings and videos' soundtracks by the audio model. Each
model writes to its own space, and a file missing from a space (sound was
switched on, a model was changed) gets just that part added.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mediafind.db import FileFacts, FileRecord, NewSegment, Part, Root, Space, Store, WriterLock
from mediafind.errors import IndexInterruptedError, MediaError, ModelMismatchError, UsageError
from mediafind.events import (
    FileDone,
    FileFailed,
    FilePartial,
    FolderSkipped,
    IndexEvent,
    RootMissing,
    ScanDone,
)
from mediafind.hashing import content_hash
from mediafind.media.audio import AudioReport, audio_windows
from mediafind.media.image import load_image
from mediafind.media.video import DEFAULT_MAX_GAP, sample_frames
from mediafind.models.clap import ClapEmbedder
from mediafind.models.clip import ClipEmbedder
from mediafind.scan import FoundFile, canonical_path, is_under, normalize_roots, scan

# Which models see which kinds of file.
MODALITIES = {"image": ("visual",), "video": ("visual", "audio"), "audio": ("audio",)}


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
    # Longest stretch of a video without a kept frame, in seconds.
    max_gap: float = DEFAULT_MAX_GAP


@dataclass
class IndexSummary:
    new: int = 0
    changed: int = 0
    moved: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    # Indexed, but only in part (a video damaged or cut short part-way).
    partial: int = 0
    # New or changed files whose vectors were copied from identical content.
    reused: int = 0
    # Unchanged files given a part they lacked (a new model, sound switched on).
    reembedded: int = 0
    # Files elsewhere in the index that still lack vectors from a new model.
    reembed_pending: int = 0
    elapsed: float = 0.0


@dataclass
class _Task:
    found: FoundFile
    record: FileRecord | None
    # "new": unknown path; "changed": stat differs; "complete": same file,
    # missing the parts in `modalities`.
    reason: str
    modalities: tuple[str, ...]
    # Every part the file needs is already stored (a touched file keeps them).
    complete: bool = False


@dataclass
class _Part:
    modality: str
    inputs: list[Any] = field(default_factory=list)  # model inputs, one per segment
    segments: list[NewSegment] = field(default_factory=list)


@dataclass
class _Prepared:
    task: _Task
    content_hash: str | None = None
    error: str | None = None
    reuse: bool = False
    touched: bool = False
    parts: list[_Part] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    captured_at: float | None = None
    # Why only part of the file was indexed.
    partial: str | None = None


@dataclass
class _Models:
    """The run's embedders and the spaces they write, by modality."""

    embedders: dict[str, Any]
    spaces: dict[str, Space]
    max_gap: float


def choose_model(
    store: Store | None, requested: str | None, default: str, modality: str = "visual"
) -> str:
    """The model to use: the one asked for, else the index's own, else the default."""
    if requested:
        return requested
    if store is not None:
        active = store.active_space(modality)
        if active is not None:
            return active.model
    return default


def choose_precision(store: Store | None, requested: str | None, modality: str = "visual") -> str:
    """--precision when given, else what the index was built with, else fp32.

    A modality new to the index follows the other's precision, so that
    `--precision int8` once is remembered for everything the index holds.
    """
    if requested:
        return requested
    if store is not None:
        own = store.active_space(modality)
        others = [store.active_space(m) for m in ("visual", "audio") if m != modality]
        for space in (own, *others):
            if space is not None:
                return space.precision
    return "fp32"


def existing_space(store: Store, embedder: Any, *, reembed: bool) -> Space | None:
    """The space holding `embedder`'s vectors, if any; refuses to mix two models.

    Cheap: it loads no model, so a wrong --model fails before any work.
    """
    modality = embedder.modality
    active = store.active_space(modality)
    key = embedder.key
    if active is not None and active.model_key == key:
        return active
    flag = "--model" if modality == "visual" else "--audio-model"
    if active is not None and not reembed and active.model == embedder.spec.text:
        wanted, held = embedder.precision, active.precision
        if wanted == held:
            raise ModelMismatchError(
                f"the {modality} model {active.model} holds other weights than those that "
                f"made the index {store.path} (its files were replaced); put the original "
                "files back, or re-embed every file with the new ones: "
                "mediafind index --reembed FOLDER..."
            )
        raise ModelMismatchError(
            f"the index {store.path} holds {held} {modality} vectors of {active.model}, not "
            f"{wanted} ones, and the two are not mixed; to switch, re-embed every file with: "
            f"mediafind index --precision {wanted} --reembed FOLDER..."
        )
    if active is not None and not reembed:
        raise ModelMismatchError(
            f"the index {store.path} holds {modality} vectors from model {active.model}, not "
            f"{embedder.spec.text}, and vectors of two models cannot be compared; to switch, "
            f"re-embed every file with: mediafind index {flag} {embedder.spec.text} --reembed "
            "FOLDER... (or keep both with another --db)"
        )
    return store.find_space(modality, key)


def new_space(store: Store, embedder: Any) -> Space:
    """A space for `embedder` (loads the model to learn its dimension); it is
    searched at once unless another model's space is still active."""
    active = store.active_space(embedder.modality) is not None
    return store.create_space(
        embedder.modality, embedder.spec.text, embedder.key, embedder.dim, active=not active
    )


def _visual_part(prepared: _Prepared, embedder: ClipEmbedder, max_gap: float) -> _Part:
    path = prepared.task.found.path
    part = _Part("visual")
    if prepared.task.found.kind == "video":
        video = sample_frames(path, min_side=embedder.image_size, max_gap=max_gap)
        starts = [frame.time for frame in video.frames]
        ends = [*starts[1:], max(video.duration, starts[-1])]
        part.inputs = [embedder.preprocess(frame.image) for frame in video.frames]
        part.segments = [
            NewSegment("visual", start, end) for start, end in zip(starts, ends, strict=True)
        ]
        prepared.width, prepared.height = video.width, video.height
        prepared.duration = video.duration
        prepared.captured_at = video.captured_at
        prepared.partial = video.problem
    else:
        decoded = load_image(path, embedder.image_size)
        part.inputs = [embedder.preprocess(decoded.image)]
        part.segments = [NewSegment("visual", None, None)]
        prepared.width, prepared.height = decoded.width, decoded.height
        prepared.captured_at = decoded.captured_at
    return part


def _audio_part(prepared: _Prepared, embedder: ClapEmbedder) -> _Part:
    part = _Part("audio")
    report = AudioReport()
    for window in audio_windows(
        prepared.task.found.path,
        rate=embedder.rate,
        window_seconds=embedder.window_seconds,
        report=report,
    ):
        part.inputs.append(embedder.features(window.samples))
        part.segments.append(NewSegment("audio", window.start, window.end))
    if prepared.task.found.kind == "audio":
        if report.duration == 0 and report.problem is None:
            raise MediaError("no sound in the file (no audio stream, or 0 samples)")
        prepared.duration = report.duration
        prepared.captured_at = report.captured_at
    if report.problem:
        problem = f"sound: {report.problem}"
        prepared.partial = f"{prepared.partial}; {problem}" if prepared.partial else problem
    return part


def _decode(prepared: _Prepared, models: _Models) -> None:
    """Model inputs and segments for each modality the task asks for."""
    for modality in prepared.task.modalities:
        if modality == "visual":
            prepared.parts.append(
                _visual_part(prepared, models.embedders["visual"], models.max_gap)
            )
            continue
        try:
            prepared.parts.append(_audio_part(prepared, models.embedders["audio"]))
        except MediaError as error:
            if prepared.task.found.kind == "audio":
                raise
            # A video whose sound cannot be read is still a video.
            prepared.partial = f"sound: {error}"
            prepared.parts.append(_Part("audio"))


def _prepare(task: _Task, reusable: dict[str, int], models: _Models) -> _Prepared:
    """Hash and decode one file (runs in a worker thread: both release the GIL).

    Whatever goes wrong with one file, expected or not, becomes that file's
    failure: a bad file never ends the run.
    """
    try:
        return _prepare_file(task, reusable, models)
    except Exception as error:
        prepared = _Prepared(task)
        prepared.error = f"unexpected error ({error.__class__.__name__}: {error})"
        return prepared


def _prepare_file(task: _Task, reusable: dict[str, int], models: _Models) -> _Prepared:
    prepared = _Prepared(task)
    try:
        prepared.content_hash = content_hash(task.found.path)
    except MediaError as error:
        prepared.error = str(error)
        return prepared
    record = task.record
    if task.reason != "complete":
        if (
            record is not None
            and record.status == "ok"
            and record.content_hash == prepared.content_hash
            and task.complete
        ):
            prepared.touched = True
            return prepared
        if prepared.content_hash in reusable:
            prepared.reuse = True
            return prepared
    try:
        _decode(prepared, models)
    except MediaError as error:
        prepared.error = str(error)
    return prepared


class _Run:
    """One indexing run's state; `index_paths` is the public entry point."""

    def __init__(self, store: Store, models: _Models, emit: Callable[[IndexEvent], None]) -> None:
        self.store = store
        self.models = models
        self.emit = emit
        self.summary = IndexSummary()
        self.reusable = store.reusable_by_hash()

    def facts(self, prepared: _Prepared) -> FileFacts:
        found = prepared.task.found
        if prepared.error is not None:
            status, error = "failed", prepared.error
        elif prepared.partial:
            status, error = "partial", prepared.partial
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
            width=prepared.width,
            height=prepared.height,
            duration=prepared.duration,
            captured_at=prepared.captured_at,
        )

    def finish(self, prepared: _Prepared, outcome: str) -> None:
        summary, task = self.summary, prepared.task
        if outcome == "failed":
            summary.failed += 1
        elif outcome == "moved":
            summary.moved += 1
        elif outcome == "touched":
            summary.unchanged += 1
        elif task.reason == "complete":
            summary.reembedded += 1
        elif task.reason == "new":
            summary.new += 1
        else:
            summary.changed += 1
        if outcome == "copied":
            summary.reused += 1
        self.emit(FileDone(task.found.path, outcome))

    def handle_without_model(self, prepared: _Prepared) -> bool:
        """Write what needs no embedding; False when the file must be embedded."""
        task = prepared.task
        if prepared.error is not None:
            self.store.write_failed(self.facts(prepared))
            self.emit(FileFailed(task.found.path, prepared.error))
            self.finish(prepared, "failed")
            return True
        if prepared.touched:
            assert task.record is not None
            self.store.touch_file(task.record.id, task.found.size, task.found.mtime_ns)
            self.finish(prepared, "touched")
            return True
        if prepared.reuse:
            self.reuse(prepared)
            return True
        return False

    def reuse(self, prepared: _Prepared) -> None:
        assert prepared.content_hash is not None
        source_id = self.reusable[prepared.content_hash]
        source_path = self.store.path_of(source_id)
        facts = self.facts(prepared)
        moved = source_path is not None and source_path != facts.path
        if moved and not os.path.exists(str(source_path)):
            self.store.move_file(source_id, facts)
            self.finish(prepared, "moved")
        else:
            self.store.copy_file(source_id, facts)
            self.finish(prepared, "copied")

    def embed(self, batch: list[_Prepared]) -> dict[int, dict[str, list[Any]]]:
        """Vectors per item and modality, each modality embedded in model-sized chunks."""
        vectors: dict[int, dict[str, list[Any]]] = {id(item): {} for item in batch}
        for modality, embedder in self.models.embedders.items():
            owners = [
                (item, part) for item in batch for part in item.parts if part.modality == modality
            ]
            inputs = [value for _, part in owners for value in part.inputs]
            if not inputs:
                for item, part in owners:
                    vectors[id(item)][part.modality] = []
                continue
            size = embedder.batch_size
            embed = embedder.embed_preprocessed if modality == "visual" else embedder.embed_features
            rows = [
                row for at in range(0, len(inputs), size) for row in embed(inputs[at : at + size])
            ]
            at = 0
            for item, part in owners:
                vectors[id(item)][part.modality] = rows[at : at + len(part.inputs)]
                at += len(part.inputs)
        return vectors

    def write(self, prepared: _Prepared, vectors: dict[str, list[Any]]) -> None:
        task, spaces = prepared.task, self.models.spaces
        facts = self.facts(prepared)
        parts = [
            Part(spaces[part.modality], part.segments, vectors[part.modality])
            for part in prepared.parts
        ]
        if task.reason == "complete" and task.record is not None:
            for part in parts:
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
        if prepared.partial:
            self.summary.partial += 1
            self.emit(FilePartial(task.found.path, prepared.partial))
        self.finish(prepared, "embedded")

    def write_batch(self, batch: list[_Prepared]) -> None:
        if batch:
            vectors = self.embed(batch)
            for prepared in batch:
                self.write(prepared, vectors[id(prepared)])

    def batch_full(self, batch: list[_Prepared]) -> bool:
        """Whether some model has a full batch of inputs waiting."""
        for modality, embedder in self.models.embedders.items():
            waiting = sum(
                len(part.inputs)
                for item in batch
                for part in item.parts
                if part.modality == modality
            )
            if waiting >= embedder.batch_size:
                return True
        return False

    def process(self, tasks: list[_Task]) -> None:
        if not tasks:
            return
        window = 64
        # Decoding releases the GIL; on a GPU it is the bottleneck, so use the
        # cores there are (measured in bench/README.md), up to 8.
        pool = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 1)))
        pending: deque[Future[_Prepared]] = deque()
        queue = iter(tasks)
        batch: list[_Prepared] = []
        try:
            for task in queue:
                pending.append(pool.submit(_prepare, task, self.reusable, self.models))
                if len(pending) >= window:
                    break
            while pending:
                prepared = pending.popleft().result()
                next_task = next(queue, None)
                if next_task is not None:
                    pending.append(pool.submit(_prepare, next_task, self.reusable, self.models))
                if not self.handle_without_model(prepared):
                    batch.append(prepared)
                    if self.batch_full(batch):
                        self.write_batch(batch)
                        batch = []
            self.write_batch(batch)
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
    spaces: dict[str, Space],
) -> tuple[list[_Task], int]:
    tasks: list[_Task] = []
    unchanged = 0
    for item in found:
        needed = tuple(m for m in MODALITIES[item.kind] if m in spaces)
        record = known.get(item.path)
        if record is None:
            if needed:
                tasks.append(_Task(item, None, "new", needed))
            continue
        stored = present.get(record.id, set())
        missing = tuple(m for m in needed if spaces[m].id not in stored)
        if record.size != item.size or record.mtime_ns != item.mtime_ns:
            if needed:
                tasks.append(_Task(item, record, "changed", needed, complete=not missing))
            else:
                unchanged += 1
        elif record.status == "failed" or not missing:
            unchanged += 1
        else:
            tasks.append(_Task(item, record, "complete", missing))
    return tasks, unchanged


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
            emit(RootMissing(root.path))
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
    paths: Sequence[str | os.PathLike[str]],
    embedder: ClipEmbedder,
    options: IndexOptions | None = None,
    on_event: Callable[[IndexEvent], None] | None = None,
    audio_embedder: ClapEmbedder | None = None,
) -> IndexSummary:
    """Bring the index up to date with the media files under `paths` (none:
    the folders the index remembers).

    Photos and videos' frames are embedded by `embedder`; recordings and
    videos' sound by `audio_embedder` (none: sound is left out). Files that
    cannot be read are recorded as failed, reported through `on_event` and
    skipped; they are retried once they change. One run at a time writes to an
    index (IndexBusyError otherwise). Raises IndexInterruptedError (carrying
    the summary so far) on Ctrl-C.
    """
    options = options or IndexOptions()
    if options.max_gap <= 0:
        raise UsageError("{argument} must be a positive number of seconds", argument="max_gap")
    emit = on_event or (lambda event: None)
    started = time.monotonic()
    with WriterLock(store.path):
        store.check_writable()
        roots = _named_roots(store, paths, options) if paths else _remembered_roots(store, emit)
        summary = _index_roots(store, roots, embedder, options, emit, audio_embedder, started)
    return summary


def _index_roots(
    store: Store,
    roots: list[Root],
    embedder: ClipEmbedder,
    options: IndexOptions,
    emit: Callable[[IndexEvent], None],
    audio_embedder: ClapEmbedder | None,
    started: float,
) -> IndexSummary:
    embedders: dict[str, Any] = {"visual": embedder}
    if audio_embedder is not None:
        embedders["audio"] = audio_embedder
    spaces = {}
    for modality, model in embedders.items():
        space = existing_space(store, model, reembed=options.reembed)
        if space is not None:
            spaces[modality] = space
    paths = [root.path for root in roots]
    found = scan(
        paths,
        include_hidden=options.include_hidden,
        excludes=options.default_excludes,
        root_excludes={root.path: root.excludes for root in roots},
        skipped=store.forgotten(),
    )
    for folder, reason in found.unreadable:
        emit(FolderSkipped(folder, reason))
    # A model is loaded only when there is something for it: a photo folder
    # never loads the audio model.
    kinds = {item.kind for item in found.files}
    for modality, model in embedders.items():
        if modality not in spaces and any(modality in MODALITIES[kind] for kind in kinds):
            spaces[modality] = new_space(store, model)
    known = store.files_under(paths)
    tasks, unchanged = _plan(found.files, known, store.spaces_by_file(), spaces)
    emit(ScanDone(len(found.files), len(tasks)))

    used = {modality: embedders[modality] for modality in spaces}
    run = _Run(store, _Models(used, spaces, options.max_gap), emit)
    run.summary.unchanged = unchanged
    try:
        run.process(tasks)
    except KeyboardInterrupt:
        run.summary.elapsed = time.monotonic() - started
        raise IndexInterruptedError(run.summary) from None

    # Only a finished walk may conclude that a file is gone, and a folder that
    # could not be listed is not evidence that its files were deleted.
    present = {item.path for item in found.files}
    missing = [
        path
        for path in known
        if path not in present and not any(is_under(path, f) for f, _ in found.unreadable)
    ]
    run.summary.removed = store.delete_files(missing)
    for space in spaces.values():
        if not space.active:
            pending = store.files_missing_from(space)
            run.summary.reembed_pending += pending
            if pending == 0:
                store.activate_space(space)
        if tasks or run.summary.removed:
            store.update_stats(space)
    now = time.time()
    store.record_roots(Root(root.path, now, root.excludes) for root in roots)
    run.summary.elapsed = time.monotonic() - started
    return run.summary
