"""The indexing pipeline: scan -> hash -> decode -> embed in batches -> write per file.

Work is incremental: a file whose size and mtime are unchanged is not opened;
a changed or new file whose content is already indexed (a move, a copy, a
touch) reuses the stored vectors; only new content is decoded and embedded.
Each file is written in its own transaction, so an interrupted run loses at
most the batch in flight and the next run picks up where it stopped.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mediafind.db import FileFacts, FileRecord, NewSegment, Space, Store
from mediafind.errors import IndexInterruptedError, MediaError, ModelMismatchError, UsageError
from mediafind.hashing import content_hash
from mediafind.media.image import load_image
from mediafind.media.video import DEFAULT_MAX_GAP, sample_frames
from mediafind.models.clip import ClipEmbedder
from mediafind.scan import FoundFile, is_under, normalize_roots, scan


@dataclass
class IndexOptions:
    include_hidden: bool = False
    excludes: Sequence[str] = ()
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
    # Unchanged files embedded again for a new model.
    reembedded: int = 0
    # Files elsewhere in the index that still lack vectors from the new model.
    reembed_pending: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True)
class ScanDone:
    found: int
    to_process: int


@dataclass(frozen=True)
class FileDone:
    path: str
    outcome: str  # new | changed | moved | copied | touched | reembedded | failed


@dataclass(frozen=True)
class FileFailed:
    path: str
    reason: str


@dataclass(frozen=True)
class FilePartial:
    path: str
    reason: str


@dataclass(frozen=True)
class FolderSkipped:
    path: str
    reason: str


IndexEvent = ScanDone | FileDone | FileFailed | FilePartial | FolderSkipped


@dataclass
class _Task:
    found: FoundFile
    record: FileRecord | None
    # "new": unknown path; "changed": stat differs; "reembed": same file, new model.
    reason: str
    # The file's current vectors are in this run's space.
    in_space: bool = False


@dataclass
class _Prepared:
    task: _Task
    content_hash: str | None = None
    error: str | None = None
    reuse: bool = False
    touched: bool = False
    # Model inputs, one per segment.
    tensors: list[Any] = field(default_factory=list)
    segments: list[NewSegment] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    # Why only part of the file was indexed.
    partial: str | None = None


@dataclass
class _Reusable:
    """Indexed content by hash, shared read-only with the decoding threads."""

    by_hash: dict[str, int] = field(default_factory=dict)


def choose_model(store: Store | None, requested: str | None, default: str) -> str:
    """The model to use: the one asked for, else the index's own, else the default."""
    if requested:
        return requested
    if store is not None:
        active = store.active_space("visual")
        if active is not None:
            return active.model
    return default


def prepare_space(store: Store, embedder: ClipEmbedder, *, reembed: bool) -> Space:
    """The space this run writes to; refuses to mix two models' vectors."""
    active = store.active_space("visual")
    key = embedder.key
    if active is not None and active.model_key == key:
        return active
    if active is not None and not reembed:
        raise ModelMismatchError(
            f"the index {store.path} holds vectors from model {active.model}, not "
            f"{embedder.spec.text}, and vectors of two models cannot be compared; to switch, "
            f"re-embed every file with: mediafind index --model {embedder.spec.text} --reembed "
            "FOLDER... (or keep both with another --db)"
        )
    existing = store.find_space("visual", key)
    if existing is not None:
        return existing
    return store.create_space(
        "visual", embedder.spec.text, key, embedder.dim, active=active is None
    )


def _decode(prepared: _Prepared, embedder: ClipEmbedder, max_gap: float) -> None:
    """Fill in model inputs and segments for a photo (one) or a video (its kept frames)."""
    path = prepared.task.found.path
    if prepared.task.found.kind == "video":
        video = sample_frames(path, min_side=embedder.image_size, max_gap=max_gap)
        starts = [frame.time for frame in video.frames]
        ends = [*starts[1:], max(video.duration, starts[-1])]
        prepared.tensors = [embedder.preprocess(frame.image) for frame in video.frames]
        prepared.segments = [
            NewSegment("visual", start, end) for start, end in zip(starts, ends, strict=True)
        ]
        prepared.width, prepared.height = video.width, video.height
        prepared.duration = video.duration
        prepared.partial = video.problem
    else:
        decoded = load_image(path, embedder.image_size)
        prepared.tensors = [embedder.preprocess(decoded.image)]
        prepared.segments = [NewSegment("visual", None, None)]
        prepared.width, prepared.height = decoded.width, decoded.height


def _prepare(task: _Task, reusable: _Reusable, embedder: ClipEmbedder, max_gap: float) -> _Prepared:
    """Hash and decode one file (runs in a worker thread: both release the GIL)."""
    prepared = _Prepared(task)
    try:
        prepared.content_hash = content_hash(task.found.path)
    except OSError as error:
        prepared.error = error.strerror or str(error)
        return prepared
    record = task.record
    if task.reason != "reembed":
        if (
            record is not None
            and record.status == "ok"
            and record.content_hash == prepared.content_hash
            and task.in_space
        ):
            prepared.touched = True
            return prepared
        if prepared.content_hash in reusable.by_hash:
            prepared.reuse = True
            return prepared
    try:
        _decode(prepared, embedder, max_gap)
    except MediaError as error:
        prepared.error = str(error)
    return prepared


class _Run:
    """One indexing run's state; `index_paths` is the public entry point."""

    def __init__(
        self,
        store: Store,
        embedder: ClipEmbedder,
        space: Space,
        emit: Callable[[IndexEvent], None],
        max_gap: float = DEFAULT_MAX_GAP,
    ) -> None:
        self.max_gap = max_gap
        self.store = store
        self.embedder = embedder
        self.space = space
        self.emit = emit
        self.summary = IndexSummary()
        self.reusable = _Reusable(store.reusable_by_hash(space))

    def facts(self, prepared: _Prepared, status: str, error: str | None = None) -> FileFacts:
        found = prepared.task.found
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
        )

    def done(self, prepared: _Prepared, outcome: str) -> None:
        self.emit(FileDone(prepared.task.found.path, outcome))

    def count(self, task: _Task, outcome: str) -> None:
        summary = self.summary
        if outcome == "failed":
            summary.failed += 1
        elif outcome == "moved":
            summary.moved += 1
        elif outcome == "touched":
            summary.unchanged += 1
        elif task.reason == "reembed":
            summary.reembedded += 1
        elif task.reason == "new":
            summary.new += 1
        else:
            summary.changed += 1
        if outcome == "copied":
            summary.reused += 1

    def finish(self, prepared: _Prepared, outcome: str) -> None:
        self.count(prepared.task, outcome)
        self.done(prepared, outcome)

    def handle_without_model(self, prepared: _Prepared) -> bool:
        """Write what needs no embedding; False when the file must be embedded."""
        task = prepared.task
        if prepared.error is not None:
            self.store.write_failed(self.facts(prepared, "failed", prepared.error))
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
        source_id = self.reusable.by_hash[prepared.content_hash]
        source_path = self.store.path_of(source_id)
        facts = self.facts(prepared, "ok")
        if (
            source_path is not None
            and source_path != facts.path
            and not os.path.exists(source_path)
        ):
            self.store.move_file(source_id, facts)
            self.finish(prepared, "moved")
        else:
            self.store.copy_file(source_id, facts)
            self.finish(prepared, "copied")

    def embed(self, batch: list[_Prepared]) -> list[Any]:
        """Vectors for every item's segments, in model-sized chunks."""
        tensors = [tensor for item in batch for tensor in item.tensors]
        size = self.embedder.batch_size
        chunks = [
            self.embedder.embed_preprocessed(tensors[at : at + size])
            for at in range(0, len(tensors), size)
        ]
        vectors = [vector for chunk in chunks for vector in chunk]
        per_item, at = [], 0
        for item in batch:
            per_item.append(vectors[at : at + len(item.tensors)])
            at += len(item.tensors)
        return per_item

    def write_batch(self, batch: list[_Prepared]) -> None:
        if not batch:
            return
        for prepared, vectors in zip(batch, self.embed(batch), strict=True):
            task = prepared.task
            facts = self.facts(prepared, "partial" if prepared.partial else "ok", prepared.partial)
            if (
                task.reason == "reembed"
                and task.record is not None
                and self.store.segment_spans(task.record.id, "visual")
                == [(s.start, s.end) for s in prepared.segments]
            ):
                # Same file, new model: add vectors and keep the old model's,
                # so that search stays complete until the switch is done.
                self.store.add_vectors(task.record.id, facts.kind, vectors, self.space)
            else:
                file_id = self.store.write_file(facts, prepared.segments, vectors, self.space)
                if prepared.content_hash is not None and not prepared.partial:
                    self.reusable.by_hash.setdefault(prepared.content_hash, file_id)
            if prepared.partial:
                self.summary.partial += 1
                self.emit(FilePartial(task.found.path, prepared.partial))
            self.finish(prepared, "embedded")

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
                pending.append(
                    pool.submit(_prepare, task, self.reusable, self.embedder, self.max_gap)
                )
                if len(pending) >= window:
                    break
            while pending:
                prepared = pending.popleft().result()
                next_task = next(queue, None)
                if next_task is not None:
                    pending.append(
                        pool.submit(_prepare, next_task, self.reusable, self.embedder, self.max_gap)
                    )
                if not self.handle_without_model(prepared):
                    batch.append(prepared)
                    if sum(len(item.tensors) for item in batch) >= self.embedder.batch_size:
                        self.write_batch(batch)
                        batch = []
            self.write_batch(batch)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _plan(
    found: list[FoundFile], known: dict[str, FileRecord], in_space: set[int]
) -> tuple[list[_Task], int]:
    tasks: list[_Task] = []
    unchanged = 0
    for item in found:
        record = known.get(item.path)
        if record is None:
            tasks.append(_Task(item, None, "new"))
        elif record.size != item.size or record.mtime_ns != item.mtime_ns:
            tasks.append(_Task(item, record, "changed", in_space=record.id in in_space))
        elif record.status == "failed" or record.id in in_space:
            unchanged += 1
        else:
            tasks.append(_Task(item, record, "reembed"))
    return tasks, unchanged


def index_paths(
    store: Store,
    paths: Sequence[str | os.PathLike[str]],
    embedder: ClipEmbedder,
    options: IndexOptions | None = None,
    on_event: Callable[[IndexEvent], None] | None = None,
) -> IndexSummary:
    """Bring the index up to date with the media files under `paths`.

    Files that cannot be read are recorded as failed, reported through
    `on_event` and skipped; they are retried once they change. Raises
    IndexInterruptedError (carrying the summary so far) on Ctrl-C.
    """
    options = options or IndexOptions()
    emit = on_event or (lambda event: None)
    started = time.monotonic()
    roots = normalize_roots(paths)
    space = prepare_space(store, embedder, reembed=options.reembed)
    found = scan(roots, include_hidden=options.include_hidden, excludes=options.excludes)
    for folder, reason in found.unreadable:
        emit(FolderSkipped(folder, reason))
    known = store.files_under(roots)
    tasks, unchanged = _plan(found.files, known, store.file_ids_in_space(space))
    emit(ScanDone(len(found.files), len(tasks)))

    if options.max_gap <= 0:
        raise UsageError("--max-gap must be a positive number of seconds")
    run = _Run(store, embedder, space, emit, options.max_gap)
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
    if not space.active:
        run.summary.reembed_pending = store.files_missing_from(space)
        if run.summary.reembed_pending == 0:
            store.activate_space(space)
    store.record_roots(roots, time.time())
    run.summary.elapsed = time.monotonic() - started
    return run.summary
