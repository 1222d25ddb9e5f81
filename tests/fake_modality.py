"""Deterministic stand-ins for the real models, in modalities registered through
the same registry: for tests about the pipeline, storage, filters, output and
ranking, where the model is not the subject. The modalities are the real ones
(the same readers decode the same files); only the model is a few lines of
numpy, so no torch model is built or loaded.

A picture's vector is its 4x4 thumbnail, centred and scaled to unit length (so
alike pictures have alike vectors); a sound window's is its energy in eight
frequency bands. A query's words map to a fixed pseudo-random direction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mediafind import config
from mediafind.db import NewSegment
from mediafind.modalities.audio import Audio
from mediafind.modalities.base import (
    Decoded,
    DecodeOptions,
    Example,
    Modality,
    Progress,
    WordsModality,
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
        return np.stack([unit(vector) for vector in inputs])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([text_vector(text, self._dim) for text in texts])

    def problem(self) -> None:
        return None

    def prepare(self) -> None:
        pass


class FakePictures(FakeEmbedder):
    """What the visual modality asks of its model: image size, preparation."""

    image_size = 32

    def preprocess(self, image: Any) -> np.ndarray:
        return picture_vector(image)

    def embed_images(self, images: Sequence[Any]) -> np.ndarray:
        return self.embed_batch([picture_vector(image) for image in images])


class FakeSounds(FakeEmbedder):
    """What the audio modality asks of its model: rate, window, features."""

    rate = SOUND_RATE
    window_seconds = SOUND_WINDOW

    def features(self, samples: np.ndarray) -> np.ndarray:
        return sound_vector(samples)

    def embed_audio(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed_batch([sound_vector(window) for window in windows])


class FakeVisual(Visual):
    """The visual modality, real readers and all, with a thumbnail for a model."""

    env = "MEDIAFIND_FAKE_MODEL"
    config_key = "fake_model"
    default_model = "thumbnail-4x4"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> Any:
        return FakePictures(self.name, choice, PICTURE_SIDE * PICTURE_SIDE * 3, precision)


class FakeAudio(Audio):
    """The audio modality, real reader and all, with band energies for a model."""

    env = "MEDIAFIND_FAKE_AUDIO_MODEL"
    config_key = "fake_audio_model"
    default_model = "bands-8"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> Any:
        return FakeSounds(self.name, choice, 8, precision)


def fake_modalities() -> list[Modality]:
    return [FakeVisual(), FakeAudio()]


class SidecarWords(WordsModality):
    """A words modality without Whisper or OCR, for tests of the words pass:
    a recording's or video's words are read from a file beside it,
    `NAME.words`, one `START END TEXT` line per phrase (no file: nothing
    said). Registered under its own name, beside the real ones."""

    name = "sidecar"
    noun = "sidecar words"
    kinds = ("audio", "video")
    option = "--sidecar-model"
    argument = "sidecar_model"
    env = "MEDIAFIND_SIDECAR_MODEL"
    config_key = "sidecar_model"
    default_model = "words-file"
    model_help = "Reads NAME.words beside each file (tests only)."
    skip_option = "--no-sidecar"
    skip_help = "Leave out the sidecar words."
    example_kinds = ("audio", "video")
    after = ("visual", "audio")
    pass_label = "reading words"
    unit = "phrase"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> Any:
        return FakeEmbedder(self.name, choice, 0, precision)

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        decoded = Decoded(language="en")
        try:
            lines = Path(path + ".words").read_text().splitlines()
        except FileNotFoundError:
            return decoded
        for line in lines:
            start, end, text = line.split(maxsplit=2)
            decoded.segments.append(NewSegment(self.name, float(start), float(end)))
            decoded.texts.append(text)
        return decoded

    def example_words(self, example: Example, embedder: Any) -> str:
        decoded = self.decode(example.path, "audio", embedder, DecodeOptions(), lambda *a: None)
        return " ".join(decoded.texts)
