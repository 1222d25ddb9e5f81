"""Output for scripts: --jsonl, --format templates, `similar`, and real pipelines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo
from media_factory import Shot, make_video

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def test_jsonl_is_one_contract_object_per_line(cli, library: Path):
    cli("index", library)
    lines = cli("search", "a lake", "--jsonl").stdout.splitlines()
    array = json.loads(cli("search", "a lake", "--json").stdout)
    assert [json.loads(line) for line in lines] == array


def test_format_template_fields_and_escapes(cli, tmp_path: Path):
    root = tmp_path / "media"
    make_video(root / "clip.mp4", [Shot(2, (200, 30, 30)), Shot(2, (30, 30, 200))])
    draw_photo(root / "photo.jpg", COLORS["green"])
    cli("index", root, "--no-audio")
    result = cli("search", "x", "--format", r"{rank}\t{kind}\t{name}\t{start}", "--limit", "5")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert sorted(row[1:3] for row in rows) == [["image", "photo.jpg"], ["video", "clip.mp4"]]
    assert [row[0] for row in rows] == ["1", "2"]
    video = next(row for row in rows if row[1] == "video")
    photo = next(row for row in rows if row[1] == "image")
    assert float(video[3]) >= 0.0 and photo[3] == ""


def test_format_unknown_field_is_a_usage_error(cli, library: Path):
    cli("index", library)
    result = cli("search", "x", "--format", "{path} {size}")
    assert result.exit_code == 2
    assert "unknown field {size}" in result.stderr and "{path}" in result.stderr


def test_output_options_exclude_each_other(cli, library: Path):
    cli("index", library)
    assert cli("search", "x", "--jsonl", "--paths").exit_code == 2
    assert cli("search", "x", "--format", "{path}", "--json").exit_code == 2


def test_similar_is_search_like(cli, library: Path):
    cli("index", library)
    example = str(next(library.rglob("red.jpg")))
    short = cli("similar", example, "--json")
    long = cli("search", "--like", example, "--json")
    assert short.exit_code == 0
    assert json.loads(short.stdout) == json.loads(long.stdout)
    assert example not in short.stdout


def run_shell(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], **env},
        timeout=300,
    )


def test_pipeline_recipes_with_awkward_names(tmp_path: Path, db_path: Path):
    root = tmp_path / "odd names"
    for number, name in enumerate(["two words.jpg", "new\nline.jpg", "ünïcødé 写真.jpg"]):
        draw_photo(root / name, list(COLORS.values())[number])
    indexed = run_shell(f"{sys.executable} -m mediafind index '{root}' --no-audio")
    assert indexed.returncode == 0, indexed.stderr
    copies = tmp_path / "copies"
    copies.mkdir()
    recipe = (
        f"{sys.executable} -m mediafind search 'a photo' --paths -0 | xargs -0 cp -t '{copies}'"
    )
    assert run_shell(recipe).returncode == 0
    assert sorted(p.name for p in copies.iterdir()) == sorted(p.name for p in root.iterdir())
    listed = run_shell(
        f"{sys.executable} -m mediafind search 'a photo' --format '{{path}}' -0 | xargs -0 ls -d"
    )
    assert listed.returncode == 0 and listed.stdout.count(str(root)) == 3


def test_table_links_paths_on_a_terminal(library: Path):
    import io

    from rich.console import Console

    from mediafind.output import print_results_table
    from mediafind.query import SearchResult

    stream = io.StringIO()
    photo = next(library.rglob("red.jpg"))
    terminal = Console(file=stream, force_terminal=True, width=120)
    result = SearchResult(str(photo), "image", 1.0, None, None, "visual")
    print_results_table([result], console=terminal)
    assert "\x1b]8;" in stream.getvalue() and photo.as_uri() in stream.getvalue()
