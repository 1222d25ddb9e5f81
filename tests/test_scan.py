"""Walking folders: what counts as a photo, hidden files, excludes, links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import draw_photo

from mediafind import scan as scan_module
from mediafind.errors import UsageError
from mediafind.scan import normalize_roots, scan


def names(result) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(Path(f.path).name for f in result.files)


def test_photos_are_recognised_by_extension(tmp_path: Path):
    for ext in ("jpg", "JPEG", "png", "webp", "gif", "bmp", "tif", "tiff"):
        (tmp_path / f"a.{ext}").write_bytes(b"x")
    for other in ("notes.txt", "song.mp3x", "jpg"):
        (tmp_path / other).write_bytes(b"x")
    result = scan(normalize_roots([tmp_path]))
    assert len(result.files) == 8
    assert {f.kind for f in result.files} == {"image"}


def test_hidden_files_and_folders_are_skipped_unless_asked(tmp_path: Path):
    draw_photo(tmp_path / "seen.jpg")
    draw_photo(tmp_path / ".hidden.jpg")
    draw_photo(tmp_path / ".thumbnails" / "thumb.jpg")
    roots = normalize_roots([tmp_path])
    assert names(scan(roots)) == ["seen.jpg"]
    assert names(scan(roots, include_hidden=True)) == [".hidden.jpg", "seen.jpg", "thumb.jpg"]


def test_excludes_match_names_and_relative_paths(tmp_path: Path):
    draw_photo(tmp_path / "keep.jpg")
    draw_photo(tmp_path / "draft-1.jpg")
    draw_photo(tmp_path / "Trash" / "old.jpg")
    draw_photo(tmp_path / "2024" / "raw" / "x.jpg")
    draw_photo(tmp_path / "2024" / "y.jpg")
    roots = normalize_roots([tmp_path])
    result = scan(roots, excludes=["draft-*", "Trash", "2024/raw"])
    assert names(result) == ["keep.jpg", "y.jpg"]


def test_symlink_cycles_do_not_loop(tmp_path: Path):
    draw_photo(tmp_path / "a" / "one.jpg")
    os.symlink(tmp_path, tmp_path / "a" / "back-to-top")
    os.symlink(tmp_path / "a", tmp_path / "a-again")
    result = scan(normalize_roots([tmp_path]))
    assert names(result) == ["one.jpg"]


def test_linked_folders_and_files_are_followed(tmp_path: Path):
    outside = tmp_path / "outside"
    draw_photo(outside / "far.jpg")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "linked")
    os.symlink(outside / "far.jpg", root / "shortcut.jpg")
    os.symlink(tmp_path / "missing.jpg", root / "broken.jpg")
    result = scan(normalize_roots([root]))
    assert sorted(Path(f.path).relative_to(root).as_posix() for f in result.files) == [
        "linked/far.jpg",
        "shortcut.jpg",
    ]


def test_nested_roots_are_walked_once(tmp_path: Path):
    draw_photo(tmp_path / "sub" / "a.jpg")
    roots = normalize_roots([tmp_path / "sub", tmp_path, str(tmp_path) + "/"])
    assert roots == [str(tmp_path)]
    assert len(scan(roots).files) == 1


def test_missing_root_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="no such file or folder"):
        normalize_roots([tmp_path / "nope"])


def test_unreadable_folder_is_reported_not_fatal(tmp_path: Path, monkeypatch):
    draw_photo(tmp_path / "ok" / "a.jpg")
    draw_photo(tmp_path / "locked" / "b.jpg")
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(scan_module.os, "scandir", scandir)
    result = scan(normalize_roots([tmp_path]))
    assert names(result) == ["a.jpg"]
    assert result.unreadable == [(str(tmp_path / "locked"), "Permission denied")]
