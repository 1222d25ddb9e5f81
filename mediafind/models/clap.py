"""Sound, and text queries about sound, embedded with a CLAP model from transformers.

transformers is imported only when a CLAP model is first used: indexing with
--no-audio and searching an index without sound never import it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediafind.config import Choice
from mediafind.errors import MediafindError, ModelUnavailableError, UsageError, one_line
from mediafind.hashing import weights_fingerprint
from mediafind.models import fast
from mediafind.models.clap_fast import FastClap
from mediafind.models.common import (
    LazyModel,
    hub_unreachable_reason,
    load_cached_first,
    resolve_torch_device,
)

if TYPE_CHECKING:
    import numpy as np

_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class AudioModelSpec:
    """A --audio-model value: a Hugging Face repo id, or a local folder."""

    text: str
    local: bool
    name: str  # repo id or absolute folder path


def parse_audio_spec(text: str) -> AudioModelSpec:
    """A repo id (ORG/NAME) or a folder: anything spelled like a path is a
    folder, whether or not it exists (yet, or still). Raises ValueError."""
    text = text.strip()
    raw = text.removeprefix("local-dir:")
    folder = os.path.abspath(os.path.expanduser(raw))
    if not raw:
        raise ValueError("expected a Hugging Face repo id (ORG/NAME) or the path of a model folder")
    path_like = raw.startswith(("/", "~", ".")) or raw.count("/") != 1 or raw.endswith("/")
    if raw != text or path_like or os.path.isdir(folder):
        return AudioModelSpec(folder, True, folder)
    return AudioModelSpec(text, False, text)


_FOLDER_HINT = "it needs config.json, model.safetensors and the processor files"


def folder_problem(spec: AudioModelSpec) -> str | None:
    """What is missing from a local model folder, or None."""
    folder = Path(spec.name)
    if not folder.is_dir():
        return f"the folder {folder} does not exist; {_FOLDER_HINT}"
    if not (folder / "config.json").is_file():
        return f"the folder {folder} has no config.json; {_FOLDER_HINT}"
    if not any((folder / name).is_file() for name in _WEIGHT_NAMES):
        return f"the folder {folder} holds no weights; {_FOLDER_HINT}"
    return None


def audio_model_key(spec: AudioModelSpec) -> str:
    """Identity of the weights (a folder by its content, so it may move).
    Raises ModelUnavailableError when the folder lacks what it needs."""
    if not spec.local:
        return f"clap:{spec.name}"
    problem = folder_problem(spec)
    if problem is not None:
        raise ModelUnavailableError(problem)
    folder = Path(spec.name)
    digest = hashlib.blake2b(digest_size=16)
    digest.update((folder / "config.json").read_bytes())
    for name in _WEIGHT_NAMES:
        if (folder / name).is_file():
            digest.update(weights_fingerprint(folder / name).encode())
    return f"clap:local:{digest.hexdigest()}"


class _TorchClap:
    """A CLAP model run by torch: any device."""

    def __init__(self, model: Any, processor: Any, device: str) -> None:
        self.model, self.processor, self.device = model, processor, device
        extractor = processor.feature_extractor
        self.rate = int(extractor.sampling_rate)
        self.window_seconds = float(extractor.nb_max_samples) / float(extractor.sampling_rate)
        self.batch_size = 8 if device == "cpu" else 64

    @property
    def dim(self) -> int:
        return int(self.embed_texts(["dimension probe"]).shape[1])

    def features(self, samples: np.ndarray) -> dict[str, Any]:
        extractor = self.processor.feature_extractor
        return dict(extractor(samples, sampling_rate=self.rate, return_tensors="pt"))

    def embed_batch(self, inputs: Sequence[dict[str, Any]]) -> np.ndarray:
        import torch

        batch = {k: torch.cat([item[k] for item in inputs]).to(self.device) for k in inputs[0]}
        with torch.inference_mode():
            output = self.model.get_audio_features(**batch)
        return _unit_rows(output)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        tokenizer = self.processor.tokenizer
        tokens = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            output = self.model.get_text_features(
                **{k: v.to(self.device) for k, v in tokens.items()}
            )
        return _unit_rows(output)


class ClapEmbedder(LazyModel[_TorchClap, FastClap]):
    """A CLAP model: audio tower for sound windows, text tower for queries.

    Loads on first use, on torch or ONNX Runtime (see `LazyModel`); returns
    L2-normalised float32 rows.
    """

    what = "sound model"
    argument = "audio_model"
    missing_hint = (
        "copy the model folder to this machine and pass it with {audio_model} FOLDER, or "
        "leave sound out with {no_audio} (README: Offline use)"
    )
    hint_arguments = ("audio_model", "no_audio")

    def __init__(self, spec: str | Choice, device: str = "auto", precision: str = "fp32") -> None:
        super().__init__(spec, device, precision)
        try:
            self.spec = parse_audio_spec(self.choice.value)
        except ValueError as error:
            raise self.error(str(error), UsageError) from None

    def _base_key(self) -> str:
        try:
            return audio_model_key(self.spec)
        except ModelUnavailableError as error:
            raise self._folder_error(str(error)) from None

    def _folder_error(self, problem: str) -> MediafindError:
        if self.choice.source == "index" and not Path(self.spec.name).is_dir():
            return ModelUnavailableError(
                f"the index's {self.what} folder {self.spec.name} no longer exists; if it "
                "moved, point at its new place with {audio_model} NEW-FOLDER (the index "
                "checks that it holds the same weights)",
                arguments=("audio_model",),
            )
        return self.error(problem)

    def problem(self) -> MediafindError | None:
        if self.spec.local:
            found = folder_problem(self.spec)
            return None if found is None else self._folder_error(found)
        if fast.load_manifest(self._base_key(), self.precision) is not None:
            return None
        from huggingface_hub import try_to_load_from_cache

        cached = [try_to_load_from_cache(self.spec.name, name) for name in _WEIGHT_NAMES]
        if any(isinstance(path, str) for path in cached):
            return None
        unreachable = hub_unreachable_reason()
        if unreachable is None:
            return None
        return self.unavailable(f"it is not in the cache and cannot be downloaded ({unreachable})")

    def _create(self) -> _TorchClap:
        device = resolve_torch_device(self.device_name)
        model, processor, _ = self._build_cached()
        model.to(device).eval()
        return _TorchClap(model, processor, device)

    def _build_cached(self) -> tuple[Any, Any, list[Path]]:
        if self.spec.local:
            problem = folder_problem(self.spec)
            if problem is not None:
                raise self._folder_error(problem)
            return self._build(local_only=True)
        return load_cached_first(
            lambda cache_only: self._build(local_only=cache_only), self._unavailable
        )

    def _build(self, *, local_only: bool) -> tuple[Any, Any, list[Path]]:
        try:
            from transformers import ClapModel, ClapProcessor
            from transformers.utils import logging as transformers_logging

            # Loading bars and notices would interleave with mediafind's output.
            transformers_logging.set_verbosity_error()
            transformers_logging.disable_progress_bar()
            model = ClapModel.from_pretrained(self.spec.name, local_files_only=local_only)
            processor = ClapProcessor.from_pretrained(self.spec.name, local_files_only=local_only)
            weights = self._weight_files()
        except MediafindError:
            raise
        except Exception as error:
            raise self._unavailable(error) from error
        return model, processor, weights

    def _weight_files(self) -> list[Path]:
        """The weight and config files the model was loaded from."""
        if self.spec.local:
            folder = Path(self.spec.name)
            return [p for p in (folder / n for n in ("config.json", *_WEIGHT_NAMES)) if p.is_file()]
        from huggingface_hub import try_to_load_from_cache

        found = []
        for name in ("config.json", *_WEIGHT_NAMES):
            path = try_to_load_from_cache(self.spec.name, name)
            if isinstance(path, str):
                found.append(Path(path))
        return found

    def _convert(self, key: str) -> tuple[Path, dict[str, Any]]:
        try:
            model, processor, weights = self._build_cached()
        except ImportError as error:
            raise fast.ConversionError(str(error)) from error
        from mediafind.models import clap_fast

        return fast.build(
            key,
            self.precision,
            weights,
            lambda folder: clap_fast.convert(model, processor, self.precision, folder),
        )

    def _open_converted(self, folder: Path, manifest: dict[str, Any]) -> FastClap:
        return FastClap(folder, manifest)

    def _unavailable(self, error: BaseException) -> MediafindError:
        if self.spec.local:
            return self.error(f"cannot load it: {one_line(error)}")
        return self.unavailable(
            f"it is not in the cache and could not be downloaded ({one_line(error)})"
        )

    @property
    def rate(self) -> int:
        return self._backend(text=False).rate

    @property
    def window_seconds(self) -> float:
        return self._backend(text=False).window_seconds

    def features(self, samples: np.ndarray) -> dict[str, Any]:
        """Model input for one window (mel spectrogram); safe in worker threads."""
        return self._backend(text=False).features(samples)

    def embed_batch(self, inputs: Sequence[dict[str, Any]]) -> np.ndarray:
        """Embed windows prepared by `features`."""
        return self._backend(text=False, work=True).embed_batch(inputs)

    def embed_audio(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        backend = self._backend(text=False, work=True)
        return backend.embed_batch([backend.features(window) for window in windows])


def _unit_rows(output: Any) -> np.ndarray:
    import torch

    # transformers 5 returns an output object, 4 a tensor.
    tensor = output.pooler_output if hasattr(output, "pooler_output") else output
    tensor = torch.nn.functional.normalize(tensor.float(), dim=-1)
    return tensor.cpu().numpy()
