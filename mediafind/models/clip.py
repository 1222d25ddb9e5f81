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

from mediafind.config import Choice
from mediafind.errors import MediafindError, ModelUnavailableError, UsageError, one_line
from mediafind.hashing import weights_fingerprint
from mediafind.models import fast
from mediafind.models.clip_fast import FastClip
from mediafind.models.common import (
    LazyModel,
    hub_unreachable_reason,
    load_cached_first,
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
    """Raises ValueError saying what is wrong with the spec."""
    text = text.strip()
    if text.startswith(LOCAL_DIR):
        raw = text[len(LOCAL_DIR) :]
        if not raw:
            raise ValueError("local-dir: needs a folder, e.g. local-dir:~/models/clip")
        folder = os.path.abspath(os.path.expanduser(raw))
        return ModelSpec(LOCAL_DIR + folder, "local-dir", folder)
    if text.startswith(HF_HUB):
        repo = text[len(HF_HUB) :]
        if repo.count("/") != 1:
            raise ValueError("expected hf-hub:ORG/REPO")
        return ModelSpec(text, "hf-hub", repo)
    # A folder given as the other model options take one: anything spelled
    # like a path (open_clip's NAME:PRETRAINED never holds a slash), or a
    # folder that exists. It is the same model as local-dir: of that folder.
    folder = os.path.abspath(os.path.expanduser(text))
    path_like = text.startswith(("/", "~", ".")) or "/" in text or os.sep in text
    if text and (path_like or os.path.isdir(folder)):
        return ModelSpec(LOCAL_DIR + folder, "local-dir", folder)
    name, _, pretrained = text.partition(":")
    if not name or not pretrained:
        raise ValueError(
            "expected NAME:PRETRAINED (e.g. ViT-B-32:laion2b_s34b_b79k), hf-hub:ORG/REPO or "
            "a model folder (local-dir:PATH, or its path); without pretrained weights a "
            "model is random"
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


_FOLDER_HINT = "it needs open_clip_config.json and weights (open_clip_model.safetensors)"


def local_dir_problem(spec: ModelSpec) -> str | None:
    """What is missing from a `local-dir:` folder, or None."""
    folder = Path(spec.name)
    if not folder.is_dir():
        return f"the folder {folder} does not exist; {_FOLDER_HINT}"
    if not (folder / "open_clip_config.json").is_file():
        return f"the folder {folder} has no open_clip_config.json; {_FOLDER_HINT}"
    if _local_weights(folder) is None:
        return f"the folder {folder} holds no weights file; {_FOLDER_HINT}"
    return None


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
    valid and retraining it into the same folder does not. Raises
    ModelUnavailableError when the folder lacks what it needs.
    """
    if spec.source == "local-dir":
        problem = local_dir_problem(spec)
        folder = Path(spec.name)
        weights = _local_weights(folder) if problem is None else None
        if problem is not None or weights is None:
            raise ModelUnavailableError(problem or f"the folder {folder} holds no weights file")
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

    def embed_batch(self, tensors: Sequence[Any]) -> np.ndarray:
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

    what = "picture model"
    argument = "model"
    missing_hint = (
        "copy a model folder (open_clip_config.json and weights) to this machine and use "
        "{model} local-dir:FOLDER (README: Offline use)"
    )
    hint_arguments = ("model",)

    def __init__(self, spec: str | Choice, device: str = "auto", precision: str = "fp32") -> None:
        super().__init__(spec, device, precision)
        try:
            self.spec = parse_spec(self.choice.value)
        except ValueError as error:
            raise self.error(str(error), UsageError) from None

    def _base_key(self) -> str:
        try:
            return model_key(self.spec)
        except ModelUnavailableError as error:
            raise self._folder_error(str(error)) from None

    def _folder_error(self, problem: str) -> MediafindError:
        if self.choice.source == "index" and not Path(self.spec.name).is_dir():
            return ModelUnavailableError(
                f"the index's {self.what} folder {self.spec.name} no longer exists; if it "
                "moved, point at its new place with {model} local-dir:NEW-FOLDER (the index "
                "checks that it holds the same weights)",
                arguments=("model",),
            )
        return self.error(problem)

    def problem(self) -> MediafindError | None:
        if self.spec.source == "local-dir":
            found = local_dir_problem(self.spec)
            return None if found is None else self._folder_error(found)
        if fast.load_manifest(self._base_key(), self.precision) is not None:
            return None  # converted for this CPU from weights that are still there
        if self._cached():
            return None
        unreachable = hub_unreachable_reason()
        if unreachable is None:
            return None  # it will be downloaded
        return self.unavailable(f"it is not in the cache and cannot be downloaded ({unreachable})")

    def _cached(self) -> bool:
        """Whether the weights are in the Hugging Face cache (asks open_clip where)."""
        from huggingface_hub import try_to_load_from_cache

        if self.spec.source == "hf-hub":
            repo = self.spec.name
            names = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
        else:
            try:
                from open_clip.pretrained import get_pretrained_cfg
            except ImportError:
                return False
            cfg = get_pretrained_cfg(self.spec.name, self.spec.pretrained or "")
            repo = str(cfg.get("hf_hub", "")).rstrip("/")
            names = tuple(name for name in (cfg.get("hf_weights_path"),) if name) or (
                "open_clip_model.safetensors",
                "open_clip_pytorch_model.bin",
            )
            if not repo:
                return False
        return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)

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
            lambda cache_only: self._build(open_clip, device), self._unavailable
        )

    def _build(self, open_clip: Any, device: str) -> tuple[Any, Any, Any, list[Path]]:
        spec = self.spec
        try:
            if spec.source == "local-dir":
                folder = Path(spec.name)
                problem = local_dir_problem(spec)
                if problem is not None:
                    raise self._folder_error(problem)
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
            raise self._unavailable(error) from error
        return model, preprocess, tokenizer, weights

    def _pretrained_file(self, open_clip: Any) -> list[Path]:
        """The cached weight file of a NAME:PRETRAINED model (already downloaded)."""
        from open_clip.pretrained import download_pretrained, get_pretrained_cfg

        path = download_pretrained(get_pretrained_cfg(self.spec.name, self.spec.pretrained or ""))
        return [Path(path)] if path else []

    def _check_pretrained_tag(self, open_clip: Any) -> None:
        spec = self.spec
        if spec.name not in open_clip.list_models():
            raise self.error(
                f"open_clip has no architecture {spec.name!r} (see "
                "open_clip.list_pretrained() for NAME:PRETRAINED pairs)",
                UsageError,
            )
        tags = open_clip.list_pretrained_tags_by_model(spec.name)
        if spec.pretrained not in tags:
            known = ", ".join(tags) or "none"
            raise self.error(
                f"no pretrained weights {spec.pretrained!r} for {spec.name}; known: {known}",
                UsageError,
            )

    def _unavailable(self, error: BaseException) -> MediafindError:
        if self.spec.source == "local-dir":
            return self.error(f"cannot load it: {one_line(error)}")
        return self.unavailable(
            f"its weights are not in the cache and could not be downloaded ({one_line(error)})"
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

    def embed_batch(self, inputs: Sequence[Any]) -> np.ndarray:
        """Embed images prepared by `preprocess`."""
        return self._backend(text=False, work=True).embed_batch(inputs)

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        backend = self._backend(text=False, work=True)
        return backend.embed_batch([backend.preprocess(image) for image in images])
