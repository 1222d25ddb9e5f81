"""Videos through the whole product: indexing, moments, query by example, output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo
from media_factory import Shot, make_video, shot_picture

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")

SCENES = [
    Shot(4.0, (220, 30, 30), (250, 250, 250)),
    Shot(4.0, (30, 200, 60), (10, 10, 10)),
    Shot(4.0, (30, 60, 220), (250, 220, 40)),
    Shot(4.0, (240, 200, 40), (90, 20, 120)),
]
SIZE = (160, 96)


def save_scene_picture(shot: Shot, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(shot_picture(shot, *SIZE)).save(path)
    return path


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    make_video(root / "party.mp4", SCENES, size=SIZE, gop_seconds=2.0)
    make_video(root / "walk.mkv", [Shot(6.0, (20, 20, 20), (200, 200, 200))], size=SIZE)
    draw_photo(root / "photo.jpg", COLORS["purple"])
    return root


def test_videos_are_indexed_with_moments(cli, media: Path):
    result = cli("index", media)
    assert result.exit_code == 0, result.stderr
    assert "3 new" in result.stderr
    results = json.loads(cli("search", "a party", "--json", "--type", "video").stdout)
    assert {Path(r["path"]).name for r in results} == {"party.mp4", "walk.mkv"}
    for item in results:
        assert item["kind"] == "video" and item["modality"] == "visual"
        assert 0.0 <= item["start"] < item["end"]
        assert item["moments"][0]["start"] == item["start"]
        assert item["moments"][0]["end"] == item["end"]
        assert [m["score"] for m in item["moments"]] == sorted(
            (m["score"] for m in item["moments"]), reverse=True
        )
        assert item["score"] == pytest.approx(item["moments"][0]["score"])
        assert set(item["moments"][0]) == {"start", "end", "score", "modality", "text"}
        assert item["moments"][0]["text"] is None and item["text"] is None  # nothing said


@pytest.mark.parametrize("scene", range(len(SCENES)))
def test_query_by_example_finds_the_scene(cli, media: Path, tmp_path: Path, scene: int):
    cli("index", media)
    picture = save_scene_picture(SCENES[scene], tmp_path / "example.png")
    result = cli("search", "--like", picture, "--json", "--limit", "1")
    assert result.exit_code == 0, result.stderr
    top = json.loads(result.stdout)[0]
    assert Path(top["path"]).name == "party.mp4"
    scene_start = sum(s.seconds for s in SCENES[:scene])
    assert scene_start - 1 / 24 <= top["start"] < scene_start + SCENES[scene].seconds


def test_like_a_video_frame_excludes_the_example_itself(cli, media: Path, tmp_path: Path):
    copy = tmp_path / "elsewhere" / "party copy.mp4"
    copy.parent.mkdir()
    copy.write_bytes((media / "party.mp4").read_bytes())
    cli("index", media)
    cli("index", copy.parent)
    result = cli("search", "--like", f"{media / 'party.mp4'}@0:09", "--json")
    assert result.exit_code == 0, result.stderr
    results = json.loads(result.stdout)
    names = [Path(r["path"]).name for r in results]
    assert "party.mp4" not in names
    assert names[0] == "party copy.mp4"
    assert 8.0 - 1 / 24 <= results[0]["start"] < 12.0


def test_text_and_example_combine(cli, media: Path, tmp_path: Path):
    cli("index", media)
    picture = save_scene_picture(SCENES[2], tmp_path / "blue.png")
    only_example = json.loads(cli("search", "--like", picture, "--json").stdout)
    mixed = json.loads(
        cli("search", "fireworks", "--like", picture, "--like-weight", "0.7", "--json").stdout
    )
    only_text = json.loads(cli("search", "fireworks", "--json").stdout)
    firsts = {only_example[0]["score"], mixed[0]["score"], only_text[0]["score"]}
    assert len(firsts) == 3  # three different queries, three different best scores
    assert cli("search", "--like", picture, "--like-weight", "1.5").exit_code == 2


def test_adjacent_matching_segments_merge_into_one_moment(cli, tmp_path: Path):
    root = tmp_path / "still"
    # One long static scene cut into 2-second segments by --max-gap, then another.
    make_video(
        root / "still.mp4",
        [Shot(10.0, (200, 30, 30), (250, 250, 250)), Shot(4.0, (30, 30, 200), (0, 0, 0))],
        size=SIZE,
        gop_seconds=1.0,
    )
    cli("index", root, "--max-gap", "2")
    picture = save_scene_picture(Shot(1, (200, 30, 30), (250, 250, 250)), tmp_path / "red.png")
    top = json.loads(cli("search", "--like", picture, "--json").stdout)[0]
    first = top["moments"][0]
    # Five segments of the red scene, all matching: one moment of the whole scene.
    assert first["start"] == 0.0
    assert first["end"] == pytest.approx(10.0, abs=0.1)
    assert all(m["start"] >= first["end"] - 1e-6 for m in top["moments"][1:])


def test_human_output_shows_the_moment_and_how_to_play_it(cli, media: Path, tmp_path: Path):
    cli("index", media)
    picture = save_scene_picture(SCENES[3], tmp_path / "yellow.png")
    result = cli("search", "--like", picture, "--type", "video")
    assert result.exit_code == 0
    header = result.stdout.splitlines()[0].split()
    assert header == ["#", "score", "kind", "at", "path"]
    first = result.stdout.splitlines()[1].split()
    assert first[3] == "0:12"
    assert f"mpv --start=12.0 {media / 'party.mp4'}" in result.stdout


def test_bad_videos_are_reported_and_the_run_goes_on(cli, media: Path):
    (media / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    (media / "empty.mov").write_bytes(b"")
    long_video = make_video(
        media / "long.mkv",
        [Shot(4.0, (200, 30, 30)), Shot(4.0, (30, 200, 30)), Shot(4.0, (30, 30, 200))],
        size=SIZE,
    )
    data = long_video.read_bytes()
    long_video.write_bytes(data[: len(data) // 2])
    result = cli("index", media)
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert any("garbage.mp4" in w for w in warnings)
    assert any("empty.mov" in w for w in warnings)
    assert any("long.mkv: partly indexed" in w and "indexed up to" in w for w in warnings)
    assert "1 partial" in result.stderr and "2 failed" in result.stderr
    found = {Path(p).name for p in cli("search", "x", "--paths").stdout.split("\n") if p}
    assert found == {"party.mp4", "walk.mkv", "photo.jpg", "long.mkv"}
    # Not retried until it changes.
    again = cli("index", media)
    assert "warning" not in again.stderr


def test_max_gap_must_be_positive(cli, media: Path):
    result = cli("index", media, "--max-gap", "0")
    assert result.exit_code == 2
    assert "--max-gap" in result.stderr


@pytest.mark.parametrize("bad", ["nope.jpg", "party.mp4@soon", "photo.jpg@0:03"])
def test_bad_examples_are_usage_errors(cli, media: Path, bad: str):
    cli("index", media)
    result = cli("search", "--like", media / bad)
    assert result.exit_code == 2
    assert "--like" in result.stderr


def test_search_needs_a_query_or_an_example(cli, media: Path):
    cli("index", media)
    result = cli("search")
    assert result.exit_code == 2
    assert "nothing to search for" in result.stderr
