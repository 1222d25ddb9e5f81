"""What is said: Whisper speech recognition with faster-whisper (CTranslate2).

faster-whisper and ctranslate2 are imported only when speech is transcribed.
Voice activity detection (the Silero model that ships inside faster-whisper)
finds where people speak; only those stretches are transcribed, so an hour of
music costs seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediafind.config import Choice, usable_cores
from mediafind.errors import (
    DeviceError,
    MediafindError,
    ModelUnavailableError,
    UsageError,
    one_line,
)
from mediafind.hashing import weights_fingerprint
from mediafind.models.common import (
    ChosenModel,
    hub_cache_only,
    hub_unreachable_reason,
    load_cached_first,
)

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000
# faster-whisper's own names (faster_whisper.utils._MODELS), kept here so that
# a spec can be checked without importing it; a name it knows is a hub repo.
NAMES = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "medium.en": "Systran/faster-whisper-medium.en",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}
# What a local model folder must hold. tokenizer.json above all: without it,
# faster-whisper fetches one from the hub, whatever local_files_only says.
_FOLDER_FILES = ("model.bin", "config.json", "tokenizer.json")
_VOCABULARIES = ("vocabulary.json", "vocabulary.txt")


@dataclass(frozen=True)
class SpeechModelSpec:
    text: str
    local: bool
    name: str  # hub repo id, or absolute folder path


def parse_speech_spec(text: str) -> SpeechModelSpec:
    """A model name (base, small.en, ...), a hub repo id (ORG/NAME) or a folder
    (local-dir:PATH, or anything spelled like a path). Raises ValueError."""
    text = text.strip()
    raw = text.removeprefix("local-dir:")
    if not raw:
        raise ValueError("expected a model name such as base, a repo id or a model folder")
    if raw in NAMES and raw == text:
        return SpeechModelSpec(text, False, NAMES[raw])
    folder = os.path.abspath(os.path.expanduser(raw))
    path_like = raw.startswith(("/", "~", ".")) or raw.count("/") != 1 or raw.endswith("/")
    if raw != text or path_like or os.path.isdir(folder):
        if raw == text and raw.count("/") == 0 and not os.path.isdir(folder):
            known = ", ".join(NAMES)
            raise ValueError(f"not a model name ({known}), a repo id or a model folder")
        return SpeechModelSpec(folder, True, folder)
    return SpeechModelSpec(text, False, text)


def folder_problem(folder: Path) -> str | None:
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    missing = [name for name in _FOLDER_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in _VOCABULARIES):
        missing.append("vocabulary.json")
    if missing:
        return (
            f"the folder {folder} lacks {', '.join(missing)} (a faster-whisper model folder "
            "holds model.bin, config.json, tokenizer.json and vocabulary.json or .txt)"
        )
    return None


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """What one stretch of audio says: its words with their times (seconds in
    the file), and the language they are in."""

    words: list[Word]
    language: str


class WhisperTranscriber(ChosenModel):
    """A faster-whisper model, loaded on first use, shared by the worker threads."""

    what = "speech model"
    argument = "speech_model"
    missing_hint = (
        "copy a faster-whisper model folder to this machine and pass it with {speech_model} "
        "FOLDER, or leave speech out with {no_speech} (README: Offline use)"
    )
    hint_arguments = ("speech_model", "no_speech")
    dim = 0  # words, not vectors
    batch_size = 1

    def __init__(self, choice: Choice | str, device: str = "auto", precision: str = "fp32") -> None:
        super().__init__(choice, device, precision)
        self._model: Any = None
        try:
            self.spec = parse_speech_spec(self.choice.value)
        except ValueError as error:
            raise self.error(str(error), UsageError) from None

    @property
    def key(self) -> str:
        """The words of one model are never mixed with another's. The compute
        type is not part of it: int8 and float16 runs of one model read alike."""
        if not self.spec.local:
            return f"whisper:{self.spec.name}"
        folder = Path(self.spec.name)
        problem = folder_problem(folder)
        if problem is not None:
            raise self._folder_error(problem)
        digest = hashlib.blake2b(digest_size=16)
        for name in ("config.json", "tokenizer.json"):
            digest.update((folder / name).read_bytes())
        digest.update(weights_fingerprint(folder / "model.bin").encode())
        return f"whisper:local:{digest.hexdigest()}"

    def _folder_error(self, problem: str) -> MediafindError:
        if self.choice.source == "index" and not Path(self.spec.name).is_dir():
            return ModelUnavailableError(
                f"the index's {self.what} folder {self.spec.name} no longer exists; if it "
                "moved, point at its new place with {speech_model} NEW-FOLDER",
                arguments=("speech_model",),
            )
        return self.error(problem)

    def problem(self) -> MediafindError | None:
        if self.spec.local:
            found = folder_problem(Path(self.spec.name))
            return None if found is None else self._folder_error(found)
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(self.spec.name, "model.bin"), str):
            return None
        unreachable = hub_unreachable_reason()
        if unreachable is None:
            return None
        return self.error(
            f"it is not in the cache and cannot be downloaded ({unreachable}); " + self.missing_hint
        )

    def prepare(self) -> None:
        self._load()

    def _device(self) -> tuple[str, str]:
        """CTranslate2's device and compute type for --device and --precision.
        On the CPU always int8 (int8 weights, float32 activations): the
        runtime's recommended CPU setting, about twice as fast as float32 for
        the same words (faster-whisper's published benchmark)."""
        import ctranslate2

        gpus = ctranslate2.get_cuda_device_count()
        name = self.device_name
        if name in ("cuda",) or name.startswith("cuda:"):
            if gpus == 0:
                raise DeviceError(
                    f"{{device}} {name}: CTranslate2 sees no CUDA GPU here; use cpu or auto",
                    arguments=("device",),
                )
            device = "cuda"
        elif name == "auto":
            device = "cuda" if gpus else "cpu"
        elif name in ("cpu", "mps"):
            device = "cpu"  # CTranslate2 has no Metal backend: the CPU it is
        else:
            raise UsageError(
                f"{{device}} {name!r}: expected auto, cpu, cuda or mps", arguments=("device",)
            )
        if device == "cpu":
            return device, "int8"
        return device, "int8_float16" if self.precision == "int8" else "float16"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._create()
            return self._model

    def _create(self) -> Any:
        device, compute_type = self._device()
        if self.spec.local:
            folder = Path(self.spec.name)
            problem = folder_problem(folder)
            if problem is not None:
                raise self._folder_error(problem)
            with hub_cache_only():  # nothing from the hub for a local folder, ever
                model = self._open(str(folder), device, compute_type)
        else:
            path = load_cached_first(
                lambda cache_only: self._download(cache_only), self._unavailable
            )
            with hub_cache_only():
                model = self._open(path, device, compute_type)
        self.notes.append(f"{self.name} ran on CTranslate2 ({device}, {compute_type})")
        return model

    def _download(self, cache_only: bool) -> str:
        try:
            from faster_whisper.utils import download_model

            return str(download_model(self.spec.name, local_files_only=cache_only))
        except Exception as error:
            raise self._unavailable(error) from error

    def _open(self, path: str, device: str, compute_type: str) -> Any:
        try:
            from faster_whisper import WhisperModel

            return WhisperModel(
                path,
                device=device,
                compute_type=compute_type,
                cpu_threads=usable_cores() if device == "cpu" else 0,
                local_files_only=True,
            )
        except MediafindError:
            raise
        except Exception as error:
            raise self.error(f"cannot load it: {one_line(error)}") from error

    def _unavailable(self, error: BaseException) -> MediafindError:
        return self.error(
            f"it is not in the cache and could not be downloaded ({one_line(error)}); "
            + self.missing_hint
        )

    def transcribe(self, samples: np.ndarray, offset: float, language: str | None) -> Transcript:
        """The words of one stretch of speech (16 kHz mono), with times in the
        file (`offset` is where the stretch starts). Greedy-free, deterministic
        settings: beam search, temperature 0, no conditioning on earlier text
        (which lets one misheard phrase derail the rest)."""
        model = self._load()
        duration = len(samples) / SAMPLE_RATE
        segments, info = model.transcribe(
            samples,
            language=language,
            beam_size=5,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=False,
        )
        words: list[Word] = []
        for segment in segments:
            for word in segment.words or ():
                # Times can fall past the end (a model's guess): keep them in.
                start = min(max(float(word.start), 0.0), duration)
                end = min(max(float(word.end), start), duration)
                # As spoken: a leading space where the language puts one, none
                # between Chinese or Japanese characters (see `phrase_text`).
                if word.word.strip():
                    words.append(Word(offset + start, offset + end, word.word))
        return Transcript(words, str(info.language))

    def speech_regions(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Where people speak in 16 kHz mono samples, as (start, end) sample
        indexes: Silero voice activity detection, with a short pause ending a
        region (the library's default waits two seconds)."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(min_silence_duration_ms=700, speech_pad_ms=300)
        return [
            (int(region["start"]), int(region["end"]))
            for region in get_speech_timestamps(samples, vad_options=options)
        ]


# Full stops, question and exclamation marks, Western and East Asian.
_SENTENCE_ENDS = (".", "?", "!", "\u3002", "\uff1f", "\uff01")


def phrases(words: Sequence[Word], *, pause: float = 0.8, longest: int = 16) -> list[list[Word]]:
    """Words grouped into phrases: a phrase ends at a pause, at the end of a
    sentence, or after `longest` words, so a moment is a few words to a
    sentence, as people remember what was said."""
    groups: list[list[Word]] = []
    for word in words:
        current = groups[-1] if groups else None
        if (
            current is None
            or word.start - current[-1].end > pause
            or len(current) >= longest
            or current[-1].text.rstrip().endswith(_SENTENCE_ENDS)
        ):
            groups.append([word])
        else:
            current.append(word)
    return groups


def phrase_text(words: Sequence[Word]) -> str:
    """A phrase's words as one string, spaced as the language spaces them."""
    return " ".join("".join(word.text for word in words).split())
