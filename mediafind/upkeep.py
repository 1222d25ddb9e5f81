"""Keeping an index tidy: the folders it remembers, files that are gone, files to forget."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from mediafind.db import Store
from mediafind.errors import UsageError
from mediafind.scan import is_under

# VACUUM rewrites the whole file; only worth it once this share of it is free.
VACUUM_FREE_SHARE = 0.25


@dataclass
class PruneSummary:
    removed: int = 0
    vacuumed: bool = False
    # Remembered folders that are not there (an unmounted disk): kept as they are.
    missing_roots: list[str] = field(default_factory=list)


def _absolute(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def remembered_roots(store: Store) -> list[str]:
    return [path for path, _ in store.roots()]


def roots_to_reindex(store: Store) -> tuple[list[str], list[str]]:
    """The remembered folders that are there, and those that are not (an
    unmounted disk: skipped, so that its files are not taken for deleted)."""
    remembered = remembered_roots(store)
    if not remembered:
        raise UsageError("no folder given and none remembered; try: mediafind index ~/Pictures")
    present = [root for root in remembered if os.path.exists(root)]
    missing = [root for root in remembered if root not in present]
    if not present:
        raise UsageError("none of the remembered folders is there; is the disk mounted?")
    return present, missing


def forget(store: Store, paths: Sequence[str | os.PathLike[str]]) -> int:
    """Remove these files, and everything under these folders, from the index."""
    if not paths:
        raise UsageError("forget needs at least one file or folder")
    targets = [_absolute(path) for path in paths]
    doomed = list(store.files_under(targets))
    return store.delete_files(doomed)


def forget_root(store: Store, root: str | os.PathLike[str]) -> int:
    """Forget a remembered folder and its files (those no other remembered folder holds)."""
    target = _absolute(root)
    roots = remembered_roots(store)
    if target not in roots:
        known = ", ".join(roots) or "none"
        raise UsageError(f"{root} is not a remembered folder (remembered: {known})")
    others = [r for r in roots if r != target and not is_under(r, target)]
    doomed = [p for p in store.files_under([target]) if not any(is_under(p, o) for o in others)]
    removed = store.delete_files(doomed)
    store.forget_roots([r for r in roots if is_under(r, target)])
    return removed


def prune(store: Store) -> PruneSummary:
    """Drop files that no longer exist, wherever they were indexed from.

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
    if summary.removed and store.free_share() >= VACUUM_FREE_SHARE:
        store.vacuum()
        summary.vacuumed = True
    return summary
