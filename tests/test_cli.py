"""The command line as people and scripts meet it: help, status, summaries, start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

import mediafind
from mediafind import scan as scan_module

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from mediafind.cli import main\n"
        "sys.argv = ['mediafind', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'open_clip', 'av', 'numpy', 'PIL', 'transformers',"
        " 'starlette', 'uvicorn', 'anyio', 'textual_image', 'wordfreq', 'watchdog')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "Usage: mediafind" in result.stdout
    assert "HEAVY []" in result.stdout


def test_python_dash_m_and_version():
    result = subprocess.run(
        [sys.executable, "-m", "mediafind", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"mediafind {mediafind.__version__}"


def test_index_summary_line_and_quiet_stdout(cli, library: Path):
    result = cli("index", library)
    assert result.exit_code == 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mediafind: indexed in ")
    for part in ("8 new", "0 changed", "0 moved", "0 removed", "0 failed", "0 unchanged"):
        assert part in lines[0]


def test_status_reports_what_the_index_holds(cli, library: Path, db_path):
    (library / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    cli("index", library)
    data = json.loads(cli("status", "--json").stdout)
    assert data["db_path"] == str(db_path)
    assert data["db_bytes"] > 0
    assert data["files"] == {"image": len(COLORS), "video": 0, "audio": 0}
    assert data["segments"] == len(COLORS)
    assert data["models"] == [
        {
            "modality": "visual",
            "model": "thumbnail-4x4",  # the stand-in picture model
            "dim": 48,
            "active": True,
            "vectors": 8,
            "precision": "fp32",
        }
    ]
    assert [Path(f["path"]).name for f in data["failed"]] == ["broken.jpg"]
    assert data["roots"][0]["path"] == str(library)
    assert data["last_indexed_at"] is not None
    human = cli("status")
    assert human.exit_code == 0
    for expected in (str(db_path), "thumbnail-4x4", "8 photos", str(library)):
        assert expected in human.stdout
    assert "failed         1 (list them: mediafind status --failed)" in human.stdout
    assert all(line == line.rstrip() for line in human.stdout.splitlines())  # no padding
    listed = cli("status", "--failed")
    why = "not a readable image (corrupt, or the extension is wrong)"
    assert listed.stdout == f"{library / 'broken.jpg'}: failed: {why}\n"


def test_status_without_an_index_is_an_error(cli, tmp_path: Path):
    result = cli("status", "--db", tmp_path / "none.db")
    assert result.exit_code == 2
    assert "no index at" in result.stderr


def test_index_of_a_missing_folder_is_an_error_and_writes_nothing(
    cli, tmp_path: Path, db_path: Path
):
    result = cli("index", tmp_path / "typo")
    assert result.exit_code == 2
    assert result.stderr == f"mediafind: error: {tmp_path / 'typo'}: no such file or folder\n"
    assert not db_path.exists() and not db_path.parent.joinpath("index.db.lock").exists()


def test_index_cli_options_hidden_and_exclude(cli, tmp_path: Path):
    root = tmp_path / "opts"
    draw_photo(root / "a.jpg")
    draw_photo(root / ".secret" / "b.jpg")
    draw_photo(root / "skip" / "c.jpg")
    cli("index", root, "--exclude", "skip")
    assert [Path(p).name for p in cli("search", "x", "--paths").stdout.split()] == ["a.jpg"]
    cli("index", root, "--include-hidden", "--exclude", "skip")
    names = sorted(Path(p).name for p in cli("search", "x", "--paths").stdout.split())
    assert names == ["a.jpg", "b.jpg"]


def test_folder_that_cannot_be_listed_keeps_its_files(cli, library: Path, monkeypatch):
    cli("index", library)
    locked = library / "2024"
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(scan_module.os, "scandir", scandir)
    result = cli("index", library)
    assert result.exit_code == 0
    assert "cannot list folder" in result.stderr and "0 removed" in result.stderr
    assert len(cli("search", "x", "--paths").stdout.splitlines()) == len(COLORS)


def test_no_arguments_shows_help(cli):
    result = cli()
    assert "Usage" in result.stdout + result.stderr


def test_a_single_file_can_be_indexed(cli, tmp_path: Path):
    photo = draw_photo(tmp_path / "one.jpg", COLORS["red"])
    assert cli("index", photo).exit_code == 0
    assert cli("search", "x", "--paths").stdout.strip() == str(photo)
