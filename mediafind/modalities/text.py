"""What is written: the text in photos, screenshots and video frames.

Photos are read upright (EXIF orientation applied); videos in the frames the
picture pass keeps, one per shot, so each shot's text comes with that shot's
moment. A block of text (a sign, a paragraph, a receipt) is a segment with
its words and where it is in the picture. Text shown across several shots in
a row (a title over changing pictures, a slide) is one segment spanning them.
Most pictures show no text: the reader's gate (see mediafind/models/ocr.py)
decides that from a small copy, so they cost a tenth of a reading.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from mediafind import config
from mediafind.db import NewSegment, fold
from mediafind.errors import MediaError, UsageError
from mediafind.modalities.base import Decoded, DecodeOptions, Example, Progress, WordsModality

if TYPE_CHECKING:
    from PIL.Image import Image

    from mediafind.models.ocr import OcrReader, TextBlock

ENV_TEXT_MODEL = "MEDIAFIND_TEXT_MODEL"
# A photo is first decoded at about this short side for the gate (JPEGs at a
# reduced scale: cheap), and only when it shows text at this one for reading.
GATE_DECODE_SIDE = 600
READ_DECODE_SIDE = 1200
# Video frames are read at this short side (720p).
FRAME_SIDE = 720


class Text(WordsModality):
    name = "text"
    noun = "text"
    kinds = ("image", "video")
    option = "--text-model"
    argument = "text_model"
    env = ENV_TEXT_MODEL
    model_help = "RapidOCR: PP-OCRv4 (the models it ships) or a local model folder."
    config_key = "text_model"
    # PP-OCRv4 as RapidOCR ships it: Latin script and Chinese, no download.
    default_model = "PP-OCRv4"
    skip_option = "--no-text"
    skip_help = "Do not read the text in photos and video frames."
    example_kinds = ("image", "video")
    unit = "text block"
    # Reading words is slow: after pictures and sound, so that the library
    # can be searched meanwhile.
    after = ("visual", "audio")
    pass_label = "reading words"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> OcrReader:
        from mediafind.models.ocr import OcrReader

        return OcrReader(choice, device=device, precision=precision)

    def decode(
        self,
        path: str,
        kind: str,
        embedder: OcrReader,
        options: DecodeOptions,
        progress: Progress,
    ) -> Decoded:
        if kind == "video":
            return _video_text(path, embedder, options, progress)
        return _photo_text(path, embedder)

    def example_words(self, example: Example, embedder: OcrReader) -> str:
        """What an example shows in writing (a photo, a video's frames, or the
        frame at its time)."""
        from mediafind.media.video import frame_at
        from mediafind.scan import VIDEO_EXTENSIONS

        try:
            if os.path.splitext(example.path)[1].lower() not in VIDEO_EXTENSIONS:
                decoded = _photo_text(example.path, embedder)
            elif example.time is None:
                decoded = _video_text(example.path, embedder, DecodeOptions(), _quiet)
            else:
                frame = frame_at(example.path, example.time, min_side=FRAME_SIDE)
                return " ".join(block.text for block in _read(frame, embedder))
        except MediaError as error:
            raise UsageError(f"{{argument}} {example.path}: {error}", argument="like") from error
        return " ".join(decoded.texts)


def _quiet(position: float, duration: float) -> None:
    pass


def _read(image: Image, reader: OcrReader) -> list[TextBlock]:
    lines = reader.text_lines(image)
    return [] if lines is None else reader.read(image, lines)


def _box(block: TextBlock) -> str:
    return json.dumps(list(block.box))


def _photo_text(path: str, reader: OcrReader) -> Decoded:
    from mediafind.media.image import load_image

    small = load_image(path, GATE_DECODE_SIDE)
    decoded = Decoded(width=small.width, height=small.height, captured_at=small.captured_at)
    lines = reader.text_lines(small.image)
    if lines is None:
        return decoded
    for block in reader.read(load_image(path, READ_DECODE_SIDE).image, lines):
        decoded.segments.append(NewSegment(Text.name, None, None))
        decoded.texts.append(block.text)
        decoded.boxes.append(_box(block))
    return decoded


def _video_text(
    path: str, reader: OcrReader, options: DecodeOptions, progress: Progress
) -> Decoded:
    """The text of each kept frame, read as the frame is kept (one frame in
    memory at a time); a block from its frame to the next kept frame, or on
    through the frames after that show the same words."""
    from mediafind.media.video import KeptFrame, sample_frames

    read: list[tuple[float, list[TextBlock]]] = []

    def on_frame(frame: KeptFrame) -> None:
        read.append((frame.time, _read(frame.image, reader)))

    video = sample_frames(
        path, min_side=FRAME_SIDE, max_gap=options.max_gap, progress=progress, on_frame=on_frame
    )
    decoded = Decoded(
        width=video.width,
        height=video.height,
        duration=video.duration,
        captured_at=video.captured_at,
    )
    starts = [time for time, _ in read]
    ends = [*starts[1:], max(video.duration, starts[-1])]
    shown: dict[str, int] = {}  # folded text on the previous frame -> its segment
    for (start, blocks), end in zip(read, ends, strict=True):
        now: dict[str, int] = {}
        for block in blocks:
            key = fold(block.text)
            if key in now:
                continue
            index = shown.get(key)
            if index is None:
                index = len(decoded.segments)
                decoded.segments.append(NewSegment(Text.name, start, end))
                decoded.texts.append(block.text)
                decoded.boxes.append(_box(block))
            else:
                decoded.segments[index] = NewSegment(Text.name, decoded.segments[index].start, end)
            now[key] = index
        shown = now
    return decoded
