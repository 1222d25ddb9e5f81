"""Photos and video frames, and text queries, embedded with open_clip.

torch and open_clip are imported only when a model is first used, so that
commands which never embed anything start fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediafind.errors import MediafindError, ModelUnavailableError, UsageError
from mediafind.hashing import weights_fingerprint
from mediafind.models import fast
from mediafind.models.clip_fast import FastClip
from mediafind.models.common import (
    LazyModel,
    load_cached_first,
    one_line,
    resolve_torch_device,
)

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed --model value: `NAME:PRETRAINED`, `hf-hub:ORG/REPO` or `local-dir:PATH`."""

    text: str
    source: str  # "pretrained", "hf-hub" or "local-dir"
    name: str  # architecture name, hub repo id, or absolute folder path
    pretrained: str | None = None

    @property
    def open_clip_name(self) -> str:
        if self.source == "local-dir":
            return LOCAL_DIR + self.name
        if self.source == "hf-hub":
            return HF_HUB + self.name
        return self.name


def parse_spec(text: str) -> ModelSpec:
    text = text.strip()
    if text.startswith(LOCAL_DIR):
        raw = text[len(LOCAL_DIR) :]
        if not raw:
            raise UsageError("--model local-dir: needs a folder, e.g. local-dir:~/models/clip")
        folder = os.path.abspath(os.path.expanduser(raw))
        return ModelSpec(LOCAL_DIR + folder, "local-dir", folder)
    if text.startswith(HF_HUB):
        repo = text[len(HF_HUB) :]
        if repo.count("/") != 1:
            raise UsageError(f"--model {text}: expected hf-hub:ORG/REPO")
        return ModelSpec(text, "hf-hub", repo)
    name, _, pretrained = text.partition(":")
    if not name or not pretrained:
        raise UsageError(
            f"--model {text!r}: expected NAME:PRETRAINED (e.g. ViT-B-32:laion2b_s34b_b79k), "
            "hf-hub:ORG/REPO or local-dir:PATH; without pretrained weights a model is random"
        )
    return ModelSpec(text, "pretrained", name, pretrained)


# open_clip's own preference when a folder holds several weight files.
_PREFERRED_WEIGHTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
)


def _local_weights(folder: Path) -> Path | None:
    for name in _PREFERRED_WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    return candidates[0] if candidates else None


def _weights_of(folder: Path) -> list[Path]:
    weights = _local_weights(folder)
    return [weights] if weights is not None else []


def _check_local_dir(spec: ModelSpec) -> Path:
    folder = Path(spec.name)
    hint = "it needs open_clip_config.json and weights (open_clip_model.safetensors)"
    if not folder.is_dir():
        raise ModelUnavailableError(f"model folder {folder} does not exist; {hint}")
    if not (folder / "open_clip_config.json").is_file():
        raise ModelUnavailableError(f"model folder {folder} has no open_clip_config.json; {hint}")
    if _local_weights(folder) is None:
        raise ModelUnavailableError(f"model folder {folder} holds no weights file; {hint}")
    return folder


def _text_tower_uses_transformers(spec: ModelSpec) -> bool:
    """Whether the model's config names a Hugging Face text tower, read from its
    JSON without importing open_clip (hub models: assumed, to be safe)."""
    if spec.source == "hf-hub":
        return True
    if spec.source == "local-dir":
        path = Path(spec.name) / "open_clip_config.json"
    else:
        found = importlib.util.find_spec("open_clip")
        if found is None or not found.submodule_search_locations:
            return True
        path = Path(next(iter(found.submodule_search_locations)))
        path = path / "model_configs" / f"{spec.name}.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return True
    text_cfg = config.get("model_cfg", config).get("text_cfg", {})
    return bool(text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name"))


def _import_open_clip(spec: ModelSpec) -> Any:
    """open_clip, imported without transformers unless this model needs it.

    open_clip imports transformers whenever it is installed, for the few models
    whose text tower comes from it: a second or more of start-up, and memory,
    that searching photos should not pay.
    """
    if "open_clip" in sys.modules or "transformers" in sys.modules:
        import open_clip

        return open_clip
    if _text_tower_uses_transformers(spec):
        import open_clip

        return open_clip
    sys.modules["transformers"] = None  # type: ignore[assignment]
    try:
        import open_clip
    finally:
        del sys.modules["transformers"]
    return open_clip


def model_key(spec: ModelSpec) -> str:
    """What identifies the weights: vectors with different keys are never compared.

    A local folder is identified by its content, so moving it keeps the index
    valid and retraining it into the same folder does not.
    """
    if spec.source == "local-dir":
        folder = _check_local_dir(spec)
        weights = _local_weights(folder)
        assert weights is not None
        digest = hashlib.blake2b(digest_size=16)
        digest.update((folder / "open_clip_config.json").read_bytes())
        digest.update(weights_fingerprint(weights).encode())
        return f"open_clip:local-dir:{digest.hexdigest()}"
    if spec.source == "hf-hub":
        return f"open_clip:hf-hub:{spec.name}"
    return f"open_clip:{spec.name}:{spec.pretrained}"


class _TorchClip:
    """An open_clip model run by torch: any device, any model."""

    batch_size = 32

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str) -> None:
        self.model, self.transform, self.tokenizer, self.device = (
            model,
            preprocess,
            tokenizer,
            device,
        )
        if device != "cpu":
            self.batch_size = 128
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def dim(self) -> int:
        return int(self.embed_texts(["dimension probe"]).shape[1])

    def preprocess(self, image: Image) -> Any:
        return self.transform(image)

    def embed_preprocessed(self, tensors: Sequence[Any]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.stack(list(tensors)).to(self.device)
            features = self.model.encode_image(batch, normalize=True)
        return features.float().cpu().numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            features = self.model.encode_text(tokens, normalize=True)
        return features.float().cpu().numpy()


class ClipEmbedder(LazyModel[_TorchClip, FastClip]):
    """An open_clip model: image tower for photos and frames, text tower for queries.

    Loads its weights on first use, on torch or ONNX Runtime (see `LazyModel`).
    `embed_*` return L2-normalised float32 rows, so that cosine similarity is
    a dot product.
    """

    modality = "visual"

    def __init__(
        self, spec: str | ModelSpec, device: str = "auto", precision: str = "fp32"
    ) -> None:
        super().__init__(device, precision)
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec

    @property
    def name(self) -> str:
        return self.spec.text

    def _base_key(self) -> str:
        return model_key(self.spec)

    def _create(self) -> _TorchClip:
        open_clip = _import_open_clip(self.spec)
        device = resolve_torch_device(self.device_name)
        model, preprocess, tokenizer, _ = self._build_cached(open_clip, device)
        model.eval()
        return _TorchClip(model, preprocess, tokenizer, device)

    def _build_cached(self, open_clip: Any, device: str) -> tuple[Any, Any, Any, list[Path]]:
        if self.spec.source == "local-dir":
            return self._build(open_clip, device)
        return load_cached_first(
            lambda cache_only: self._build(open_clip, device), self._unavailable_message
        )

    def _build(self, open_clip: Any, device: str) -> tuple[Any, Any, Any, list[Path]]:
        spec = self.spec
        try:
            if spec.source == "local-dir":
                folder = _check_local_dir(spec)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.open_clip_name, device=device
                )
                weights = [folder / "open_clip_config.json", *_weights_of(folder)]
            elif spec.source == "hf-hub":
                # open_clip only logs a warning when hub weights cannot be fetched
                # and goes on with random ones; fetch them first so that is an error.
                from open_clip.pretrained import download_pretrained_from_hf

                weights = [Path(download_pretrained_from_hf(spec.name))]
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.open_clip_name, device=device
                )
            else:
                self._check_pretrained_tag(open_clip)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.name, pretrained=spec.pretrained, device=device
                )
                weights = self._pretrained_file(open_clip)
            tokenizer = open_clip.get_tokenizer(spec.open_clip_name)
        except MediafindError:
            raise
        except Exception as error:
            raise ModelUnavailableError(self._unavailable_message(error)) from error
        return model, preprocess, tokenizer, weights

    def _pretrained_file(self, open_clip: Any) -> list[Path]:
        """The cached weight file of a NAME:PRETRAINED model (already downloaded)."""
        from open_clip.pretrained import download_pretrained, get_pretrained_cfg

        path = download_pretrained(get_pretrained_cfg(self.spec.name, self.spec.pretrained or ""))
        return [Path(path)] if path else []

    def _check_pretrained_tag(self, open_clip: Any) -> None:
        spec = self.spec
        if spec.name not in open_clip.list_models():
            raise UsageError(
                f"--model {spec.text}: open_clip has no architecture {spec.name!r} "
                "(see open_clip.list_pretrained() for NAME:PRETRAINED pairs)"
            )
        tags = open_clip.list_pretrained_tags_by_model(spec.name)
        if spec.pretrained not in tags:
            known = ", ".join(tags) or "none"
            raise UsageError(
                f"--model {spec.text}: no pretrained weights {spec.pretrained!r} for "
                f"{spec.name}; known: {known}"
            )

    def _unavailable_message(self, error: BaseException) -> str:
        if self.spec.source == "local-dir":
            return f"cannot load model {self.spec.text}: {one_line(error)}"
        return (
            f"cannot load model {self.spec.text}: its weights are not in the cache and could "
            f"not be downloaded ({one_line(error)}). Connect to the internet once so they can "
            "be downloaded, or copy a model folder (open_clip_config.json and weights) to this "
            "machine and use --model local-dir:/path/to/folder"
        )

    def _convert(self, key: str) -> tuple[Path, dict[str, Any]]:
        try:
            open_clip = _import_open_clip(self.spec)
        except ImportError as error:
            raise fast.ConversionError(str(error)) from error
        model, preprocess, tokenizer, weights = self._build_cached(open_clip, "cpu")
        model.eval()
        from mediafind.models import clip_fast

        return fast.build(
            key,
            self.precision,
            weights,
            lambda folder: clip_fast.convert(model, preprocess, tokenizer, self.precision, folder),
        )

    def _open_converted(self, folder: Path, manifest: dict[str, Any]) -> FastClip:
        return FastClip(folder, manifest)

    @property
    def image_size(self) -> int:
        return self._backend(text=False).image_size

    def preprocess(self, image: Image) -> Any:
        """Model input for one decoded image; safe to call from worker threads."""
        return self._backend(text=False).preprocess(image)

    def embed_preprocessed(self, inputs: Sequence[Any]) -> np.ndarray:
        return self._backend(text=False).embed_preprocessed(inputs)

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        backend = self._backend(text=False)
        return backend.embed_preprocessed([backend.preprocess(image) for image in images])
