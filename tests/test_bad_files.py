"""A bad file never stops a run: it is reported once, remembered, and retried when it changes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

from mediafind.db import Store
from mediafind.errors import MediaError
from mediafind.media.image import load_image

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims absurd dimensions, followed by no real pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    root = tmp_path / "messy"
    draw_photo(root / "good.jpg", COLORS["red"])
    draw_photo(root / "also good.png", COLORS["blue"])
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.jpg").write_text("this is not a picture")
    full = draw_photo(root / "full.jpg", COLORS["green"], size=(400, 300)).read_bytes()
    (root / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (root / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    return root


def test_bad_files_are_reported_and_the_run_goes_on(cli, messy: Path):
    result = cli("index", messy)
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 4
    reasons = {Path(line.split(": ")[2]).name: line for line in warnings}
    assert "empty file" in reasons["empty.jpg"]
    assert "not a readable image" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "too large" in reasons["huge.png"]
    assert "3 new" in result.stderr and "4 failed" in result.stderr
    found = cli("search", "picture", "--paths").stdout.splitlines()
    assert sorted(Path(p).name for p in found) == ["also good.png", "full.jpg", "good.jpg"]


def test_failed_files_are_remembered_and_not_retried(cli, messy: Path):
    cli("index", messy)
    again = cli("index", messy)
    assert again.exit_code == 0
    assert "warning" not in again.stderr
    assert "0 failed" in again.stderr
    status = cli("status", "--json")
    import json

    failed = json.loads(status.stdout)["failed"]
    assert {Path(item["path"]).name for item in failed} == {
        "empty.jpg",
        "notes.jpg",
        "truncated.jpg",
        "huge.png",
    }


def test_a_later_run_says_how_many_files_are_still_failed(cli, messy: Path):
    cli("index", messy)
    again = cli("index", messy)
    # Three good files, four bad ones not retried: none of them "unchanged".
    assert "0 failed, 4 still failed, 3 unchanged" in again.stderr
    draw_photo(messy / "notes.jpg", COLORS["yellow"])
    (messy / "empty.jpg").write_bytes(b"still nothing")
    third = cli("index", messy)
    assert "1 changed, 0 moved, 0 removed, 1 failed, 2 still failed, 3 unchanged" in third.stderr


def test_failed_file_is_retried_once_it_changes(cli, messy: Path):
    cli("index", messy)
    draw_photo(messy / "notes.jpg", COLORS["yellow"])
    result = cli("index", messy)
    assert "1 changed" in result.stderr
    names = [Path(p).name for p in cli("search", "x", "--paths").stdout.splitlines()]
    assert "notes.jpg" in names


def test_unreadable_file_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # Tests run as root, where chmod cannot deny reading; fail the open instead.
    path = draw_photo(tmp_path / "locked.jpg")
    from PIL import Image

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(MediaError, match="permission denied"):
        load_image(str(path), 32)


def test_exif_orientation_is_honoured(tmp_path: Path):
    from PIL import Image

    # Stored landscape, 120x80, red on the left half; orientation 6 means the
    # camera was turned: shown upright it is portrait with red on top.
    stored = Image.new("RGB", (120, 80), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 60, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    stored.save(path, exif=exif, quality=95)
    decoded = load_image(str(path), 32)
    assert (decoded.width, decoded.height) == (80, 120)
    width, height = decoded.image.size
    assert height > width  # drafted to half scale, but upright
    top = decoded.image.getpixel((width // 2, height // 8))
    bottom = decoded.image.getpixel((width // 2, height * 7 // 8))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path: Path):
    path = draw_photo(tmp_path / "big.jpg", COLORS["purple"], size=(4000, 3000))
    decoded = load_image(str(path), 224)
    # Draft mode picks the largest DCT scale that still covers 224 px: 1/8.
    assert decoded.image.size == (500, 375)
    assert (decoded.width, decoded.height) == (4000, 3000)


def test_png_with_transparency_and_palette_become_rgb(tmp_path: Path):
    from PIL import Image

    rgba = tmp_path / "alpha.png"
    Image.new("RGBA", (50, 40), (10, 200, 10, 128)).save(rgba)
    palette = tmp_path / "palette.gif"
    Image.new("P", (50, 40), 3).save(palette)
    for path in (rgba, palette):
        assert load_image(str(path), 32).image.mode == "RGB"


def test_wrong_extension_with_valid_content_is_decoded(tmp_path: Path):
    path = tmp_path / "actually-a-png.jpg"
    from PIL import Image

    Image.new("RGB", (40, 30), (1, 2, 3)).save(path, format="PNG")
    assert load_image(str(path), 32).image.size == (40, 30)


def test_failed_file_row_records_the_reason(db_path: Path, messy: Path, cli):
    cli("index", messy)
    with Store.open(db_path, create=False) as store:
        rows = dict(store.files_with_status("failed"))
    assert rows[str(messy / "empty.jpg")] == "empty file (0 bytes)"


def test_heic_is_recognised_only_with_the_plugin(monkeypatch: pytest.MonkeyPatch):
    from mediafind import scan

    monkeypatch.setattr(scan, "heic_supported", lambda: False)
    assert ".heic" not in scan.kind_by_extension()
    monkeypatch.setattr(scan, "heic_supported", lambda: True)
    assert scan.kind_by_extension()[".heic"] == "image"
