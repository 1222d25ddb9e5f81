"""Written text: the words pass's speed, the gate's recall, the worst cases.

Generates (once, into --workdir) a library of --photos 1024x768 JPEGs in
which one in ten shows text (signs, screenshots, receipts, posters, small
and low-contrast captions, slanted text) and the rest none (gradients,
shapes, stripes, checks, foliage-like noise: things a text detector may take
for text). Then:

1. labels each photo with full OCR (RapidOCR's own defaults on the full
   picture): it shows text when a line reads with a word of two letters or
   digits at confidence 0.6 or more;
2. runs the text modality on each photo in this process, one at a time,
   timing it and noting whether the gate let it through: the gate's recall
   against the labels, and the time per photo with and without text;
3. times `mediafind index` on the library twice, as a user runs it: first
   without text (`--no-text`: the photos' vectors, with a ViT-B-32-256 of
   random weights), then with it (the words pass alone, since the vectors
   are in): photos per second of each;
4. times the worst pictures it can make: a page of thousands of tiny
   glyphs, a 48-megapixel photo of a document, a screenshot of small text.

    python bench/ocr_speed.py --photos 1000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
FONTS = Path("/usr/share/fonts/truetype/dejavu")
WORDS = [
    "GATE B12 DEPARTURES",
    "Platform 4 Intercity",
    "OPEN 9-17 Mon-Fri",
    "Invoice No. 4471",
    "Total due 86.40 EUR",
    "Meeting notes: budget review",
    "Welcome to Lake Placid",
    "EXIT",
    "Happy Birthday Anna",
    "Wifi password: kestrel2024",
    "Room 214",
    "No parking",
    "Fresh bread daily",
    "Terminal 2 Arrivals",
    "Order #88213 shipped",
    "Dr. Weiss Dentist",
]


def _font(size: int, bold: bool):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONTS / name), size)


def _background(rng, size):  # type: ignore[no-untyped-def]
    """A photo-like picture without text: one of several textures."""
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = size
    kind = rng.integers(0, 5)
    base = rng.integers(0, 255, size=(3, 4, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    if kind == 1:  # shapes
        for _ in range(rng.integers(3, 12)):
            x, y = rng.integers(0, width), rng.integers(0, height)
            r = int(rng.integers(20, 200))
            fill = tuple(int(c) for c in rng.integers(0, 255, 3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif kind == 2:  # stripes: a fence, blinds
        step = int(rng.integers(8, 40))
        for x in range(0, width, step):
            draw.rectangle((x, 0, x + step // 2, height), fill=(40, 40, 40))
    elif kind == 3:  # checks: tiles, a shirt
        step = int(rng.integers(10, 50))
        for y in range(0, height, step):
            for x in range((y // step % 2) * step, width, 2 * step):
                draw.rectangle((x, y, x + step, y + step), fill=(230, 230, 230))
    pixels = np.asarray(image).astype(np.int16)
    noise = 40 if kind == 4 else 12  # foliage-like noise
    pixels += rng.integers(-noise, noise, size=pixels.shape, dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _with_text(rng, size):  # type: ignore[no-untyped-def]
    """A photo that shows text: one of several kinds, some of them hard."""
    from PIL import Image, ImageDraw

    height = size[1]
    kind = rng.integers(0, 6)
    if kind == 0:  # a screenshot or document: dark lines on white
        image = Image.new("RGB", size, (250, 250, 250))
        draw = ImageDraw.Draw(image)
        for row in range(int(rng.integers(4, 14))):
            text = " ".join(rng.choice(WORDS, 2))
            draw.text((40, 40 + row * 40), text, font=_font(22, False), fill=(30, 30, 30))
        return image
    image = _background(rng, size)
    draw = ImageDraw.Draw(image)
    text = str(rng.choice(WORDS))
    if kind == 1:  # a sign: a plate with big letters
        points = int(rng.integers(36, 72))
        x, y = int(rng.integers(20, 300)), int(rng.integers(20, height - 160))
        draw.rectangle(
            (x - 20, y - 20, x + 30 + points * len(text) * 0.65, y + points * 1.6),
            fill=(20, 50, 120),
        )
        draw.text((x, y), text, font=_font(points, True), fill=(255, 255, 255))
    elif kind == 2:  # a small caption, low contrast
        draw.text(
            (int(rng.integers(20, 400)), int(rng.integers(20, height - 60))),
            text,
            font=_font(int(rng.integers(16, 24)), False),
            fill=(200, 200, 200),
        )
    elif kind == 3:  # slanted text: a poster photographed at an angle
        layer = Image.new("RGBA", size, (0, 0, 0, 0))
        ImageDraw.Draw(layer).text(
            (200, height // 2), text, font=_font(48, True), fill=(255, 240, 0, 255)
        )
        image.paste(
            layer.rotate(float(rng.uniform(-25, 25))),
            (0, 0),
            layer.rotate(float(rng.uniform(-25, 25))),
        )
        draw = ImageDraw.Draw(image)
        draw.text((200, height // 2 + 80), text, font=_font(40, True), fill=(255, 255, 255))
    elif kind == 4:  # a receipt held in the picture
        x, y = int(rng.integers(100, 500)), int(rng.integers(20, 200))
        draw.rectangle((x, y, x + 360, y + 420), fill=(245, 245, 235))
        for row in range(8):
            line = f"{rng.choice(WORDS)[:18]} {rng.integers(1, 99)}.{rng.integers(10, 99)}"
            draw.text((x + 15, y + 15 + row * 48), line, font=_font(20, False), fill=(20, 20, 20))
    else:  # a T-shirt slogan, a shop front: medium letters on a busy background
        draw.text(
            (int(rng.integers(20, 400)), int(rng.integers(20, height - 100))),
            text,
            font=_font(int(rng.integers(28, 44)), True),
            fill=(10, 10, 10),
        )
    return image


def make_library(folder: Path, count: int) -> None:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for number in range(count):
        path = folder / f"{number:05d}.jpg"
        image = _with_text(rng, (1024, 768)) if number % 10 == 0 else _background(rng, (1024, 768))
        if not path.exists():
            image.save(path, quality=88)


_WORD = re.compile(r"[^\W_]{2,}")


def _label(path: str) -> bool:
    """Whether full OCR (RapidOCR's defaults, the whole picture) reads a word."""
    import logging

    from rapidocr_onnxruntime import RapidOCR

    global _ENGINE
    if "_ENGINE" not in globals():
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        _ENGINE = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
    result, _ = _ENGINE(path)
    return any(score >= 0.6 and _WORD.search(text) for _, text, score in result or ())


def labels(folder: Path, workdir: Path) -> dict[str, bool]:
    cache = workdir / f"labels-{folder.name}.json"
    if cache.exists():
        return dict(json.loads(cache.read_text()))
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    with ProcessPoolExecutor(2) as pool:
        found = dict(zip(paths, pool.map(_label, paths, chunksize=8), strict=True))
    cache.write_text(json.dumps(found))
    return found


def per_photo(folder: Path, truth: dict[str, bool]) -> dict[str, object]:
    """The text modality on each photo, one at a time: gate passes and times."""
    from mediafind.modalities import DecodeOptions
    from mediafind.modalities.text import Text
    from mediafind.models.ocr import OcrReader

    reader = OcrReader("PP-OCRv4")
    reader.prepare()
    gated: set[str] = set()
    real = reader.text_lines

    def noted(image):  # type: ignore[no-untyped-def]
        lines = real(image)
        if lines is not None:
            gated.add(current)
        return lines

    reader.text_lines = noted  # type: ignore[method-assign]
    times: dict[str, float] = {}
    words: dict[str, bool] = {}
    for current in sorted(truth):
        start = time.perf_counter()
        decoded = Text().decode(current, "image", reader, DecodeOptions(), lambda *_: None)
        times[current] = time.perf_counter() - start
        words[current] = bool(decoded.texts)
    shows = [p for p, label in truth.items() if label]
    plain = [p for p, label in truth.items() if not label]
    return {
        "photos": len(truth),
        "with text (full OCR)": len(shows),
        "gate recall": sum(p in gated for p in shows) / max(len(shows), 1),
        "read recall": sum(words[p] for p in shows) / max(len(shows), 1),
        "gate passes without text": sum(p in gated for p in plain),
        "words kept without text": sum(words[p] for p in plain),
        "ms per photo with text (median)": 1000 * statistics.median(times[p] for p in shows),
        "ms per photo with text (max)": 1000 * max(times[p] for p in shows),
        "ms per photo without (median)": 1000 * statistics.median(times[p] for p in plain),
        "ms per photo without (max)": 1000 * max(times[p] for p in plain),
        "one core, photos/s": len(truth) / sum(times.values()),
    }


def index_runs(folder: Path, workdir: Path, clip: str) -> dict[str, float]:
    env = dict(os.environ)
    env.update(
        MEDIAFIND_DB=str(workdir / "ocr-index.db"),
        MEDIAFIND_CONFIG=str(workdir / "none.toml"),
        MEDIAFIND_MODEL=clip,
        MEDIAFIND_CACHE=str(workdir / "cache"),
        HF_HUB_OFFLINE="1",
    )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env['MEDIAFIND_DB']}{suffix}").unlink(missing_ok=True)
    command = [sys.executable, "-m", "mediafind", "index"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # Convert the model for ONNX Runtime first: a one-time step, not indexing.
    subprocess.run([*command, str(workdir / "empty"), "--no-text"], env=env, check=False, **quiet)
    timed = {}
    for label, extra in (("vectors pass (--no-text)", ["--no-text"]), ("words pass", [])):
        start = time.perf_counter()
        subprocess.run([*command, str(folder), *extra], env=env, check=True, **quiet)
        timed[label] = time.perf_counter() - start
    return timed


def worst_cases(workdir: Path) -> list[tuple[str, float, int]]:
    import numpy as np
    from PIL import Image, ImageDraw

    from mediafind.modalities import DecodeOptions
    from mediafind.modalities.text import Text
    from mediafind.models.ocr import OcrReader

    reader = OcrReader("PP-OCRv4")
    reader.prepare()
    rng = np.random.default_rng(3)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    cases = []
    glyphs = Image.new("RGB", (2400, 3200), (255, 255, 255))
    draw = ImageDraw.Draw(glyphs)
    for column in range(4):
        for row in range(150):
            text = " ".join("".join(rng.choice(alphabet, 4)) for _ in range(5))
            draw.text((10 + column * 600, 5 + row * 21), text, font=_font(14, False), fill=0)
    cases.append(("page of 12,000 tiny glyphs, 2400x3200 PNG", glyphs, "png"))
    document = Image.new("RGB", (8000, 6000), (240, 240, 230))
    draw = ImageDraw.Draw(document)
    for row in range(60):
        draw.text(
            (400, 300 + row * 90),
            " ".join(rng.choice(WORDS, 3)),
            font=_font(60, False),
            fill=(20, 20, 20),
        )
    cases.append(("photo of a document, 8000x6000 JPEG (48 MP)", document, "jpg"))
    screen = Image.new("RGB", (2560, 1440), (255, 255, 255))
    draw = ImageDraw.Draw(screen)
    for row in range(70):
        draw.text(
            (20, 10 + row * 20),
            " ".join(rng.choice(WORDS, 5)),
            font=_font(13, False),
            fill=(30, 30, 30),
        )
    cases.append(("screenshot of small text, 2560x1440 PNG", screen, "png"))
    results = []
    for name, image, suffix in cases:
        path = workdir / f"worst-{len(results)}.{suffix}"
        image.save(path)
        start = time.perf_counter()
        decoded = Text().decode(str(path), "image", reader, DecodeOptions(), lambda *_: None)
        results.append((name, time.perf_counter() - start, sum(len(t) for t in decoded.texts)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    parser.add_argument("--skip-index", action="store_true", help="no `mediafind index` runs")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from index_speed import make_model

    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "empty").mkdir(exist_ok=True)
    folder = workdir / f"ocr-library-{args.photos}"
    make_library(folder, args.photos)
    truth = labels(folder, workdir)
    print(f"## {args.photos} photos, one in ten drawn with text; {os.cpu_count()} cores\n")
    print("| measure | value |\n| --- | ---: |")
    for name, value in per_photo(folder, truth).items():
        shown = (
            f"{value:.1%}"
            if "recall" in name
            else (f"{value:.1f}" if isinstance(value, float) else str(value))
        )
        print(f"| {name} | {shown} |")
    if not args.skip_index:
        clip = make_model(workdir / "clip-ViT-B-32-256", "ViT-B-32-256")
        for name, seconds in index_runs(folder, workdir, clip).items():
            print(f"| `mediafind index`, {name}: photos/s | {args.photos / seconds:.1f} |")
    print("\n| worst case | seconds | characters read |\n| --- | ---: | ---: |")
    for name, seconds, characters in worst_cases(workdir):
        print(f"| {name} | {seconds:.2f} | {characters} |")


if __name__ == "__main__":
    main()
