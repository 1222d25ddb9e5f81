"""Deterministic stand-ins for the real modalities, registered through the same
registry: for tests about the pipeline, storage, filters, output and ranking,
where the model is not the subject. They decode real files with the real
readers (Pillow, PyAV) and embed with a few lines of numpy, so no torch model
is built or loaded.

A picture's vector is its 4x4 thumbnail, centred and scaled to unit length (so
alike pictures have alike vectors); a sound window's is its energy in eight
frequency bands. A query's words map to a fixed pseudo-random direction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mediafind import config
from mediafind.db import NewSegment
from mediafind.errors import MediaError, UsageError
from mediafind.modalities.audio import Audio
from mediafind.modalities.base import (
    Decoded,
    DecodeOptions,
    Example,
    Modality,
    Progress,
    mean_direction,
)
from mediafind.modalities.visual import Visual

PICTURE_SIDE = 4
SOUND_RATE = 8000
SOUND_WINDOW = 2.0


def unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def text_vector(text: str, dim: int) -> np.ndarray:
    """A fixed direction for a text: the same words, the same vector, always."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return unit(np.random.default_rng(seed).standard_normal(dim))


def picture_vector(image: Any) -> np.ndarray:
    small = image.convert("RGB").resize((PICTURE_SIDE, PICTURE_SIDE))
    pixels = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
    return unit(pixels - pixels.mean() + 1e-3)


def sound_vector(samples: np.ndarray) -> np.ndarray:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    bands = np.array_split(spectrum, 8)
    return unit(np.log1p([band.mean() for band in bands]))


class FakeEmbedder:
    """The Embedder interface in numpy: inputs are already vectors."""

    def __init__(self, modality: str, choice: config.Choice, dim: int, precision: str) -> None:
        self.choice = choice
        self.modality = modality
        self.precision = precision
        self.notes: list[str] = []
        self.on_prepare: Callable[[Any], None] = lambda event: None
        self._dim = dim
        self.embedded = 0  # inputs embedded, for tests that count work

    @property
    def name(self) -> str:
        return self.choice.value

    @property
    def key(self) -> str:
        return f"fake:{self.modality}:{self.choice.value}" + (
            "#int8" if self.precision == "int8" else ""
        )

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def batch_size(self) -> int:
        return 8

    def embed_batch(self, inputs: Sequence[Any]) -> np.ndarray:
        self.embedded += len(inputs)
        return np.stack([unit(vector) for vector in inputs])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([text_vector(text, self._dim) for text in texts])

    def problem(self) -> None:
        return None

    def prepare(self) -> None:
        pass


class FakeVisual(Visual):
    """Photos and frames, read by the real readers, embedded as thumbnails."""

    env = "MEDIAFIND_FAKE_MODEL"
    config_key = "fake_model"
    default_model = "thumbnail-4x4"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> FakeEmbedder:
        return FakeEmbedder(self.name, choice, PICTURE_SIDE * PICTURE_SIDE * 3, precision)

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        from mediafind.media.image import load_image
        from mediafind.media.video import sample_frames

        if kind == "video":
            video = sample_frames(path, min_side=32, max_gap=options.max_gap, progress=progress)
            starts = [frame.time for frame in video.frames]
            ends = [*starts[1:], max(video.duration, starts[-1])]
            return Decoded(
                inputs=[picture_vector(frame.image) for frame in video.frames],
                segments=[NewSegment(self.name, s, e) for s, e in zip(starts, ends, strict=True)],
                width=video.width,
                height=video.height,
                duration=video.duration,
                captured_at=video.captured_at,
                partial=video.problem,
            )
        decoded = load_image(path, 32)
        return Decoded(
            inputs=[picture_vector(decoded.image)],
            segments=[NewSegment(self.name, None, None)],
            width=decoded.width,
            height=decoded.height,
            captured_at=decoded.captured_at,
        )

    def embed_example(self, example: Example, embedder: Any) -> np.ndarray:
        from mediafind.media.image import load_image

        if example.time is not None:
            raise UsageError("the fake visual modality takes whole photos only")
        try:
            return picture_vector(load_image(example.path, 32).image)
        except MediaError as error:
            raise UsageError(f"{{argument}} {example.path}: {error}", argument="like") from error


class FakeAudio(Audio):
    """Sound windows, read by the real reader, embedded as band energies."""

    env = "MEDIAFIND_FAKE_AUDIO_MODEL"
    config_key = "fake_audio_model"
    default_model = "bands-8"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> FakeEmbedder:
        return FakeEmbedder(self.name, choice, 8, precision)

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        from mediafind.media.audio import AudioReport, audio_windows

        decoded, report = Decoded(), AudioReport()
        for window in audio_windows(
            path, rate=SOUND_RATE, window_seconds=SOUND_WINDOW, report=report, progress=progress
        ):
            decoded.inputs.append(sound_vector(window.samples))
            decoded.segments.append(NewSegment(self.name, window.start, window.end))
        if kind == "audio":
            if report.duration == 0 and report.problem is None:
                raise MediaError("no sound in the file (no audio stream, or 0 samples)")
            decoded.duration = report.duration
            decoded.captured_at = report.captured_at
        if report.problem:
            decoded.partial = f"sound: {report.problem}"
        return decoded

    def embed_example(self, example: Example, embedder: Any) -> np.ndarray:
        from mediafind.media.audio import audio_windows

        windows = list(audio_windows(example.path, rate=SOUND_RATE, window_seconds=SOUND_WINDOW))
        if example.time is not None:
            windows = [w for w in windows if w.start <= example.time < w.end][:1]
        if not windows:
            raise UsageError(f"{{argument}} {example.path}: no sound there", argument="like")
        return mean_direction(np.stack([sound_vector(w.samples) for w in windows]))


def fake_modalities() -> list[Modality]:
    return [FakeVisual(), FakeAudio()]
