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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediafind import config
from mediafind.db import NewSegment, fold
from mediafind.errors import MediaError, UsageError
from mediafind.modalities.base import Decoded, DecodeOptions, Example, Progress, WordsModality

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

    from mediafind.models.ocr import OcrReader, TextBlock

ENV_TEXT_MODEL = "MEDIAFIND_TEXT_MODEL"
# A photo is first decoded at about this short side for the gate (JPEGs at a
# reduced scale: cheap), and only when it shows text at this one for reading.
GATE_DECODE_SIDE = 600
READ_DECODE_SIDE = 1200
# Video frames are read at this short side (720p).
FRAME_SIDE = 720
# Frames are compared for new words (`_changed`) as 320x192 grey copies in a
# grid of 16 x 16 blocks. Measured on tests/test_text.py's slides (640x360,
# 40-point text): the block where one line of words replaced another differs
# by 0.41 on average, and the most any block of the same slide differs a
# second later (the encoder's noise) is 0.001.
_DETAIL_SIZE = (320, 192)
_BLOCKS = 16
WORDS_CHANGE = 0.04


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
    memory at a time), and of the frames after it where the words may have
    changed (`_text_changes`); a block from its frame to the next frame read,
    or on through the frames after that show the same words."""
    from mediafind.media.video import KeptFrame, sample_frames

    read: list[_Reading] = []

    def on_frame(frame: KeptFrame) -> None:
        blocks = _read(frame.image, reader)
        read.append(_Reading(frame.time, blocks, _detail(frame.image) if blocks else None))

    video = sample_frames(
        path, min_side=FRAME_SIDE, max_gap=options.max_gap, progress=progress, on_frame=on_frame
    )
    decoded = Decoded(
        width=video.width,
        height=video.height,
        duration=video.duration,
        captured_at=video.captured_at,
    )
    read = sorted([*read, *_text_changes(path, read, video.duration, reader)], key=_at)
    starts = [reading.time for reading in read]
    ends = [*starts[1:], max(video.duration, starts[-1])]
    shown: dict[str, int] = {}  # folded text on the previous frame -> its segment
    for reading, end in zip(read, ends, strict=True):
        now: dict[str, int] = {}
        for block in reading.blocks:
            key = fold(block.text)
            if key in now:
                continue
            index = shown.get(key)
            if index is None:
                index = len(decoded.segments)
                decoded.segments.append(NewSegment(Text.name, reading.time, end))
                decoded.texts.append(block.text)
                decoded.boxes.append(_box(block))
            else:
                decoded.segments[index] = NewSegment(Text.name, decoded.segments[index].start, end)
            now[key] = index
        shown = now
    return decoded


@dataclass
class _Reading:
    time: float
    blocks: list[TextBlock]
    detail: np.ndarray | None  # `_detail` of the frame, kept where it shows text


def _at(reading: _Reading) -> float:
    return reading.time


def _detail(image: Image) -> np.ndarray:
    """A grey copy small enough to compare in microseconds, large enough that
    a line of slide or screen text is a few pixels high in it."""
    import numpy as np
    from PIL.Image import Resampling

    small = image.convert("L").resize(_DETAIL_SIZE, Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _changed(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether some block of the picture changed: new words change a few
    blocks a lot and leave the picture as a whole (and its thumbnail) as it was."""
    import numpy as np

    columns, rows = _DETAIL_SIZE
    blocks = np.abs(a - b).reshape(_BLOCKS, rows // _BLOCKS, _BLOCKS, columns // _BLOCKS)
    return float(blocks.mean(axis=(1, 3)).max()) > WORDS_CHANGE


def _text_changes(
    path: str, read: list[_Reading], duration: float, reader: OcrReader
) -> list[_Reading]:
    """Readings of the frames where the words change between kept frames.

    The picture pass keeps a frame where the picture changes; a new slide on
    the same background, or a screen recording's next page, changes too
    little of it, and its words would wait for the next kept frame (up to
    --max-gap seconds later). So after each kept frame that shows text, the
    frames a second apart up to the next kept frame are compared with it
    block by block (`_changed`), and a frame that changed is read: where its
    words differ, they start there. Frames without text, and so photos and
    videos without words, cost nothing more; a video with words over a moving
    picture pays at most one reading a second while the words show.
    """
    from mediafind.media.video import frames_between

    ends = [reading.time for reading in read[1:]] + [duration]
    stretches = [
        (reading.time, end, reading.detail, _words_of(reading))
        for reading, end in zip(read, ends, strict=True)
        if reading.detail is not None
    ]
    found: list[_Reading] = []
    current = -1
    spans = [(start, end) for start, end, _, _ in stretches]
    for number, frame in frames_between(path, spans, min_side=FRAME_SIDE):
        if number != current:
            # What the stretch shows so far: its kept frame, then each change.
            current, (_, _, shown, words) = number, stretches[number]
        detail = _detail(frame.image)
        if not _changed(shown, detail):
            continue
        reading = _Reading(frame.time, _read(frame.image, reader), detail)
        if _words_of(reading) != words:
            found.append(reading)
        shown, words = detail, _words_of(reading)
    return found


def _words_of(reading: _Reading) -> set[str]:
    return {fold(block.text) for block in reading.blocks}
