"""Files that try to hang or exhaust a run: FIFOs swapped in after the scan,
pictures that decode to gigabytes, edits a sampled fingerprint would miss,
folders reached twice, and the small things that leak noise."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, draw_photo
from media_factory import write_audio

from mediafind.errors import MediaError
from mediafind.hashing import content_hash
from mediafind.media.image import MAX_DECODED_PIXELS, load_image

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def test_a_fifo_is_refused_at_once(tmp_path: Path):
    fifo = tmp_path / "trap.jpg"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(MediaError, match="not a regular file"):
        content_hash(fifo)
    with pytest.raises(MediaError, match="not a regular file"):
        load_image(str(fifo), 32)
    assert time.monotonic() - started < 5


def test_a_file_swapped_for_a_fifo_after_the_scan_is_a_warning(cli, library: Path, monkeypatch):
    import mediafind.index as index_module

    victim = next(library.rglob("red.jpg"))
    real_scan = index_module.scan

    def scan_then_swap(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real_scan(*args, **kwargs)
        victim.unlink()
        os.mkfifo(victim)
        return found

    monkeypatch.setattr(index_module, "scan", scan_then_swap)
    result = cli("index", library)
    assert result.exit_code == 0
    assert f"{victim}: not a regular file any more" in result.stderr
    assert f"{len(COLORS) - 1} new" in result.stderr


# Runs an index whose hashing blocks forever, as on a FIFO or a hung network
# mount, and says when it is stuck.
STUCK = """
import sys
import mediafind.filework as filework
from mediafind.cli import main

library, fifo = sys.argv[1:]

def stuck(path):
    sys.stdout.write("stuck\\n")  # one write: two workers may get here at once
    sys.stdout.flush()
    open(fifo).read()  # a FIFO with no writer: blocks forever

filework.content_hash = stuck
sys.argv = ["mediafind", "index", library]
main()
"""


def test_sigterm_ends_a_run_whose_worker_is_stuck(tmp_path: Path, library: Path):
    fifo = tmp_path / "nobody-writes"
    os.mkfifo(fifo)
    run = subprocess.Popen(
        [sys.executable, "-c", STUCK, str(library), str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert run.stdout is not None
    first = run.stdout.readline().strip()
    assert first == "stuck", (first, run.stderr.read() if run.poll() is not None else "")
    time.sleep(0.5)
    run.send_signal(signal.SIGTERM)
    try:
        code = run.wait(timeout=15)
    finally:
        run.kill()
    assert code == 130, run.stderr.read() if run.stderr else ""


def flat_png(width: int, height: int) -> bytes:
    """A valid PNG of one flat colour: a few hundred KB that decode to width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    squeeze = zlib.compressobj(9)
    row = b"\0" + b"\x80" * width
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_a_small_png_that_decodes_to_gigabytes_is_skipped(tmp_path: Path):
    path = tmp_path / "flat.png"
    path.write_bytes(flat_png(13_000, 13_000))
    assert path.stat().st_size < 1_000_000
    assert MAX_DECODED_PIXELS < 13_000 * 13_000
    started = time.monotonic()
    with pytest.raises(
        MediaError, match=r"image too large to decode \(13000x13000, 169 megapixels"
    ):
        load_image(str(path), 32)
    assert time.monotonic() - started < 2  # refused before decoding, not after


def test_a_large_jpeg_within_the_limit_after_reduced_decoding_is_fine(tmp_path: Path):
    # 9000x7000 is 63 megapixels, over the limit, but JPEG decodes it at an
    # eighth of its width: well under.
    path = draw_photo(tmp_path / "big.jpg", COLORS["green"], size=(9000, 7000), quality=30)
    decoded = load_image(str(path), 224)
    assert (decoded.width, decoded.height) == (9000, 7000)


def names_found(cli) -> set[str]:  # type: ignore[no-untyped-def]
    out = cli("search", "x", "--paths", "--limit", "100").stdout
    return {Path(line).name for line in out.splitlines()}


def test_forget_sticks_until_the_path_is_indexed_by_name(cli, tmp_path: Path):
    root = tmp_path / "Pictures"
    draw_photo(root / "public.jpg", COLORS["red"])
    draw_photo(root / "private" / "secret.jpg", COLORS["blue"])
    draw_photo(root / "private" / "deeper" / "also.jpg", COLORS["green"])
    cli("index", root)
    forgot = cli("forget", root / "private")
    assert forgot.exit_code == 0
    assert "forgot 2 files at" in forgot.stderr and "index it by name" in forgot.stderr
    assert cli("index").exit_code == 0  # cron's form
    assert names_found(cli) == {"public.jpg"}
    assert cli("index", root).exit_code == 0  # the root again, by hand: still forgotten
    assert names_found(cli) == {"public.jpg"}
    assert cli("index", root / "private" / "deeper").exit_code == 0
    assert names_found(cli) == {"public.jpg", "also.jpg"}
    assert cli("index").exit_code == 0  # the named part stays, the rest stays forgotten
    assert names_found(cli) == {"public.jpg", "also.jpg"}
    assert cli("index", root / "private").exit_code == 0
    assert names_found(cli) == {"public.jpg", "also.jpg", "secret.jpg"}


def test_forget_of_a_folder_with_nothing_indexed_says_so(cli, library: Path, tmp_path: Path):
    cli("index", library)
    (tmp_path / "empty").mkdir()
    result = cli("forget", tmp_path / "empty")
    assert result.exit_code == 0
    assert f"nothing indexed at {tmp_path / 'empty'}" in result.stderr


def test_excludes_are_remembered_with_their_root(cli, tmp_path: Path):
    root = tmp_path / "Pictures"
    draw_photo(root / "keep.jpg", COLORS["red"])
    draw_photo(root / "Trash" / "old.jpg", COLORS["blue"])
    draw_photo(root / "draft.tmp.jpg", COLORS["green"])
    cli("index", root, "--exclude", "Trash", "--exclude", "*.tmp.*")
    assert names_found(cli) == {"keep.jpg"}
    assert cli("roots").stdout.split("\t")[2:] == ["Trash", "*.tmp.*\n"]
    assert cli("index").exit_code == 0  # cron: the root's own excludes apply again
    assert cli("index", root).exit_code == 0  # by hand without --exclude: the same
    assert names_found(cli) == {"keep.jpg"}
    status = json.loads(cli("status", "--json").stdout)
    assert status["roots"][0]["excludes"] == ["Trash", "*.tmp.*"]


def big_wav(path: Path, seconds: float, frequency: float) -> Path:
    rate = 48_000
    t = np.arange(int(seconds * rate)) / rate
    return write_audio(
        path, (0.4 * np.sin(2 * np.pi * frequency * t)).astype(np.float32), rate=rate
    )


def test_an_edit_the_old_sampled_fingerprint_missed_is_re_embedded(cli, tmp_path: Path, db_path):
    from mediafind.db import Store

    song = big_wav(tmp_path / "music" / "song.wav", 200.0, 440.0)  # 19 MB: past 16 MiB
    assert song.stat().st_size > 16 * 1024 * 1024
    cli("index", song.parent)
    before = content_hash(song)
    # Change the middle of the file where the old fingerprint never looked
    # (it read 1 MiB at the start, the middle and the end), keep the size.
    data = bytearray(song.read_bytes())
    quarter = len(data) // 4
    noise = np.random.default_rng(3).integers(-8000, 8000, size=262_144, dtype=np.int16)
    data[quarter : quarter + noise.nbytes] = noise.tobytes()
    song.write_bytes(bytes(data))
    assert content_hash(song) != before
    result = cli("index", song.parent)
    assert "1 changed" in result.stderr and "0 unchanged" in result.stderr
    with Store.open(db_path, create=False) as store:
        hashes = store.conn.execute("SELECT content_hash FROM files").fetchall()
    assert hashes == [(content_hash(song),)]


def test_two_files_alike_at_the_old_samples_keep_their_own_vectors(cli, tmp_path: Path):
    first = big_wav(tmp_path / "a" / "one.wav", 200.0, 440.0)
    second = tmp_path / "b" / "two.wav"
    second.parent.mkdir()
    data = bytearray(first.read_bytes())
    data[len(data) // 4 : len(data) // 4 + 4096] = os.urandom(4096)
    second.write_bytes(bytes(data))
    cli("index", first.parent)
    result = cli("index", second.parent)
    assert "1 new" in result.stderr and "reused" not in result.stderr


def test_one_folder_reached_through_a_link_is_stored_once(cli, tmp_path: Path, library: Path):
    link = tmp_path / "shortcut"
    link.symlink_to(library)
    cli("index", link)
    cli("index", library)
    paths = cli("search", "x", "--paths", "--limit", "100").stdout.splitlines()
    assert len(paths) == len(COLORS) == len(set(paths))
    assert all(path.startswith(str(library)) for path in paths)
    assert [line.split("\t")[0] for line in cli("roots").stdout.splitlines()] == [str(library)]
    inside = cli("search", "x", "--in", link / "2023", "--paths").stdout.splitlines()
    assert inside and all(path.startswith(str(library / "2023")) for path in inside)


def test_an_index_that_stored_a_folder_twice_is_mended(
    cli, tmp_path: Path, library: Path, monkeypatch
):
    import mediafind.index as index_module
    import mediafind.scan as scan_module

    link = tmp_path / "shortcut"
    link.symlink_to(library)
    # What an earlier mediafind did: keep the link's spelling.
    spelled = lambda raw: os.path.abspath(os.path.expanduser(os.fspath(raw)))  # noqa: E731
    with monkeypatch.context() as old:
        old.setattr(scan_module, "canonical_path", spelled)
        old.setattr(index_module, "canonical_path", spelled)
        cli("index", link)
        cli("index", library)
        twice = cli("search", "x", "--paths", "--limit", "100").stdout.splitlines()
    assert len(twice) == 2 * len(COLORS)
    assert cli("index").exit_code == 0  # the remembered roots, today
    once = cli("search", "x", "--paths", "--limit", "100").stdout.splitlines()
    assert sorted(once) == sorted(set(once)) and len(once) == len(COLORS)


def test_pillow_warnings_do_not_reach_stderr(cli, tmp_path: Path):
    from PIL import Image

    picture = Image.new("P", (40, 30), 1)
    picture.putpalette([0, 0, 0, 255, 0, 0] * 128)
    picture.save(tmp_path / "p.png", transparency=bytes([0, 128]))
    result = cli("index", tmp_path / "p.png")
    assert result.exit_code == 0
    assert "Warning" not in result.stderr and "warn" not in result.stderr
    assert result.stderr.startswith("mediafind: indexed in")


def test_an_audio_file_without_samples_is_a_warning(cli, tmp_path: Path):
    import wave

    path = tmp_path / "empty.wav"
    with wave.open(str(path), "wb") as empty:
        empty.setnchannels(1)
        empty.setsampwidth(2)
        empty.setframerate(16000)
    result = cli("index", path)
    assert result.exit_code == 0
    assert "empty.wav: no sound in the file" in result.stderr and "1 failed" in result.stderr


def test_a_config_file_with_a_byte_order_mark_is_read(cli, tmp_path: Path, library: Path):
    (tmp_path / "config.toml").write_bytes("\ufefflimit = 2\n".encode())
    cli("index", library)
    assert len(cli("search", "x", "--paths").stdout.splitlines()) == 2


def test_a_config_path_that_is_not_a_file_is_an_error(cli, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MEDIAFIND_CONFIG", str(tmp_path))
    result = cli("search", "x")
    assert result.exit_code == 2
    assert f"MEDIAFIND_CONFIG={tmp_path}: {tmp_path} is not a regular file" in result.stderr
