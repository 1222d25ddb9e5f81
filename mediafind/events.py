"""What an indexing run reports as it goes: light records that output can
render without importing the pipeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScanDone:
    found: int
    to_process: int


@dataclass(frozen=True)
class FileDone:
    path: str
    outcome: str  # embedded | moved | copied | touched | failed


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


@dataclass(frozen=True)
class RootMissing:
    """A remembered folder that is not there today (an unmounted disk): its files are kept."""

    path: str


IndexEvent = ScanDone | FileDone | FileFailed | FilePartial | FolderSkipped | RootMissing
