"""Keeping an index tidy: the folders it remembers, files that are gone, files to forget."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from mediafind.db import Store
from mediafind.errors import DatabaseError, UsageError
from mediafind.scan import canonical_path, is_under

# VACUUM rewrites the whole file; only worth it once this share of it is free.
VACUUM_FREE_SHARE = 0.25


@dataclass
class PruneSummary:
    removed: int = 0
    vacuumed: bool = False
    # Why compacting failed (a full disk: VACUUM needs room for a copy); the
    # next prune tries again, since the free pages are still there.
    vacuum_failed: str | None = None
    # Remembered folders that are not there (an unmounted disk): kept as they are.
    missing_roots: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Forgotten:
    """What `forget` removed: files per path the user gave."""

    removed: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def remembered_roots(store: Store) -> list[str]:
    return [root.path for root in store.roots()]


def forget(store: Store, paths: Sequence[str | os.PathLike[str]]) -> Forgotten:
    """Remove these files, and everything under these folders, from the index,
    and leave them out of later runs until one is indexed by name again.

    A path that exists but holds nothing indexed is still left out of later
    runs; one that is neither indexed nor on disk is a typo (UsageError), and
    then nothing is removed or remembered."""
    if not paths:
        raise UsageError("{argument} needs at least one file or folder", argument="paths")
    given = {canonical_path(raw): raw for raw in paths}
    indexed = {target: list(store.files_under([target])) for target in given}
    # Checked before anything is removed: a typo among several paths loses nothing.
    for target, raw in given.items():
        if not indexed[target] and not os.path.lexists(target):
            raise UsageError(
                f"{os.fsdecode(raw)}: nothing is indexed there and there is no such file or "
                "folder; check the spelling (mediafind roots lists the indexed folders)",
                argument="paths",
            )
    removed = {target: store.delete_files(files) for target, files in indexed.items()}
    store.remember_forgotten(removed)
    return Forgotten(removed)


def forget_root(store: Store, root: str | os.PathLike[str]) -> int:
    """Forget a remembered folder and its files (those no other remembered folder holds)."""
    target = canonical_path(root)
    roots = remembered_roots(store)
    if target not in roots:
        known = ", ".join(roots) or "none"
        raise UsageError(f"{os.fsdecode(root)} is not a remembered folder (remembered: {known})")
    others = [r for r in roots if r != target and not is_under(r, target)]
    doomed = [p for p in store.files_under([target]) if not any(is_under(p, o) for o in others)]
    removed = store.delete_files(doomed)
    store.forget_roots([r for r in roots if is_under(r, target)])
    return removed


def prune(store: Store) -> PruneSummary:
    """Drop files that no longer exist, wherever they were indexed from, and
    compact the file once enough of it is free.

    Files under a remembered folder that is itself missing are kept: a disk
    that is not mounted today has not lost its files.
    """
    summary = PruneSummary()
    summary.missing_roots = [r for r in remembered_roots(store) if not os.path.exists(r)]
    gone = [
        path
        for path in store.all_paths()
        if not os.path.exists(path) and not any(is_under(path, r) for r in summary.missing_roots)
    ]
    summary.removed = store.delete_files(gone)
    if store.free_share() >= VACUUM_FREE_SHARE:
        try:
            store.vacuum()
            summary.vacuumed = True
        except DatabaseError as error:
            summary.vacuum_failed = str(error)
    return summary
