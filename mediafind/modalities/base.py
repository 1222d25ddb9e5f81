"""What every modality is: the interface the pipeline, search and output use.

A modality is one way mediafind matches media: how things look, how they
sound. Each is one module that says which kinds of file it reads, how a file
becomes segments and model inputs, which model it uses (its option,
environment variable, config key and default), and how an example file and
a query are embedded. Nothing outside the modality modules branches on a
modality's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mediafind.config import Choice
from mediafind.db import NewSegment
from mediafind.media.video import DEFAULT_MAX_GAP

if TYPE_CHECKING:
    import numpy as np

    from mediafind.errors import MediafindError
    from mediafind.events import ModelPreparing, ModelReady


class Model(Protocol):
    """What every modality's model is: named, identified, checked, prepared."""

    # What the user did to choose it (an option, a variable, the index's...).
    choice: Choice
    precision: str
    notes: list[str]
    on_prepare: Callable[[ModelPreparing | ModelReady], None]

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str:
        """What identifies its output: two keys' vectors or words are never mixed."""
        ...

    @property
    def dim(self) -> int:
        """Its vectors' dimension; 0 for a model that reads words."""
        ...

    @property
    def batch_size(self) -> int: ...

    def problem(self) -> MediafindError | None:
        """Why the model cannot be had, found cheaply, or None."""
        ...

    def prepare(self) -> None:
        """Load (or convert) the model now rather than on first use."""
        ...


class Embedder(Model, Protocol):
    """A model that turns prepared inputs and query texts into unit vectors."""

    def embed_batch(self, inputs: Sequence[Any]) -> np.ndarray:
        """Unit vectors, one row per prepared input (see the modality's `decode`)."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of query texts, in the same space as `embed_batch`'s."""
        ...


@dataclass(frozen=True)
class DecodeOptions:
    """What decoding may be told by the user (each modality reads its own)."""

    # Longest stretch of a video without a kept frame, in seconds.
    max_gap: float = DEFAULT_MAX_GAP
    # The language spoken (speech), when the user knows it: else detected.
    language: str | None = None


@dataclass
class Decoded:
    """One file's share for one modality: model inputs, their segments, and what
    decoding learned about the file."""

    inputs: list[Any] = field(default_factory=list)
    segments: list[NewSegment] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    captured_at: float | None = None
    # Why only part of the file could be read (kept, and said).
    partial: str | None = None
    # A words modality's segments hold words (one text per segment), not inputs.
    texts: list[str] = field(default_factory=list)
    # Where each text is in the picture (JSON fractions), for words read off
    # pictures; empty otherwise.
    boxes: list[str | None] = field(default_factory=list)
    language: str | None = None


# A segment of a words modality as the index holds it: (start, end, text).
StoredWords = tuple[float | None, float | None, str]

# How decoding reports how far into a long file it is: (seconds, duration).
Progress = Callable[[float, float], None]


@dataclass(frozen=True)
class Example:
    """A query by example: a photo, a recording, a whole video, or a moment of one."""

    path: str
    time: float | None = None


class Modality(ABC):
    """One way of matching media, backed by one model.

    A "vectors" modality's model embeds the segments' inputs in batches
    (`decode` prepares them in worker threads). A "words" modality reads words
    (what is said, what is written): `decode` runs its model too, file by
    file, and returns texts; its pass runs after every file has its vectors,
    since reading words is slow and search works without them meanwhile.
    """

    family: ClassVar[str] = "vectors"

    name: ClassVar[str]  # as stored in the index and given to --modality
    # What it reads, in a person's words: "picture", "sound" (in messages).
    noun: ClassVar[str]
    # The kinds of file it reads, and those of them that fail without it (a
    # photo is nothing without its picture; a video whose sound is damaged is
    # still a video): declared, never inferred from the order of registration.
    kinds: ClassVar[tuple[str, ...]]
    essential_for: ClassVar[tuple[str, ...]] = ()
    # What it offers other commands: "pictures" (the space `duplicates`
    # compares photos and frames in).
    offers: ClassVar[tuple[str, ...]] = ()
    # Its model: the command-line option and the library's argument that
    # choose it, the environment variable and config key, and the default.
    option: ClassVar[str]
    argument: ClassVar[str]
    env: ClassVar[str]
    config_key: ClassVar[str]
    default_model: ClassVar[str]
    # What its model option takes, for the help ("a Hugging Face repo id or
    # a local folder").
    model_help: ClassVar[str] = ""
    # The option that leaves it out of a run (None: it is always indexed),
    # and its help.
    skip_option: ClassVar[str | None] = None
    skip_help: ClassVar[str] = ""
    # The kinds of file it takes as examples (--like, similar).
    example_kinds: ClassVar[tuple[str, ...]]
    # Whether it hears the language of a file (speech): stored on the file.
    detects_language: ClassVar[bool] = False
    # What one of its segments is called (status: "12 phrases").
    unit: ClassVar[str] = "segment"
    # The modalities whose output it reads, or that must be done before it:
    # its pass comes after theirs (those left out of a run are ignored).
    after: ClassVar[tuple[str, ...]] = ()
    # The modalities whose stored words it reads (the meaning of what was
    # said, say): `derive` makes its segments from them, not from the file,
    # and its pass comes after theirs.
    reads: ClassVar[tuple[str, ...]] = ()
    # What the progress line says while its pass runs.
    pass_label: ClassVar[str] = "indexing"

    @abstractmethod
    def embedder(self, choice: Choice, device: str, precision: str) -> Model:
        """The model `choice` names (nothing is loaded yet)."""

    @abstractmethod
    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        """Read one file into model inputs and segments (in a worker thread).
        Raises MediaError when the file cannot be read for this modality."""

    def derive(self, words: Mapping[str, Sequence[StoredWords]], embedder: Any) -> Decoded:
        """For a modality that `reads`: one file's inputs and segments, made from
        what the modalities it reads stored for it (by modality name)."""
        raise NotImplementedError(f"{self.name} reads no other modality's words")

    def settle(self, store: Any, space: Any) -> None:
        """After its pass wrote something: work on the whole space (grouping
        faces into people, say). Nothing, unless a modality needs it."""
        return None

    def essential(self, kind: str) -> bool:
        """Whether a file of `kind` fails when this modality cannot read it (else
        it is indexed in part)."""
        return kind in self.essential_for


def mean_direction(vectors: Any) -> np.ndarray:
    """The unit vector along the mean of unit vectors: what a set of them is like."""
    import numpy as np

    mean = np.asarray(vectors).mean(axis=0)
    return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-12), dtype=np.float32)


class VectorModality(Modality):
    """A modality whose model embeds segments, compared with queries by cosine."""

    family: ClassVar[str] = "vectors"

    @abstractmethod
    def embedder(self, choice: Choice, device: str, precision: str) -> Embedder:
        """The model `choice` names (nothing is loaded yet)."""

    @abstractmethod
    def embed_example(self, example: Example, embedder: Any) -> np.ndarray:
        """One unit vector for a file given as an example (not indexed, or changed).
        Raises UsageError naming the example when it cannot be read."""


class WordsModality(Modality):
    """A modality whose model reads words, matched with queries as words."""

    family: ClassVar[str] = "words"

    @abstractmethod
    def example_words(self, example: Example, embedder: Any) -> str:
        """What a file given as an example holds in words (not indexed, or
        changed). Raises UsageError naming the example when it cannot be read."""
