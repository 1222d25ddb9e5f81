"""Near-duplicate photos and videos, from the stored vectors."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import COLORS, draw_photo
from media_factory import Shot, make_video

SCENES = [
    Shot(3.0, (220, 30, 30), (250, 250, 250)),
    Shot(3.0, (30, 200, 60), (10, 10, 10)),
    Shot(3.0, (30, 60, 220), (250, 220, 40)),
]
FADE = Shot(0.6, (0, 0, 0), (0, 0, 0))


def groups(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    result = cli("duplicates", "--threshold", "0.98", "--json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_resized_and_reencoded_photos_group(cli, tmp_path: Path):
    from PIL import Image

    root = tmp_path / "photos"
    original = draw_photo(
        root / "original.jpg", COLORS["orange"], size=(320, 240), stripe=COLORS["blue"]
    )
    Image.open(original).resize((160, 120)).save(root / "small.png")
    Image.open(original).save(root / "recompressed.jpg", quality=40)
    draw_photo(root / "other.jpg", COLORS["green"], size=(320, 240), stripe=COLORS["white"])
    cli("index", root)
    found = groups(cli)
    assert [sorted(Path(p).name for p in g["paths"]) for g in found] == [
        ["original.jpg", "recompressed.jpg", "small.png"]
    ]
    assert found[0]["kind"] == "image" and found[0]["similarity"] >= 0.98


def test_reencoded_and_trimmed_videos_group_but_a_shared_fade_does_not(cli, tmp_path: Path):
    root = tmp_path / "videos"
    make_video(root / "holiday.mp4", [FADE, *SCENES], size=(160, 96))
    make_video(root / "holiday small.mkv", [FADE, *SCENES], size=(96, 64), codec="libvpx-vp9")
    make_video(root / "holiday trimmed.mp4", SCENES[1:], size=(160, 96))
    other = [Shot(3.0, (250, 250, 250), (90, 20, 120)), Shot(3.0, (120, 60, 10), (0, 90, 90))]
    make_video(root / "same fade, other film.mp4", [FADE, *other], size=(160, 96))
    cli("index", root, "--no-audio")
    found = groups(cli, "--type", "video")
    assert [sorted(Path(p).name for p in g["paths"]) for g in found] == [
        ["holiday small.mkv", "holiday trimmed.mp4", "holiday.mp4"]
    ]


def test_human_output_and_exit_codes(cli, tmp_path: Path):
    root = tmp_path / "two"
    draw_photo(root / "a.jpg", COLORS["red"])
    draw_photo(root / "b.jpg", COLORS["blue"], stripe=COLORS["yellow"])
    cli("index", root)
    none = cli("duplicates", "--threshold", "0.999")
    assert none.exit_code == 1 and none.stdout == ""
    (root / "a copy.jpg").write_bytes((root / "a.jpg").read_bytes())
    cli("index", root)
    result = cli("duplicates", "--threshold", "0.99")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# 2 images alike at")
    assert sorted(Path(p).name for p in lines[1:]) == ["a copy.jpg", "a.jpg"]
    assert cli("duplicates", "--threshold", "1.5").exit_code == 2
