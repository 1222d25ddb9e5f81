"""Written text: words in photos, screenshots and video frames, read for real.

The reader is RapidOCR with the PP-OCRv4 models its wheel ships (no stand-in:
these are the models users run). The pictures are drawn here with Pillow and
Debian's DejaVu fonts; the video is encoded here with PyAV.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, draw_photo

from mediafind.db import Store
from mediafind.models import ocr
from mediafind.models.ocr import OcrReader

FONTS = Path("/usr/share/fonts/truetype/dejavu")


def drawn(
    lines: list[tuple[str, int]],
    *,
    size: tuple[int, int] = (1024, 768),
    background: tuple[int, int, int] = (90, 120, 90),
    ink: tuple[int, int, int] = (250, 250, 250),
    at: tuple[int, int] = (120, 260),
    bold: bool = True,
):  # type: ignore[no-untyped-def]
    """A picture with `lines` of (text, font size) written from `at` down."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font_file = FONTS / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    x, y = at
    for text, points in lines:
        draw.text((x, y), text, font=ImageFont.truetype(str(font_file), points), fill=ink)
        y += round(points * 1.5)
    return image


def save(image, path: Path, **options) -> Path:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


SIGN = [("GATE B12 DEPARTURES", 56), ("Boarding 14:35", 36)]
RECEIPT = [
    ("Invoice No. 20417", 30),
    ("Date: 14 March 2026", 30),
    ("Espresso machine repair", 30),
    ("Total due: 1,240.00 EUR", 30),
]


@pytest.fixture
def signs(tmp_path: Path) -> Path:
    """A sign, a screenshot of an invoice, and five photos without text."""
    root = tmp_path / "photos"
    save(drawn(SIGN), root / "airport.jpg", quality=90)
    screenshot = drawn(
        RECEIPT, size=(1280, 800), background=(255, 255, 255), ink=(20, 20, 20), bold=False
    )
    save(screenshot, root / "Screenshot 2026-03-14.png")
    for name in ("red", "green", "blue", "yellow", "purple"):
        draw_photo(root / f"{name}.jpg", COLORS[name], size=(640, 480), stripe=COLORS["white"])
    return root


def text_rows(db_path: Path) -> list[tuple[str, float | None, float | None, str, str]]:
    with Store.open(db_path, create=False) as store:
        rows = store.conn.execute(
            "SELECT f.path, s.start, s.end, w.text, w.box FROM segments s "
            "JOIN files f ON f.id = s.file_id JOIN segment_words w ON w.segment_id = s.id "
            "WHERE s.modality = 'text' ORDER BY f.path, s.start"
        ).fetchall()
    return [tuple(row) for row in rows]


def test_words_in_photos_and_screenshots_are_found(cli, signs: Path, db_path: Path, monkeypatch):
    read_calls: list[tuple[int, int]] = []
    real_read = OcrReader.read

    def counted(reader, image, lines):  # type: ignore[no-untyped-def]
        read_calls.append(image.size)
        return real_read(reader, image, lines)

    monkeypatch.setattr(OcrReader, "read", counted)
    result = cli("index", signs)
    assert result.exit_code == 0, result.stderr
    # The gate: only the two pictures with text were read in full.
    assert len(read_calls) == 2
    rows = text_rows(db_path)
    assert {Path(row[0]).name for row in rows} == {"airport.jpg", "Screenshot 2026-03-14.png"}

    # OCR may drop the spaces of a bold sign; the words are found either way.
    for query in ("departures", "gate b12", "boarding"):
        found = json.loads(cli("search", query, "--modality", "text", "--json").stdout)
        assert Path(found[0]["path"]).name == "airport.jpg", query
    found = json.loads(cli("search", "invoice march", "--modality", "text", "--json").stdout)
    assert Path(found[0]["path"]).name == "Screenshot 2026-03-14.png"
    assert "Invoice" in found[0]["text"] and "March" in found[0]["text"]
    # A word that is not there finds nothing written.
    assert json.loads(cli("search", "kestrel", "--modality", "text", "--json").stdout) == []

    # The receipt's lines are one block, kept in order, and its box is where
    # the lines were drawn (x from 120 of 1280, y from 260 of 800).
    receipt = next(row for row in rows if row[0].endswith(".png"))
    assert receipt[3].splitlines()[0].startswith("Invoice")
    assert receipt[3].splitlines()[-1].startswith("Total")
    left, top, right, bottom = json.loads(receipt[4])
    assert abs(left - 120 / 1280) < 0.02 and abs(top - 260 / 800) < 0.03
    assert right > left and bottom > top

    # People see a block on one row; `{text}` likewise; JSON keeps the lines.
    table = cli("search", "invoice", "--modality", "text").stdout
    assert "Invoice No. 20417 / Date: 14 March 2026" in " ".join(table.split())
    line = cli("search", "invoice", "--modality", "text", "--format", "{name}|{text}").stdout
    assert line.splitlines()[0].startswith("Screenshot 2026-03-14.png|Invoice No. 20417 / Date")
    # A photo has no transcript, and is not said to be waiting for one.
    photo = cli("transcript", signs / "airport.jpg")
    assert photo.exit_code == 2 and "airport.jpg: a photo: nothing is said in it" in photo.stderr
    status = cli("status").stdout
    # One block per picture: the sign's two lines, the receipt's four.
    assert "text model     PP-OCRv4, 2 text blocks" in status


def test_a_phone_photo_is_read_upright(cli, tmp_path: Path, db_path: Path):
    """Stored on its side with an EXIF orientation, as phones do: the text is
    read, and its box is where it shows in the upright photo."""
    upright = drawn([("PASSPORT OFFICE", 48)], size=(1024, 768), at=(60, 60))
    exif_image = upright.rotate(90, expand=True)  # stored turned; EXIF 6 turns it back
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    save(exif_image, tmp_path / "phone" / "IMG_0001.jpg", exif=exif, quality=90)
    assert cli("index", tmp_path / "phone").exit_code == 0
    ((_, _, _, text, box),) = text_rows(db_path)
    assert "PASSPORT" in text.replace(" ", "")
    left, top, right, bottom = json.loads(box)
    # Drawn at (60, 60) in the upright 1024x768 photo: the top left corner.
    assert left < 0.1 and top < 0.15 and right > 0.5 and bottom < 0.25


def make_text_video(path: Path, shots: list[tuple[float, tuple[int, int, int], str]]) -> None:
    """Shots of (seconds, colour, burned-in text) at 10 frames a second."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 10)
        index = 0
        for seconds, color, text in shots:
            picture = drawn([(text, 40)], size=(640, 360), background=color, at=(60, 150))
            pixels = np.asarray(picture)
            for _ in range(round(seconds * 10)):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 10)
                index += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_text_burned_into_one_shot_is_found_at_its_moment(cli, tmp_path: Path, db_path: Path):
    make_text_video(
        tmp_path / "clips" / "holiday.mp4",
        [(3.0, (30, 60, 200), ""), (3.0, (20, 20, 20), "KESTREL 0003"), (3.0, (40, 160, 60), "")],
    )
    assert cli("index", tmp_path / "clips").exit_code == 0
    found = json.loads(cli("search", "kestrel", "--modality", "text", "--json").stdout)
    assert Path(found[0]["path"]).name == "holiday.mp4"
    # The shot with the words runs from 3 s to 6 s.
    assert 3.0 <= found[0]["start"] < 4.0
    assert 5.0 <= found[0]["end"] <= 6.5
    assert "KESTREL" in found[0]["text"]
    ((_, start, end, _, _),) = text_rows(db_path)
    assert (start, end) == (found[0]["start"], found[0]["end"])


def test_a_new_slide_on_the_same_background_starts_its_own_moment(
    cli, tmp_path: Path, db_path: Path
):
    """Two slides on one background: the picture barely changes (no new shot,
    no keyframe), yet the second slide's words start when it shows, not at
    the next frame the picture pass keeps (10 s, the --max-gap)."""
    background = (24, 60, 110)
    make_text_video(
        tmp_path / "talk" / "slides.mp4",
        [(6.0, background, "QUARTERLY RESULTS 2024"), (6.0, background, "Revenue up 12 percent")],
    )
    assert cli("index", tmp_path / "talk").exit_code == 0
    found = json.loads(cli("search", "revenue percent", "--modality", "text", "--json").stdout)
    assert "Revenue" in found[0]["text"]
    assert 6.0 <= found[0]["start"] <= 7.0
    first, second = text_rows(db_path)
    assert "QUARTERLY" in first[3] and "Revenue" in second[3]
    # The first slide's words end where the second's begin; the second's run to the end.
    assert first[1] == 0.0 and first[2] == second[1]
    assert second[2] == pytest.approx(12.0, abs=0.2)


def test_a_photo_given_as_an_example_finds_the_same_words(cli, signs: Path):
    cli("index", signs)
    other = save(
        drawn(SIGN, background=(200, 40, 40), ink=(255, 255, 0), at=(40, 100)),
        signs.parent / "elsewhere" / "same-sign.png",
    )
    found = json.loads(cli("similar", other, "--modality", "text", "--json").stdout)
    assert Path(found[0]["path"]).name == "airport.jpg"


def test_no_text_leaves_it_out_and_a_missing_model_folder_is_named(
    cli, signs: Path, db_path: Path, tmp_path: Path, monkeypatch
):
    missing = tmp_path / "no-such-ocr"
    result = cli("index", signs, "--text-model", missing)
    assert result.exit_code == 2
    assert f"--text-model {missing}: the folder {missing} does not exist" in result.stderr
    assert "--no-text" in result.stderr
    result = cli("index", signs, "--no-text")
    assert result.exit_code == 0
    assert text_rows(db_path) == []
    # A folder holding a recogniser (here the shipped one, as a user would copy
    # another script's) reads with it. Its key is the weights': the same
    # weights read the same words, other characters are another model.
    folder = tmp_path / "latin-ocr"
    folder.mkdir()
    shutil.copy(ocr._bundled_models()["rec"], folder / ocr.REC_FILE)
    assert OcrReader(f"local-dir:{folder}").key == OcrReader("PP-OCRv4").key
    assert cli("index", signs, "--text-model", f"local-dir:{folder}").exit_code == 0
    assert any("GATE" in row[3] for row in text_rows(db_path))
    (folder / ocr.DICT_FILE).write_text("a\nb\nc\n", encoding="utf-8")
    assert OcrReader(f"local-dir:{folder}").key != OcrReader("PP-OCRv4").key


def test_a_failure_reading_one_picture_costs_only_its_text(
    cli, signs: Path, db_path: Path, monkeypatch
):
    real_read = OcrReader.read

    def failing(reader, image, lines):  # type: ignore[no-untyped-def]
        if image.size == (1280, 800):
            raise RuntimeError("onnxruntime: bad allocation")
        return real_read(reader, image, lines)

    monkeypatch.setattr(OcrReader, "read", failing)
    result = cli("index", signs)
    assert result.exit_code == 0
    assert "Screenshot 2026-03-14.png" in result.stderr and "bad allocation" in result.stderr
    assert [Path(row[0]).name for row in text_rows(db_path)] == ["airport.jpg"]
    # The screenshot keeps its picture: found by what it looks like.
    listed = cli("search", "screenshot", "--paths", "--limit", "20").stdout.splitlines()
    assert any(line.endswith("Screenshot 2026-03-14.png") for line in listed)


def test_a_page_of_tiny_glyphs_is_read_within_bounds(monkeypatch):
    """Thousands of glyphs: the recogniser is given at most MAX_LINES lines
    and about READ_BUDGET columns, and what it reads is still kept."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(7)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    page = Image.new("RGB", (1600, 1600), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONTS / "DejaVuSans.ttf"), 20)
    for column in range(3):  # three columns of fifty lines of random words
        for row in range(50):
            words = " ".join("".join(rng.choice(alphabet, 5)) for _ in range(4))
            draw.text((20 + column * 530, 10 + row * 31), words, font=font, fill=(0, 0, 0))
    given: list[list[np.ndarray]] = []
    real = ocr._recognise

    def counted(engine, crops):  # type: ignore[no-untyped-def]
        given.append(list(crops))
        return real(engine, crops)

    monkeypatch.setattr(ocr, "_recognise", counted)
    reader = OcrReader("PP-OCRv4")
    found = reader.text_lines(page)
    assert found is not None and len(found) > ocr.MAX_LINES  # the detector saw them all
    blocks = reader.read(page, found)
    probe, full = given
    assert len(probe) == ocr.PROBE_LINES
    assert len(full) <= ocr.MAX_LINES
    widest = max(ocr._cost(crop) for crop in full)
    assert sum(ocr._cost(crop) for crop in full) <= ocr.READ_BUDGET + widest
    assert sum(len(block.text) for block in blocks) > 200


def test_blocks_group_a_sign_and_keep_columns_apart():
    """Lines side by side on a row, or stacked and aligned, are one block;
    distant text of another size is another."""
    from mediafind.models.ocr import _Line, group_lines

    def line(text: str, left: float, top: float, width: float, height: float) -> _Line:
        box = np.array(
            [[left, top], [left + width, top], [left + width, top + height], [left, top + height]],
            dtype=np.float32,
        )
        return _Line(text, box, height)

    blocks = group_lines(
        [
            line("GATE", 100, 100, 120, 40),
            line("B12", 250, 102, 90, 40),  # same row, a word's gap away
            line("Departures 14:35", 100, 150, 400, 38),  # just below, aligned
            line("EXIT", 800, 600, 100, 20),  # far away, smaller
        ],
        1000,
        800,
    )
    assert [block.text for block in blocks] == ["GATE B12\nDepartures 14:35", "EXIT"]
    assert blocks[0].box == (0.1, 0.125, 0.5, 0.235)


def test_a_huge_picture_is_read_at_a_bounded_size(monkeypatch):
    """A 48-megapixel photo of a sign is read from a copy of at most
    READ_SIDE pixels on its long side, and its words still come out."""
    sign = drawn([("DEPARTURES", 480)], size=(8000, 6000), at=(600, 2500))
    seen: list[tuple[int, ...]] = []
    reader = OcrReader("PP-OCRv4")
    engine = reader._load()
    real = engine.get_crop_img_list

    def noted(picture, boxes):  # type: ignore[no-untyped-def]
        seen.append(picture.shape)
        return real(picture, boxes)

    monkeypatch.setattr(engine, "get_crop_img_list", noted)
    found = reader.text_lines(sign)
    assert found is not None
    blocks = reader.read(sign, found)
    assert seen and max(seen[0][:2]) == ocr.READ_SIDE
    assert "DEPARTURES" in " ".join(block.text for block in blocks)


def test_text_never_clears_the_language_speech_heard(db_path: Path):
    """A video's speech sets its language; reading its text afterwards (the
    words pass, or a re-read with another text model) leaves it as it was."""
    from mediafind.db import FileFacts, NewSegment, Part

    with Store.open(db_path, create=True) as store:
        speech = store.create_space("speech", "base", "whisper:base", 0, active=True)
        text = store.create_space("text", "PP-OCRv4", "ocr:x", 0, active=True)
        facts = FileFacts("/v/party.mp4", "video", 1, 1, "h1", "ok")
        said = Part(
            speech,
            [NewSegment("speech", 1.0, 2.0)],
            texts=["hallo"],
            language="de",
            detects_language=True,
        )
        file_id = store.write_file(facts, [said, Part(text, [], detects_language=False)])
        written = Part(text, [NewSegment("text", 0.0, 3.0)], texts=["EXIT"], boxes=["[0,0,1,1]"])
        store.replace_words(file_id, written)
        language, box = store.conn.execute(
            "SELECT f.language, w.box FROM files f JOIN segments s ON s.file_id = f.id "
            "JOIN segment_words w ON w.segment_id = s.id WHERE s.modality = 'text'"
        ).fetchone()
    assert (language, box) == ("de", "[0,0,1,1]")


def test_a_photo_matching_by_picture_and_text_shows_its_words_and_combines():
    """When a photo's picture matches better than its text, the result still
    carries the matched words, and its score combines both (Stouffer's rule,
    as a video moment seen and said does)."""
    from mediafind.db import SegmentHit
    from mediafind.query import _result, _Scored

    def hit(segment: int, modality: str, text: str | None) -> SegmentHit:
        path = "/p/receipt.jpg"
        return SegmentHit(segment, 0.0, 1, path, "image", modality, None, None, b"", text)

    result = _result(
        [_Scored(hit(1, "visual", None), 2.0), _Scored(hit(2, "text", "Invoice\nMarch"), 1.0)]
    )
    assert result.modality == "visual"
    assert result.text == "Invoice\nMarch"
    assert [m.modality for m in result.moments] == ["text"]
    assert abs(result.score - (2.0 + 1.0) / 2**0.5) < 1e-9
