"""What an indexing run reports as it goes, and its summary: light records that
output can render without importing the pipeline (or anything heavy)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IndexSummary:
    new: int = 0
    changed: int = 0
    # New paths whose content was indexed at a path now gone: its row moved.
    moved: int = 0
    # New paths whose content is indexed at a path still there: vectors copied.
    copied: int = 0
    unchanged: int = 0
    removed: int = 0
    # Failed in this run.
    failed: int = 0
    # Failed in an earlier run and unchanged since: not retried (nor unchanged).
    still_failed: int = 0
    # Indexed, but only in part (a video damaged or cut short part-way).
    partial: int = 0
    # Changed files whose new content is indexed already: vectors copied.
    reused: int = 0
    # Unchanged files given a part they lacked (a new model, sound switched on).
    reembedded: int = 0
    # Files whose words (speech, text) were read in this run's words pass.
    words: int = 0
    # Files elsewhere in the index that still lack vectors from a new model.
    reembed_pending: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True)
class ScanDone:
    """A pass is about to start: the vectors ("indexing"), then the words."""

    found: int
    to_process: int
    # The bytes of the files to process: the measure of the work left.
    work_bytes: int = 0
    label: str = "indexing"


@dataclass(frozen=True)
class ModelPreparing:
    """A model is being made ready (converted for this CPU, loaded): seconds to a minute."""

    name: str
    why: str
    # Done once and kept (a conversion), or paid by every run (a load).
    once: bool = True


@dataclass(frozen=True)
class ModelReady:
    name: str
    seconds: float


@dataclass(frozen=True)
class FileProgress:
    """How far into a long file (a video, a recording) its decoding has come."""

    path: str
    size: int  # bytes
    position: float  # seconds
    duration: float  # seconds, as the file declares it; 0 when unknown


@dataclass(frozen=True)
class FileDone:
    path: str
    outcome: str  # embedded | moved | copied | touched | failed
    size: int = 0


@dataclass(frozen=True)
class Problem:
    """Something the user should hear about, as one warning line.

    `what` says which: "failed" (the file is skipped until it changes),
    "partial" (indexed in part), "folder" (a folder could not be listed; its
    files are kept) or "root" (a remembered folder is missing; its files are
    kept).
    """

    path: str
    reason: str
    what: str


IndexEvent = ScanDone | ModelPreparing | ModelReady | FileProgress | FileDone | Problem
