"""Video indexing speed on the reference clip, and what keyframe decoding saves.

Reference clip: two minutes of 1280x720 H.264 at 30 fps, a keyframe every 2 s,
twelve 10-second shots of textured pictures with a gentle pan. The script
generates it once (into --workdir), then times, with the model already loaded
(process start and model load are excluded, as the target says):

- full decoding of every frame, against the keyframe pass alone;
- indexing the clip through the library: open, sample, embed, write, commit;
- with --text, the words pass (the text modality, real OCR) on the reference
  clip, which shows no words, and on a slide deck: two minutes of sixteen
  slides of 7.5 s on one background (1280x720, a keyframe every 2 s), where
  it also counts the slides whose words start within a second of the slide.

    python bench/video_speed.py                      # default architecture, CPU
    python bench/video_speed.py --device cuda
    python bench/video_speed.py --text --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from index_speed import make_model

SHOTS = 12
SHOT_SECONDS = 10
FPS = 30
WIDTH, HEIGHT = 1280, 720
# Slides of 7.5 s: most changes fall between the frames kept every 10 s
# (--max-gap), as in a real talk.
SLIDES = 16
SLIDE_SECONDS = 7.5


def make_reference_clip(path: Path, shots: int = SHOTS) -> Path:
    if path.exists():
        return path
    import av
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {
            "preset": "veryfast",
            "crf": "23",
            "x264-params": f"keyint={2 * FPS}:min-keyint={2 * FPS}:scenecut=0",
        }
        index = 0
        for _ in range(shots):
            # A textured picture wider than the frame; the camera pans across it.
            coarse = rng.integers(0, 255, size=(9, 16, 3), dtype=np.uint8)
            wide = Image.fromarray(coarse).resize((WIDTH + 400, HEIGHT), Image.Resampling.BICUBIC)
            texture = np.asarray(wide).astype(np.int16)
            texture += rng.integers(-20, 20, size=texture.shape, dtype=np.int16)
            texture = np.clip(texture, 0, 255).astype(np.uint8)
            for number in range(SHOT_SECONDS * FPS):
                left = number * 400 // (SHOT_SECONDS * FPS)
                frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(texture[:, left : left + WIDTH]), format="rgb24"
                )
                frame.pts, frame.time_base = index, Fraction(1, FPS)
                index += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_slides_clip(path: Path) -> Path:
    """Slides of a title and two lines on one background."""
    if path.exists():
        return path
    import av
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    fonts = Path("/usr/share/fonts/truetype/dejavu")
    title = ImageFont.truetype(str(fonts / "DejaVuSans-Bold.ttf"), 64)
    body = ImageFont.truetype(str(fonts / "DejaVuSans.ttf"), 40)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {
            "preset": "veryfast",
            "crf": "23",
            "x264-params": f"keyint={2 * FPS}:min-keyint={2 * FPS}:scenecut=0",
        }
        index = 0
        for slide in range(SLIDES):
            image = Image.new("RGB", (WIDTH, HEIGHT), (24, 60, 110))
            draw = ImageDraw.Draw(image)
            draw.text((90, 80), f"Part {slide + 1}: SLIDE{slide + 1:02d}", font=title, fill="white")
            draw.text((110, 260), f"- point {slide * 2 + 1} of the talk", font=body, fill="white")
            draw.text((110, 340), f"- point {slide * 2 + 2} of the talk", font=body, fill="white")
            pixels = np.asarray(image)
            for _ in range(round(SLIDE_SECONDS * FPS)):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, FPS)
                index += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def time_text(clips: dict[str, Path], runs: int) -> None:
    """The words pass on each clip: seconds (median), blocks, slides on time."""
    from mediafind.modalities import DecodeOptions
    from mediafind.modalities.text import Text
    from mediafind.models.ocr import OcrReader

    reader = OcrReader("PP-OCRv4")
    reader.prepare()
    print("\n| words pass (text), real OCR | seconds (median) | text blocks | slides on time |")
    print("| --- | ---: | ---: | ---: |")
    for name, path in clips.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            decoded = Text().decode(str(path), "video", reader, DecodeOptions(), lambda *_: None)
            times.append(time.perf_counter() - started)
        # A slide's words start within a second of the slide (the slide's
        # number is in its title).
        on_time = 0
        for slide in range(SLIDES):
            starts = [
                segment.start
                for segment, text in zip(decoded.segments, decoded.texts, strict=True)
                if f"SLIDE{slide + 1:02d}" in text.replace(" ", "").upper()
            ]
            begins = slide * SLIDE_SECONDS
            on_time += any(s is not None and begins <= s <= begins + 1.0 for s in starts)
        shown = f"{on_time} / {SLIDES}" if "slide" in name else "-"
        print(f"| {name} | {statistics.median(times):.2f} | {len(decoded.texts)} | {shown} |")


def time_full_decode(path: Path) -> tuple[float, int]:
    import av

    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = sum(1 for _ in container.decode(stream))
    return time.perf_counter() - started, frames


def time_keyframes(path: Path) -> tuple[float, int]:
    import av

    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONKEY"
        frames = 0
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.size:
                frames += len(stream.codec_context.decode(packet))
        frames += len(stream.codec_context.decode(None))
    return time.perf_counter() - started, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="ViT-B-32-256")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    parser.add_argument(
        "--long-minutes", type=int, default=10, help="length of the clip for the decoding table"
    )
    parser.add_argument("--text", action="store_true", help="also time the words pass (text)")
    args = parser.parse_args()

    from mediafind.db import Store
    from mediafind.index import index_paths
    from mediafind.media.video import sample_frames
    from mediafind.models.clip import ClipEmbedder

    clip_dir = args.workdir / "reference-clip"
    clip = make_reference_clip(clip_dir / "reference.mp4")
    duration = SHOTS * SHOT_SECONDS

    long_shots = args.long_minutes * 60 // SHOT_SECONDS
    long_clip = make_reference_clip(args.workdir / f"long-{args.long_minutes}min.mp4", long_shots)
    print("| decoding | frames decoded | seconds |")
    print("| --- | ---: | ---: |")
    for name, path in (("2 min", clip), (f"{args.long_minutes} min", long_clip)):
        full, full_frames = time_full_decode(path)
        keys, key_frames = time_keyframes(path)
        print(f"| {name}, every frame | {full_frames} | {full:.2f} |")
        print(f"| {name}, keyframes only | {key_frames} | {keys:.2f} |")

    embedder = ClipEmbedder(make_model(args.workdir / f"model-{args.arch}", args.arch), args.device)
    embedder.embed_texts(["warm up"])  # load the model outside the timing
    sampled = sample_frames(str(clip), min_side=embedder.image_size)
    sample_times, embed_times, totals = [], [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        sampled = sample_frames(str(clip), min_side=embedder.image_size)
        sample_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        embedder.embed_images([frame.image for frame in sampled.frames])
        embed_times.append(time.perf_counter() - started)
        with (
            tempfile.TemporaryDirectory() as folder,
            Store.open(Path(folder) / "bench.db", create=True) as store,
        ):
            started = time.perf_counter()
            index_paths(store, [clip_dir], {"visual": embedder})
            totals.append(time.perf_counter() - started)

    total = statistics.median(totals)
    print()
    print(
        f"{args.arch} (random weights) on {args.device}, median of {args.runs} runs, "
        "model loaded beforehand"
    )
    print("| step | result |")
    print("| --- | ---: |")
    print(f"| frames kept (12 shots) | {len(sampled.frames)} |")
    print(
        f"| keyframes / in-between frames decoded | {sampled.keyframes_decoded} / "
        f"{sampled.probes_decoded} |"
    )
    print(f"| sampling (decode + choose) | {statistics.median(sample_times):.2f} s |")
    print(f"| embedding the kept frames | {statistics.median(embed_times):.2f} s |")
    print(f"| whole file: open to rows committed | {total:.2f} s |")
    print(f"| real-time factor | {duration / total:.0f}x |")
    if args.text:
        slides = make_slides_clip(clip_dir.parent / "slides" / "slides.mp4")
        time_text({"reference clip (no words)": clip, "slide deck, 16 slides": slides}, args.runs)


if __name__ == "__main__":
    main()
