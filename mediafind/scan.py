"""Walk the user's folders and list the media files in them.

No models, no database: this module only answers "what is there now".
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import stat
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mediafind.errors import UsageError, one_line

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
HEIC_EXTENSIONS = frozenset({".heic", ".heif"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".3gp", ".mpg", ".mpeg"}
    | {".wmv"}
)
AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".m4a", ".aac", ".flac", ".wav", ".ogg", ".oga", ".opus", ".wma", ".aiff", ".aif"}
)


# What people call the kinds of file (the README says photos and
# recordings): each names the kind wherever a kind is asked for.
KIND_ALIASES = {
    "photo": "image",
    "photos": "image",
    "picture": "image",
    "pictures": "image",
    "images": "image",
    "videos": "video",
    "recording": "audio",
    "recordings": "audio",
    "sound": "audio",
    "sounds": "audio",
}


def kind_named(text: str) -> str:
    """The kind `text` names (`photo` is image), as typed when it names none."""
    lowered = text.strip().lower()
    return KIND_ALIASES.get(lowered, lowered)


def heic_supported() -> bool:
    """HEIC photos are decoded by the optional pillow-heif plugin."""
    return importlib.util.find_spec("pillow_heif") is not None


def kind_by_extension() -> dict[str, str]:
    kinds = dict.fromkeys(IMAGE_EXTENSIONS, "image")
    kinds.update(dict.fromkeys(VIDEO_EXTENSIONS, "video"))
    kinds.update(dict.fromkeys(AUDIO_EXTENSIONS, "audio"))
    if heic_supported():
        kinds.update(dict.fromkeys(HEIC_EXTENSIONS, "image"))
    return kinds


@dataclass(frozen=True)
class FoundFile:
    path: str
    kind: str
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    roots: list[str]
    files: list[FoundFile] = field(default_factory=list)
    # Folders that could not be listed: what was indexed under them is kept,
    # since "cannot read" is not "deleted" (an unmounted NAS share, a chmod).
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def canonical_path(raw: str | os.PathLike[str]) -> str:
    """One spelling per file or folder: absolute, with every linked folder on the
    way resolved, so a folder reached through a link and through its real path
    is one folder. A linked file keeps its own name (it is what was indexed)."""
    path = os.path.abspath(os.path.expanduser(os.fspath(raw)))
    if os.path.isdir(path):
        return os.path.realpath(path)
    head, name = os.path.split(path)
    return os.path.join(os.path.realpath(head), name)


def path_problem(raw: str | os.PathLike[str]) -> str | None:
    """Why `raw` cannot be indexed ("no such file or folder"), or None."""
    path = canonical_path(raw)
    if not os.path.exists(path):
        return "no such file or folder"
    if not (os.path.isdir(path) or os.path.isfile(path)):
        return "not a file or folder"
    return None


def check_paths(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Raise UsageError for the first path that is not a file or folder."""
    for raw in paths:
        if (problem := path_problem(raw)) is not None:
            raise UsageError(f"{os.fsdecode(raw)}: {problem}", argument="paths")


@dataclass(frozen=True)
class PathCheck:
    """The paths a run was given, split into those it can index and the rest."""

    present: list[str]
    # "~/Music: no such file or folder", one per path left out.
    absent: list[str]


def present_paths(paths: Sequence[str | os.PathLike[str]]) -> PathCheck:
    """Split `paths` into what exists and what does not, so that a run given
    `~/Pictures ~/Videos ~/Music` on a machine with only `~/Pictures` indexes
    that (a quick start must not stop at the first missing folder). Raises
    UsageError naming every path when none of them exists: then there is
    nothing to do, and a typo must not pass for success."""
    present: list[str] = []
    absent: list[str] = []
    for raw in paths:
        problem = path_problem(raw)
        if problem is None:
            present.append(os.fsdecode(raw))
        else:
            absent.append(f"{os.fsdecode(raw)}: {problem}")
    if paths and not present:
        raise UsageError("; ".join(absent), argument="paths")
    return PathCheck(present, absent)


def normalize_roots(
    paths: Iterable[str | os.PathLike[str]], *, skipped: Iterable[str] = ()
) -> list[str]:
    """Canonical, existing, de-duplicated roots; a root inside another is dropped,
    unless a `skipped` path (forgotten) lies between them, since the outer
    root's walk would then not reach it."""
    paths = list(paths)
    check_paths(paths)
    roots = sorted(canonical_path(raw) for raw in paths)
    between = list(skipped)
    kept: list[str] = []
    for root in roots:
        if not any(
            is_under(root, outer)
            and not any(
                is_under(root, gap) and is_under(gap, outer) and gap != outer for gap in between
            )
            for outer in kept
        ):
            kept.append(root)
    return kept


def _excluded(name: str, relative: str, patterns: Sequence[str]) -> bool:
    return any(
        fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(relative, pattern) for pattern in patterns
    )


def scan(
    roots: Sequence[str],
    *,
    include_hidden: bool = False,
    excludes: Sequence[str] = (),
    root_excludes: Mapping[str, Sequence[str]] | None = None,
    skipped: Collection[str] = (),
) -> ScanResult:
    """List media files under `roots` (from `normalize_roots`).

    Symbolic links are followed; a folder reached twice (a link back to an
    ancestor, two links to one place) is walked once. `excludes` are globs
    matched against each name and against the path relative to its root;
    `root_excludes` adds globs for some roots only. Files and folders in
    `skipped` (absolute paths: what the user forgot) are left out.
    """
    kinds = kind_by_extension()
    result = ScanResult(roots=list(roots))
    seen_files: set[str] = set()
    visited_dirs: set[tuple[int, int]] = set()
    skipped = set(skipped)

    def add_file(path: str, info: os.stat_result) -> None:
        kind = kinds.get(os.path.splitext(path)[1].lower())
        if kind is None or path in seen_files:
            return
        seen_files.add(path)
        result.files.append(FoundFile(path, kind, info.st_size, info.st_mtime_ns))

    for root in roots:
        if root in skipped:
            continue
        patterns = (*excludes, *(root_excludes or {}).get(root, ()))
        if os.path.isfile(root):
            add_file(root, os.stat(root))
            continue
        stack = [(root, "")]
        while stack:
            folder, relative = stack.pop()
            try:
                info = os.stat(folder)
                key = (info.st_dev, info.st_ino)
                if key in visited_dirs:
                    continue
                visited_dirs.add(key)
                with os.scandir(folder) as entries:
                    listed = sorted(entries, key=lambda entry: entry.name)
            except OSError as error:
                result.unreadable.append((folder, one_line(error)))
                continue
            subfolders = []
            for entry in listed:
                if not include_hidden and entry.name.startswith("."):
                    continue
                entry_relative = f"{relative}/{entry.name}" if relative else entry.name
                if patterns and _excluded(entry.name, entry_relative, patterns):
                    continue
                if entry.path in skipped:
                    continue
                try:
                    entry_info = entry.stat()  # follows links; a broken link raises
                except OSError:
                    continue
                if stat.S_ISDIR(entry_info.st_mode):
                    subfolders.append((entry.path, entry_relative))
                elif stat.S_ISREG(entry_info.st_mode):
                    add_file(entry.path, entry_info)
            # Reversed so that the stack pops folders in name order.
            stack.extend(reversed(subfolders))
    return result


def excluded(path: str, root: str, patterns: Sequence[str]) -> bool:
    """Whether a walk of `root` would leave `path` out for `patterns`: a glob
    matches one of its names on the way down, or the path relative to root
    up to that name."""
    parts = os.path.relpath(path, root).split(os.sep)
    return any(
        _excluded(parts[at], "/".join(parts[: at + 1]), patterns) for at in range(len(parts))
    )


def found_file(raw: str | os.PathLike[str]) -> FoundFile | None:
    """One file as a walk would find it, or None when it is not a media file
    (by its name) or not a regular file now (gone, a folder, a FIFO)."""
    path = canonical_path(raw)
    kind = kind_by_extension().get(os.path.splitext(path)[1].lower())
    if kind is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return FoundFile(path, kind, info.st_size, info.st_mtime_ns)


def is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
