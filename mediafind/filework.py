"""What happens to one file before it is written: it is hashed, decoded for
each modality that reads it, and its inputs embedded in batches with other
files'. This runs wherever the work runs (threads here, or a cluster's
workers, see `mediafind.cluster`); `mediafind.index` plans the work and
writes the results, file by file, in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mediafind.db import FileRecord, Space
from mediafind.errors import MediaError
from mediafind.events import FileProgress, IndexEvent, Problem
from mediafind.hashing import content_hash
from mediafind.modalities import Decoded, DecodeOptions, Modality, Model
from mediafind.modalities.base import StoredWords
from mediafind.scan import FoundFile


@dataclass
class Task:
    found: FoundFile
    record: FileRecord | None
    # "new": an unknown path; "changed": its size or mtime differs;
    # "incomplete": the same file, lacking the parts in `modalities`.
    reason: str
    modalities: tuple[Modality, ...]
    # Every part the file needs is stored already (a touched file keeps them).
    has_every_part: bool = False
    # What the modalities that `modalities` read stored for the file (words,
    # by modality), read from the index before the task is sent anywhere.
    earlier: dict[str, list[StoredWords]] = field(default_factory=dict)


@dataclass
class Prepared:
    """A task after hashing and decoding, in a worker thread."""

    task: Task
    # failed | touched (same content) | reuse (identical content indexed) | decoded
    # | unread (could not be read where it was to be decoded, a cluster's
    # worker: said, not recorded, so that the next run tries it again)
    outcome: str
    content_hash: str | None = None
    error: str | None = None
    parts: dict[str, Decoded] = field(default_factory=dict)
    facts: Decoded = field(default_factory=Decoded)


# A pass's files as they are ready to write, in any order: each prepared, with
# its vectors by modality (None: nothing to embed, as for a failure or a copy).
Results = Generator[tuple[Prepared, dict[str, list[Any]] | None], None, None]


class Runner(Protocol):
    """Where a pass's files are hashed, decoded and embedded: `_Run.local`, or
    a cluster. Whatever runs them, this process writes them, file by file."""

    def __call__(
        self,
        tasks: list[Task],
        models: PassModels,
        reusable: Mapping[str, int],
        emit: Callable[[IndexEvent], None],
    ) -> Results: ...


@dataclass
class PassModels:
    """A pass's modalities, their models and the spaces they write."""

    used: list[Modality]
    embedders: dict[str, Model]
    spaces: dict[str, Space]
    decode: DecodeOptions

    def embedding(self) -> dict[str, Any]:
        """The models that embed inputs in batches (words are read file by file)."""
        return {m.name: self.embedders[m.name] for m in self.used if m.family == "vectors"}


def decode_file(prepared: Prepared, models: PassModels, emit: Callable[[IndexEvent], None]) -> None:
    """Model inputs and segments for each modality the task asks for."""
    found = prepared.task.found

    def progress(position: float, duration: float) -> None:
        emit(FileProgress(found.path, found.size, position, duration))

    for modality in prepared.task.modalities:
        embedder = models.embedders[modality.name]
        try:
            if modality.reads:
                decoded = modality.derive(prepared.task.earlier, embedder)
            else:
                decoded = modality.decode(found.path, found.kind, embedder, models.decode, progress)
        except Exception as error:
            if modality.essential(found.kind):
                raise
            # A video whose sound cannot be read is still a video, and a
            # failure reading words never costs a file the vectors it has.
            reason = (
                str(error)
                if isinstance(error, MediaError)
                else (f"unexpected error ({error.__class__.__name__}: {error})")
            )
            decoded = Decoded(partial=f"{modality.noun}: {reason}")
        prepared.parts[modality.name] = decoded
        facts = prepared.facts
        for name in ("width", "height", "duration", "captured_at"):
            if getattr(facts, name) is None:
                setattr(facts, name, getattr(decoded, name))
        if decoded.partial:
            facts.partial = (
                f"{facts.partial}; {decoded.partial}" if facts.partial else decoded.partial
            )


def prepare(
    task: Task, reusable: Container[str], models: PassModels, emit: Callable[[IndexEvent], None]
) -> Prepared:
    """Hash and decode one file (runs in a worker thread: both release the GIL).

    Whatever goes wrong with one file, expected or not, becomes that file's
    failure, said at once: a bad file never ends the run.
    """
    try:
        prepared = _prepare_file(task, reusable, models, emit)
    except Exception as error:
        prepared = Prepared(task, "failed")
        prepared.error = f"unexpected error ({error.__class__.__name__}: {error})"
    if prepared.outcome == "failed":
        emit(Problem(task.found.path, prepared.error or "", "failed"))
    elif prepared.facts.partial:
        emit(Problem(task.found.path, prepared.facts.partial, "partial"))
    return prepared


def _prepare_file(
    task: Task, reusable: Container[str], models: PassModels, emit: Callable[[IndexEvent], None]
) -> Prepared:
    record = task.record
    if task.reason == "incomplete" and record is not None and record.content_hash:
        digest = record.content_hash  # size and mtime unchanged: so is the content
    else:
        try:
            digest = content_hash(task.found.path)
        except MediaError as error:
            return Prepared(task, "failed", error=str(error))
    if task.reason != "incomplete":
        if (
            record is not None
            and record.status == "ok"
            and record.content_hash == digest
            and task.has_every_part
        ):
            return Prepared(task, "touched", digest)
        if digest in reusable:
            return Prepared(task, "reuse", digest)
    prepared = Prepared(task, "decoded", digest)
    try:
        decode_file(prepared, models, emit)
    except MediaError as error:
        return Prepared(task, "failed", digest, error=str(error))
    return prepared


def embed_prepared(
    batch: Sequence[Prepared], embedders: Mapping[str, Any]
) -> dict[int, dict[str, list[Any]]]:
    """Vectors per item (by `id`) and modality, each modality embedded in
    model-sized chunks."""
    vectors: dict[int, dict[str, list[Any]]] = {id(item): {} for item in batch}
    for name, embedder in embedders.items():
        owners = [(item, item.parts[name]) for item in batch if name in item.parts]
        inputs = [value for _, part in owners for value in part.inputs]
        size = embedder.batch_size
        rows = [
            row
            for at in range(0, len(inputs), size)
            for row in embedder.embed_batch(inputs[at : at + size])
        ]
        at = 0
        for item, part in owners:
            vectors[id(item)][name] = rows[at : at + len(part.inputs)]
            at += len(part.inputs)
    return vectors
