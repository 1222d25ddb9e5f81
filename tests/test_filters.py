"""Filters run inside the database query: folders, capture dates, durations."""

from __future__ import annotations

import json
import os
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, downgrade, draw_photo
from media_factory import Shot, make_audio, make_video

from mediafind.db import Store
from mediafind.migrations import MIGRATIONS

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def names(cli, *args: str) -> list[str]:  # type: ignore[no-untyped-def]
    result = cli("search", "x", *args, "--paths", "--limit", "100")
    assert result.exit_code in (0, 1), result.stderr
    return sorted(Path(p).name for p in result.stdout.split("\n") if p)


def photo_taken(path: Path, when: str, color: tuple[int, int, int]) -> Path:
    from PIL import Image

    image = Image.new("RGB", (80, 60), color)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = when  # DateTimeOriginal
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, exif=exif)
    return path


def video_recorded(path: Path, when: str, seconds: float) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        container.metadata["creation_time"] = when
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        for number in range(round(seconds * 10)):
            pixels = np.full((32, 64, 3), 40 + number % 200, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, 10)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def dated(tmp_path: Path) -> Path:
    root = tmp_path / "dated"
    photo_taken(root / "summer2019.jpg", "2019:06:01 14:00:00", COLORS["yellow"])
    photo_taken(root / "xmas2023.jpg", "2023:12:25 09:30:00", COLORS["red"])
    video_recorded(root / "party2021.mp4", "2021-03-04T05:06:07.000000Z", 2.0)
    old = draw_photo(root / "scan.png", COLORS["black"])
    stamp = datetime(2010, 5, 5).timestamp()
    os.utime(old, (stamp, stamp))  # no EXIF: its mtime stands in
    return root


def test_capture_times_filter(cli, dated: Path):
    assert cli("index", dated, "--no-audio").exit_code == 0
    assert names(cli, "--since", "2020-01-01") == ["party2021.mp4", "xmas2023.jpg"]
    assert names(cli, "--until", "2019-06-01") == ["scan.png", "summer2019.jpg"]
    assert names(cli, "--since", "2021-03-04", "--until", "2021-03-04") == ["party2021.mp4"]
    assert names(cli, "--until", "2011-01-01") == ["scan.png"]


def test_folder_filter_resolves_relative_paths(cli, library: Path, monkeypatch):
    cli("index", library)
    monkeypatch.chdir(library)
    assert names(cli, "--in", "2023") == sorted(p.name for p in (library / "2023").rglob("*.jpg"))
    both = names(cli, "--in", "2023", "--in", str(library / "2024" / "trip"))
    assert len(both) == len(list((library / "2023").rglob("*.jpg"))) + 2


def test_duration_filters(cli, tmp_path: Path):
    root = tmp_path / "clips"
    make_video(root / "short.mp4", [Shot(2, (200, 30, 30))])
    make_video(root / "long.mp4", [Shot(3, (30, 200, 30)), Shot(3, (30, 30, 200))])
    make_audio(root / "memo.wav", [("tone", 20)])
    draw_photo(root / "photo.jpg", COLORS["blue"])
    cli("index", root)
    assert names(cli, "--min-duration", "5") == ["long.mp4", "memo.wav"]
    assert names(cli, "--max-duration", "0:03") == ["short.mp4"]
    assert names(cli, "--min-duration", "3", "--max-duration", "10") == ["long.mp4"]


def test_a_selective_filter_still_returns_its_best(cli, tmp_path: Path):
    root = tmp_path / "crowd"
    for number in range(60):
        draw_photo(root / "bulk" / f"{number}.png", (200, 30 + number, 30), size=(48, 36))
    target = draw_photo(root / "rare" / "blue.png", COLORS["blue"], size=(48, 36))
    cli("index", root)
    example = draw_photo(tmp_path / "red.png", (200, 40, 30), size=(48, 36))
    unfiltered = json.loads(cli("search", "--like", example, "--json", "--limit", "5").stdout)
    assert str(target) not in [r["path"] for r in unfiltered]
    found = json.loads(
        cli("search", "--like", example, "--in", target.parent, "--json", "--limit", "5").stdout
    )
    assert [r["path"] for r in found] == [str(target)]


def test_filters_are_in_the_knn_query(db_path: Path, library: Path, cli):
    from fake_modality import text_vector

    from mediafind.db import Filters

    cli("index", library)
    folder = str(library / "2024" / "trip")
    with Store.open(db_path, create=False) as store:
        space = store.active_space("visual")
        vector = text_vector("x", space.dim)
        hits = store.nearest(space, vector, 3, filters=Filters(folders=[folder]))
    # k = 3 of the two files under the folder: both, and only them.
    assert sorted(Path(h.path).name for h in hits) == sorted(
        p.name for p in Path(folder).glob("*.jpg")
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--since", "last tuesday", "expected an ISO date"),
        ("--min-duration", "long", "is not a time"),
    ],
)
def test_bad_filter_values_are_usage_errors(cli, library: Path, option, value, message):
    cli("index", library)
    result = cli("search", "x", option, value)
    assert result.exit_code == 2 and message in result.stderr


def test_capture_time_migration_keeps_older_indexes(db_path: Path, cli, library):
    cli("index", library)
    # Turn the file back into a schema-2 index, as an older mediafind left it.
    with Store.open(db_path, create=False) as store:
        downgrade(store.conn, 2)
    with Store.open(db_path, create=False) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        rows = store.conn.execute("SELECT count(*), count(captured_at) FROM files").fetchone()
    assert rows == (len(COLORS), 0)
    # Their mtime stands in until they are indexed again.
    assert len(names(cli, "--since", "2000-01-01")) == len(COLORS)


def test_similar_takes_the_same_filters(cli, library: Path):
    cli("index", library)
    example = next(library.rglob("red.jpg"))
    found = cli("similar", example, "--in", library / "2023", "--paths").stdout.split("\n")
    found = [p for p in found if p]
    assert found and all(p.startswith(str(library / "2023")) for p in found)
    assert cli("similar", example, "--since", "someday").exit_code == 2
