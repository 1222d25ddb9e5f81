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

from mediafind.errors import MediafindError, ModelUnavailableError, UsageError
from mediafind.hashing import weights_fingerprint
from mediafind.models import fast
from mediafind.models.clap_fast import FastClap
from mediafind.models.common import (
    LazyModel,
    load_cached_first,
    one_line,
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
    text = text.strip()
    raw = text.removeprefix("local-dir:")
    folder = os.path.abspath(os.path.expanduser(raw))
    if raw != text or os.path.isdir(folder):
        return AudioModelSpec(folder, True, folder)
    if text.count("/") != 1 or text.startswith("/") or text.endswith("/"):
        raise UsageError(
            f"--audio-model {text!r}: expected a Hugging Face repo id (ORG/NAME) "
            "or the path of a local model folder"
        )
    return AudioModelSpec(text, False, text)


def _check_folder(spec: AudioModelSpec) -> Path:
    folder = Path(spec.name)
    hint = "it needs config.json, model.safetensors and the processor files"
    if not folder.is_dir():
        raise ModelUnavailableError(f"audio model folder {folder} does not exist; {hint}")
    if not (folder / "config.json").is_file():
        raise ModelUnavailableError(f"audio model folder {folder} has no config.json; {hint}")
    if not any((folder / name).is_file() for name in _WEIGHT_NAMES):
        raise ModelUnavailableError(f"audio model folder {folder} holds no weights; {hint}")
    return folder


def audio_model_key(spec: AudioModelSpec) -> str:
    """Identity of the weights (a folder by its content, so it may move)."""
    if not spec.local:
        return f"clap:{spec.name}"
    folder = _check_folder(spec)
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

    def embed_features(self, inputs: Sequence[dict[str, Any]]) -> np.ndarray:
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

    modality = "audio"

    def __init__(
        self, spec: str | AudioModelSpec, device: str = "auto", precision: str = "fp32"
    ) -> None:
        super().__init__(device, precision)
        self.spec = parse_audio_spec(spec) if isinstance(spec, str) else spec

    @property
    def name(self) -> str:
        return self.spec.text

    def _base_key(self) -> str:
        return audio_model_key(self.spec)

    def _create(self) -> _TorchClap:
        device = resolve_torch_device(self.device_name)
        model, processor, _ = self._build_cached()
        model.to(device).eval()
        return _TorchClap(model, processor, device)

    def _build_cached(self) -> tuple[Any, Any, list[Path]]:
        if self.spec.local:
            _check_folder(self.spec)
            return self._build(local_only=True)
        return load_cached_first(
            lambda cache_only: self._build(local_only=cache_only), self._unavailable_message
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
            raise ModelUnavailableError(self._unavailable_message(error)) from error
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

    def _unavailable_message(self, error: BaseException) -> str:
        if self.spec.local:
            return f"cannot load audio model {self.spec.text}: {one_line(error)}"
        return (
            f"cannot load audio model {self.spec.text}: it is not in the cache and could not be "
            f"downloaded ({one_line(error)}). Connect to the internet once so it can be "
            "downloaded, copy the model folder to this machine and pass its path with "
            "--audio-model, or index without sound: --no-audio"
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

    def embed_features(self, inputs: Sequence[dict[str, Any]]) -> np.ndarray:
        return self._backend(text=False).embed_features(inputs)

    def embed_audio(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        backend = self._backend(text=False)
        return backend.embed_features([backend.features(window) for window in windows])


def _unit_rows(output: Any) -> np.ndarray:
    import torch

    # transformers 5 returns an output object, 4 a tensor.
    tensor = output.pooler_output if hasattr(output, "pooler_output") else output
    tensor = torch.nn.functional.normalize(tensor.float(), dim=-1)
    return tensor.cpu().numpy()
