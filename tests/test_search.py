"""Search: ranking, the JSON contract, path output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def test_json_contract(cli, library: Path):
    cli("index", library)
    results = json.loads(cli("search", "sunset", "--json").stdout)
    assert len(results) == len(COLORS)
    for item in results:
        assert list(item) == [
            "path",
            "kind",
            "score",
            "start",
            "end",
            "modality",
            "moments",
            "text",
        ]
        assert item["text"] is None  # photos say nothing
        assert Path(item["path"]).is_absolute()
        assert item["kind"] == "image"
        assert isinstance(item["score"], float)
        assert item["start"] is None and item["end"] is None
        assert item["modality"] == "visual"
        assert item["moments"] == []
    scores = [item["score"] for item in results]
    assert scores == sorted(scores, reverse=True)


def test_one_result_per_file_and_limit(cli, tmp_path: Path):
    from media_factory import Shot, make_video

    root = tmp_path / "videos"
    colors = list(COLORS.values())
    for number in range(4):
        # Four shots each: every video has several segments that could match.
        shots = [Shot(1.5, colors[(number + i) % len(colors)]) for i in range(4)]
        make_video(root / f"{number}.mp4", shots, gop_seconds=0.5)
    cli("index", root, "--no-audio")
    everything = json.loads(cli("search", "dog", "--json", "--limit", "10").stdout)
    assert sorted(Path(r["path"]).name for r in everything) == [f"{n}.mp4" for n in range(4)]
    assert all(len(r["moments"]) > 1 for r in everything)  # several moments, one result
    paths = cli("search", "dog", "--paths", "--limit", "3").stdout.splitlines()
    assert len(paths) == 3 == len(set(paths))


def test_paths_null_separated_survive_odd_names(cli, tmp_path: Path):
    root = tmp_path / "odd"
    names = ["with space.jpg", "new\nline.jpg", "ünïcødé 写真.jpg"]
    for number, name in enumerate(names):
        draw_photo(root / name, list(COLORS.values())[number])
    cli("index", root)
    result = cli("search", "photo", "--paths", "-0")
    assert result.exit_code == 0
    assert result.stdout.endswith("\0")
    assert sorted(result.stdout.rstrip("\0").split("\0")) == sorted(str(root / n) for n in names)


def test_human_table_lists_rank_score_kind_and_path(cli, library: Path):
    cli("index", library)
    result = cli("search", "a blue sky", "--limit", "2")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["#", "score", "kind", "path"]
    assert len(lines) == 3
    assert lines[1].split()[0] == "1" and lines[1].split()[2] == "image"
    assert str(library) in result.stdout


def test_type_filter_with_no_match_exits_1(cli, library: Path):
    cli("index", library)
    result = cli("search", "beach", "--type", "video", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == []
    assert cli("search", "beach", "--type", "image", "--paths").exit_code == 0


def test_missing_index_is_an_error(cli, tmp_path: Path):
    result = cli("search", "cat", "--db", tmp_path / "nowhere.db")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no index at" in result.stderr and "mediafind index" in result.stderr
    assert not (tmp_path / "nowhere.db").exists()


def test_empty_index_is_an_error(cli, tmp_path: Path):
    (tmp_path / "nothing").mkdir()
    assert cli("index", tmp_path / "nothing").exit_code == 0
    result = cli("search", "cat")
    assert result.exit_code == 2
    assert "empty" in result.stderr


def test_empty_query_is_an_error(cli, library: Path):
    cli("index", library)
    result = cli("search", "   ")
    assert result.exit_code == 2
    assert "query is empty" in result.stderr


def test_conflicting_output_options_are_an_error(cli, library: Path):
    cli("index", library)
    assert cli("search", "x", "--json", "--paths").exit_code == 2
    assert cli("search", "x", "-0").exit_code == 2


def test_db_option_and_environment_variable(cli, library: Path, tmp_path: Path, monkeypatch):
    elsewhere = tmp_path / "elsewhere.db"
    assert cli("index", library, "--db", elsewhere).exit_code == 0
    assert elsewhere.exists()
    assert cli("search", "x", "--db", elsewhere, "--paths").exit_code == 0
    monkeypatch.setenv("MEDIAFIND_DB", str(elsewhere))
    assert cli("search", "x", "--paths").exit_code == 0


def test_default_db_lives_in_the_user_data_folder(cli, library: Path, monkeypatch, tmp_path):
    monkeypatch.delenv("MEDIAFIND_DB")
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(tmp_path / "data" / app))
    assert cli("index", library).exit_code == 0
    assert (tmp_path / "data" / "mediafind" / "index.db").exists()
