"""Thumbnails of photos and video moments: made once, kept by content, bounded;
and drawn in the terminal only when it is one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo, fake_cli
from media_factory import Shot, make_audio, make_video

from mediafind import thumbnails
from mediafind.db import FileRecord, Store
from mediafind.index import index_paths
from mediafind.thumbnails import (
    THUMBNAIL_SIDE,
    NoThumbnail,
    ThumbnailCache,
    cache_for,
    prune_thumbnails,
    thumbnail,
)

pytestmark = pytest.mark.usefixtures("fake_models")

FPS = 24
# One second each, keyframes every two seconds: a moment inside a group of
# pictures is reached by decoding from the keyframe before it.
SHOTS = [
    Shot(1.0, (220, 30, 30), (250, 250, 250)),
    Shot(1.0, (30, 200, 60), (10, 10, 10)),
    Shot(1.0, (30, 60, 220), (250, 220, 40)),
    Shot(1.0, (240, 200, 40), (90, 20, 120)),
]


@pytest.fixture
def cache(db_path: Path) -> ThumbnailCache:
    """The test index's cache (in the test's own XDG_CACHE_HOME: conftest)."""
    with Store.open(db_path, create=True) as store:
        return cache_for(store)


def indexed(db_path: Path, *paths: Path) -> dict[str, FileRecord]:
    with Store.open(db_path, create=True) as store:
        index_paths(store, [str(p) for p in paths])
        return store.files_under([str(p) for p in paths])


def opened(data: bytes):  # type: ignore[no-untyped-def]
    from PIL import Image

    image = Image.open(BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


def near(pixel: tuple[int, ...], color: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, color, strict=False))


def shot_color(image, color: tuple[int, int, int]) -> bool:  # type: ignore[no-untyped-def]
    """Whether the picture's middle (below the stripe, above the bars) is `color`."""
    return near(image.getpixel((image.width // 2, image.height // 2)), color)


def test_a_photo_thumbnail_is_a_small_jpeg(db_path: Path, tmp_path: Path, cache: ThumbnailCache):
    photo = draw_photo(tmp_path / "lib" / "wide.jpg", COLORS["blue"], size=(1200, 800))
    record = indexed(db_path, photo)[str(photo)]
    image = opened(thumbnail(record, None, cache))
    assert image.size == (THUMBNAIL_SIDE, round(THUMBNAIL_SIDE * 800 / 1200))
    assert near(image.getpixel((128, 120)), COLORS["blue"])


def test_exif_orientation_is_honoured(db_path: Path, tmp_path: Path, cache: ThumbnailCache):
    # Stored landscape with the stripe on top; orientation 6 shows it turned a
    # quarter clockwise: portrait, the stripe down the right-hand side.
    photo = draw_photo(
        tmp_path / "lib" / "turned.jpg",
        COLORS["green"],
        size=(640, 480),
        stripe=COLORS["white"],
        orientation=6,
    )
    image = opened(thumbnail(indexed(db_path, photo)[str(photo)], None, cache))
    assert image.size == (192, 256)
    assert near(image.getpixel((185, 128)), COLORS["white"])
    assert near(image.getpixel((20, 128)), COLORS["green"])


@pytest.mark.parametrize(
    ("at", "shot"),
    [
        (0.0, 0),
        (23 / FPS, 0),  # the last frame before the cut
        (1.0, 1),  # the first frame after it
        (1.5, 1),  # inside a group of pictures
        (47 / FPS, 1),
        (2.0, 2),  # on a keyframe
        (3.5, 3),
    ],
)
def test_a_video_thumbnail_is_the_frame_at_the_time(
    db_path: Path, tmp_path: Path, cache: ThumbnailCache, at: float, shot: int
):
    video = make_video(tmp_path / "lib" / "cuts.mp4", SHOTS, fps=FPS, gop_seconds=2.0)
    record = indexed(db_path, video)[str(video)]
    assert shot_color(opened(thumbnail(record, at, cache)), SHOTS[shot].color)


def test_moments_found_by_search_show_their_own_frames(
    cli, db_path: Path, tmp_path: Path, cache: ThumbnailCache
):
    video = make_video(tmp_path / "lib" / "cuts.mp4", SHOTS, fps=FPS, gop_seconds=2.0)
    record = indexed(db_path, video)[str(video)]
    found = json.loads(cli("search", "anything", "--json", "--type", "video").stdout)
    starts = sorted(moment["start"] for moment in found[0]["moments"])
    assert len(starts) == len(SHOTS)
    for start in starts:
        # A moment starts on a frame; its thumbnail is that frame, not the first one.
        expected = SHOTS[int(start + 1e-6)].color
        assert shot_color(opened(thumbnail(record, start, cache)), expected)


def test_a_recording_has_no_thumbnail(db_path: Path, tmp_path: Path, cache: ThumbnailCache):
    sound = make_audio(tmp_path / "lib" / "tone.wav", [("tone", 2.0)])
    with pytest.raises(NoThumbnail):
        thumbnail(indexed(db_path, sound)[str(sound)], 0.0, cache)


def test_thumbnails_are_made_once_and_reused_after_a_move_or_copy(
    db_path: Path, tmp_path: Path, cache: ThumbnailCache, monkeypatch: pytest.MonkeyPatch
):
    library = tmp_path / "lib"
    photo = draw_photo(library / "a.jpg", COLORS["red"], size=(640, 480))
    video = make_video(library / "cuts.mp4", SHOTS, fps=FPS, gop_seconds=2.0)
    records = indexed(db_path, library)
    first = thumbnail(records[str(photo)], None, cache)
    moment = thumbnail(records[str(video)], 2.0, cache)
    assert cache.usage().files == 2

    moved = library / "2024" / "b.jpg"
    moved.parent.mkdir()
    photo.rename(moved)
    copy = library / "copy of cuts.mp4"
    shutil.copy2(video, copy)
    records = indexed(db_path, library)
    assert records[str(moved)].id != 0 and records[str(moved)].path != str(photo)

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(thumbnails, "picture", no_decoding)
    assert thumbnail(records[str(moved)], None, cache) == first
    assert thumbnail(records[str(copy)], 2.0, cache) == moment
    assert cache.usage().files == 2


def test_the_cache_drops_the_least_recently_used(tmp_path: Path):
    cache = ThumbnailCache(tmp_path / "thumbs", limit_bytes=3000)
    day = 24 * 3600
    now = time.time()
    for number, (key, age) in enumerate([("aa01", 3 * day), ("bb02", 2 * day), ("cc03", 3600)]):
        cache.put(key, bytes([number]) * 900)
        os.utime(cache.path(key), (now - age, now - age))
    assert cache.get("aa01") is not None  # used again: now the most recent
    cache.put("dd04", b"d" * 900)  # 3600 bytes: over the limit
    assert cache.get("bb02") is None
    assert cache.get("aa01") is not None
    assert cache.get("cc03") is not None and cache.get("dd04") is not None
    assert cache.usage().bytes <= 3000 * 0.9
    assert not [p for p in (tmp_path / "thumbs").rglob("*") if p.name.startswith(".tmp")]


def test_changed_and_deleted_files_get_no_thumbnail(
    db_path: Path, tmp_path: Path, cache: ThumbnailCache
):
    library = tmp_path / "lib"
    changed = draw_photo(library / "changed.jpg", COLORS["red"])
    gone = draw_photo(library / "gone.jpg", COLORS["blue"])
    records = indexed(db_path, library)
    draw_photo(changed, COLORS["yellow"], size=(200, 100))
    gone.unlink()
    with pytest.raises(NoThumbnail, match="changed since it was indexed"):
        thumbnail(records[str(changed)], None, cache)
    with pytest.raises(NoThumbnail, match="no longer on disk"):
        thumbnail(records[str(gone)], None, cache)
    assert cache.usage().files == 0


def test_prune_drops_thumbnails_of_files_no_longer_indexed(
    db_path: Path, tmp_path: Path, cache: ThumbnailCache
):
    library = tmp_path / "lib"
    kept = draw_photo(library / "kept.jpg", COLORS["red"])
    forgotten = draw_photo(library / "forgotten.jpg", COLORS["blue"])
    records = indexed(db_path, library)
    thumbnail(records[str(kept)], None, cache)
    thumbnail(records[str(forgotten)], None, cache)
    leftover = cache.root / "ab" / ".tmp-killed"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"partial")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    with Store.open(db_path, create=False) as store:
        store.delete_files([str(forgotten)])
        removed = prune_thumbnails(store)
    assert removed.files == 1 and removed.bytes > 0
    assert not leftover.exists()
    assert cache.usage().files == 1
    assert cache.get(records[str(kept)].content_hash or "") is not None


def test_each_index_has_its_own_cache_in_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    caches = []
    for name in ("one.db", "two.db"):
        with Store.open(tmp_path / name, create=True) as store:
            caches.append(cache_for(store).root)
    assert caches[0].parent == caches[1].parent == tmp_path / "xdg" / "mediafind" / "thumbnails"
    assert caches[0] != caches[1]
    # The same index reached through a link is the same cache.
    (tmp_path / "link.db").symlink_to(tmp_path / "one.db")
    with Store.open(tmp_path / "link.db", create=False) as store:
        assert cache_for(store).root == caches[0]


# Terminal previews --------------------------------------------------------------

PREVIEW_PROGRAM = """
import sys
from pathlib import Path
from rich.console import Console
from rich.table import Table
from mediafind.db import Store
from mediafind.preview import result_previews, terminal_shows_pictures
from mediafind.query import SearchResult

db, photo, video, sound = sys.argv[1:]
if not terminal_shows_pictures():
    print("plain table")
    raise SystemExit
results = [
    SearchResult(photo, "image", 2.0, None, None, "visual"),
    SearchResult(video, "video", 1.5, 2.0, 3.0, "visual"),
    SearchResult(sound, "audio", 1.0, 0.0, 2.0, "audio"),
]
with Store.open(Path(db), create=False, readonly=True) as store:
    pictures = result_previews(store, results)
table = Table()
for picture, result in zip(pictures, results):
    table.add_row(picture, result.path)
Console().print(table)
print("previews:", [type(p).__module__ for p in pictures])
"""


@pytest.fixture
def preview_library(db_path: Path, tmp_path: Path, cache: ThumbnailCache) -> list[str]:
    library = tmp_path / "lib"
    photo = draw_photo(library / "red.jpg", COLORS["red"], size=(320, 240))
    video = make_video(library / "cuts.mp4", SHOTS, fps=FPS, gop_seconds=2.0)
    sound = make_audio(library / "tone.wav", [("tone", 2.0)])
    indexed(db_path, library)
    return [str(db_path), str(photo), str(video), str(sound)]


# What a terminal that shows pictures answers: to the device attributes query
# (ESC [ c) a VT220 that speaks sixel (4) or not, to the kitty graphics query
# (a=q) "OK" when it is kitty.
DEVICE_ATTRIBUTES_QUERY = b"\x1b[c"
ANSWERS_TO_DEVICE_ATTRIBUTES = {"sixel": b"\x1b[?62;4;22c", "kitty": b"\x1b[?62;22c"}
KITTY_QUERY = re.compile(rb"\x1b_G([^\x1b]*a=q[^\x1b]*)\x1b\\")


def in_a_terminal(arguments: list[str], terminal: str = "plain", **env: str) -> str:
    """What a program writes to a terminal: a pseudo-terminal that, like a
    plain one, answers no graphics query, or that answers as a sixel terminal
    or as kitty does (with the size of its cells in pixels, as those report)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    # 40 rows of 120 columns; a plain terminal gives no pixel size, as many do.
    pixels = (1200, 800) if terminal != "plain" else (0, 0)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, *pixels))
    environment = {**os.environ, "TERM": "xterm-256color", **env}
    environment.pop("COLUMNS", None)
    process = subprocess.Popen(
        arguments, stdin=follower, stdout=follower, stderr=subprocess.PIPE, env=environment
    )
    os.close(follower)
    output = b""
    answered = {"attributes": 0, "kitty": 0}
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the program has ended
            break
        if not chunk:
            break
        output += chunk
        if terminal == "plain":
            continue
        while output.count(DEVICE_ATTRIBUTES_QUERY) > answered["attributes"]:
            os.write(leader, ANSWERS_TO_DEVICE_ATTRIBUTES[terminal])
            answered["attributes"] += 1
        queries = KITTY_QUERY.findall(output)
        for query in queries[answered["kitty"] :]:
            if terminal == "kitty":
                image = dict(field.split(b"=") for field in query.split(b";")[0].split(b","))
                os.write(leader, b"\x1b_Gi=" + image[b"i"] + b";OK\x1b\\")
        answered["kitty"] = len(queries)
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return output.decode("utf-8", "replace")


def test_previews_are_drawn_in_a_terminal(preview_library: list[str]):
    text = in_a_terminal([sys.executable, "-c", PREVIEW_PROGRAM, *preview_library], NO_COLOR="")
    # A terminal that answers no graphics query gets coloured half blocks.
    assert "▀" in text and "\x1b[38;5;" in text  # 256 colours, as TERM says
    picture = "'mediafind.preview'"
    # The recording has no picture: an empty cell.
    assert f"previews: [{picture}, {picture}, 'builtins']" in text


def test_half_blocks_are_left_out_without_colour(preview_library: list[str]):
    text = in_a_terminal([sys.executable, "-c", PREVIEW_PROGRAM, *preview_library], NO_COLOR="1")
    assert "▀" not in text
    assert "previews: ['builtins', 'builtins', 'builtins']" in text


def test_no_previews_and_no_escapes_when_piped(preview_library: list[str]):
    done = subprocess.run(
        [sys.executable, "-c", PREVIEW_PROGRAM, *preview_library],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"plain table\n"


def test_search_preview_piped_prints_the_plain_table(tmp_path: Path):
    library = tmp_path / "lib"
    draw_photo(library / "red.jpg", COLORS["red"], size=(320, 240))
    make_video(library / "cuts.mp4", SHOTS, fps=FPS, gop_seconds=2.0)
    env = {**os.environ, "NO_COLOR": "", "TERM": "xterm-256color"}
    indexing = subprocess.run(fake_cli("index", str(library)), env=env, capture_output=True)
    assert indexing.returncode == 0, indexing.stderr
    plain = subprocess.run(fake_cli("search", "red"), env=env, capture_output=True)
    done = subprocess.run(fake_cli("search", "red", "--preview"), env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert b"\x1b" not in done.stdout
    assert done.stdout == plain.stdout


# Through the command line: status, prune, and the config file's default.


def test_status_shows_the_thumbnail_cache(
    cli, db_path: Path, tmp_path: Path, cache: ThumbnailCache
):
    photo = draw_photo(tmp_path / "lib" / "red.jpg", COLORS["red"], size=(320, 240))
    thumbnail(indexed(db_path, photo)[str(photo)], None, cache)
    shown = cli("status").stdout
    assert re.search(
        rf"thumbnails +1 thumbnail \(\d+( B|\.\d KB)\) in {re.escape(str(cache.root))}", shown
    )
    held = json.loads(cli("status", "--json").stdout)["thumbnails"]
    assert held["path"] == str(cache.root) and held["files"] == 1 and held["bytes"] > 0


def test_prune_drops_the_thumbnails_of_deleted_files(
    cli, db_path: Path, tmp_path: Path, cache: ThumbnailCache
):
    library = tmp_path / "lib"
    kept = draw_photo(library / "kept.jpg", COLORS["red"])
    gone = draw_photo(library / "gone.jpg", COLORS["blue"])
    records = indexed(db_path, library)
    for path in (kept, gone):
        thumbnail(records[str(path)], None, cache)
    gone.unlink()
    result = cli("prune")
    assert result.exit_code == 0, result.stderr
    assert "pruned 1 file, 1 thumbnail dropped" in result.stderr
    assert cache.usage().files == 1


def test_search_preview_in_a_terminal_and_as_the_default(preview_library: list[str]):
    config = Path(os.environ["MEDIAFIND_CONFIG"])
    search = fake_cli("search", "red", "--limit", "3")
    plain = in_a_terminal(search, NO_COLOR="")
    assert "▀" not in plain and "red.jpg" in plain
    shown = in_a_terminal([*search, "--preview"], NO_COLOR="")
    assert "▀" in shown and "red.jpg" in shown
    config.write_text("preview = true\n")
    assert "▀" in in_a_terminal(search, NO_COLOR="")
    assert "▀" not in in_a_terminal([*search, "--no-preview"], NO_COLOR="")


def test_the_preview_setting_must_be_true_or_false(cli, tmp_path: Path):
    draw_photo(tmp_path / "lib" / "red.jpg", COLORS["red"])
    assert cli("index", tmp_path / "lib").exit_code == 0
    (tmp_path / "config.toml").write_text('preview = "yes"\n')
    refused = cli("search", "red")
    assert refused.exit_code == 2 and "preview must be true or false" in refused.stderr


def test_a_sixel_terminal_gets_sixel_pictures(preview_library: list[str]):
    text = in_a_terminal(
        [sys.executable, "-c", PREVIEW_PROGRAM, *preview_library], terminal="sixel", NO_COLOR=""
    )
    # A sixel picture is a device control string: ESC P ... q <sixels> ESC \.
    pictures = re.findall(r"\x1bP[0-9;]*q(.*?)\x1b\\", text, re.DOTALL)
    assert len(pictures) == 2  # the photo and the video's moment; the recording has none
    assert all(len(picture) > 100 for picture in pictures)
    assert "▀" not in text


def test_kitty_gets_pictures_in_its_graphics_protocol(preview_library: list[str]):
    text = in_a_terminal(
        [sys.executable, "-c", PREVIEW_PROGRAM, *preview_library], terminal="kitty", NO_COLOR=""
    )
    sent = [
        message
        for message in re.findall(r"\x1b_G([^\x1b]*)\x1b\\", text)
        if "a=q" not in message.split(";")[0]
    ]
    images = {re.search(r"i=(\d+)", message).group(1) for message in sent if "i=" in message}
    assert len(images) == 2  # the photo and the video's moment; the recording has none
    assert "\U0010eeee" in text  # kitty's placeholder cells, where the pictures show
    assert "\x1bP" not in text and "▀" not in text
