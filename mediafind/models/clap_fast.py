"""CLAP models on the CPU fast path (see `fast`): conversion and use.

Text queries need only ONNX Runtime and the `tokenizers` library (the
model's own tokenizer, saved with the conversion), never transformers.
Sound windows still become mel spectrograms through transformers' feature
extractor, saved alongside, so indexing sound imports transformers but not
torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediafind.models import fast

if TYPE_CHECKING:
    import numpy as np

_CHECK_TEXTS = (
    "a dog barking in the distance",
    "rain",
    "Applause and cheering, then a violin: 東京 🎻",
    " ".join(["long"] * 600),
)


class FastClap(fast.Converted):
    """A converted CLAP model: audio and text towers in ONNX Runtime."""

    media_tower = "audio"

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        super().__init__(folder, manifest)
        self.rate = int(manifest["audio"]["rate"])
        self.window_seconds = float(manifest["audio"]["window_seconds"])
        # Windows per call: two per core, each core running its share alone.
        self.batch_size = 2 * fast.ParallelTower.workers_here()
        self._tokenizer: Any = None
        self._extractor: Any = None

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        import numpy as np

        with self._lock:
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                self._tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        encoded = self._tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64),
        }

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return fast.run(self.text_session(), dict(self.tokenize(texts)))

    def open_media(self) -> None:
        super().open_media()
        # Importing the extractor (transformers, which imports torch) took
        # seconds at the first recording, with its progress line frozen.
        self._feature_extractor()

    def _feature_extractor(self) -> Any:
        with self._lock:
            if self._extractor is None:
                from transformers import ClapFeatureExtractor

                self._extractor = ClapFeatureExtractor.from_pretrained(str(self.folder))
            return self._extractor

    def features(self, samples: np.ndarray) -> dict[str, Any]:
        """Model input for one window (mel spectrogram); safe in worker threads."""
        extractor = self._feature_extractor()
        return dict(extractor(samples, sampling_rate=self.rate, return_tensors="np"))

    def embed_batch(self, inputs: Sequence[dict[str, Any]]) -> np.ndarray:
        import numpy as np

        batch = {key: np.concatenate([item[key] for item in inputs]) for key in inputs[0]}
        return self.tower("audio")(batch)


def _check_windows(rate: int, seconds: float) -> list[np.ndarray]:
    """Varied sound: a tone, a chirp, noise, a short and a quiet window."""
    import numpy as np

    length = int(rate * seconds)
    t = np.arange(length, dtype=np.float32) / rate
    rng = np.random.default_rng(3)
    return [
        (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        (0.4 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32),
        rng.normal(0, 0.2, length).astype(np.float32),
        (0.3 * np.sin(2 * np.pi * 880 * t[: length // 3])).astype(np.float32),
        rng.normal(0, 0.01, length).astype(np.float32),
    ]


def _save_tokenizer(tokenizer: Any, folder: Path) -> None:
    """The model's fast tokenizer, set to pad and truncate as transformers does."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise fast.ConversionError(f"its tokenizer ({type(tokenizer).__name__}) has no fast form")
    state = json.loads(backend.to_str())
    limit = int(tokenizer.model_max_length)
    if limit > 100_000:  # transformers' "no limit" sentinel
        raise fast.ConversionError("its tokenizer states no maximum length")
    state["truncation"] = {
        "direction": "Right",
        "max_length": limit,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    state["padding"] = {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": int(tokenizer.pad_token_id),
        "pad_type_id": 0,
        "pad_token": str(tokenizer.pad_token),
    }
    (folder / "tokenizer.json").write_text(json.dumps(state), encoding="utf-8")


def convert(model: Any, processor: Any, precision: str, folder: Path) -> dict[str, Any]:
    """Write the CLAP model's towers to `folder` and check them against torch."""
    import numpy as np
    import torch

    extractor, tokenizer = processor.feature_extractor, processor.tokenizer
    rate = int(extractor.sampling_rate)
    seconds = float(extractor.nb_max_samples) / rate
    _save_tokenizer(tokenizer, folder)
    extractor.save_pretrained(str(folder))
    model = model.to("cpu").eval()

    def unit(output: Any) -> torch.Tensor:
        # transformers 5 returns an output object, 4 a tensor.
        tensor = output.pooler_output if hasattr(output, "pooler_output") else output
        return torch.nn.functional.normalize(tensor, dim=-1)

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return unit(self.model.get_text_features(input_ids, attention_mask=attention_mask))

    # `is_longer` matters only to models that fuse a long recording's views;
    # handing it to others changed the traced graph's results.
    fused = bool(getattr(model.config.audio_config, "enable_fusion", False))

    class AudioTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_features: torch.Tensor, *is_longer: torch.Tensor) -> torch.Tensor:
            extra = {"is_longer": is_longer[0]} if is_longer else {}
            return unit(self.model.get_audio_features(input_features=input_features, **extra))

    windows = _check_windows(rate, seconds)
    window_inputs = [
        extractor(window, sampling_rate=rate, return_tensors="pt") for window in windows
    ]
    audio_example = {k: torch.cat([w[k] for w in window_inputs[:2]]) for k in window_inputs[0]}
    text_example = tokenizer(["a dog", "rain on a roof"], padding=True, return_tensors="pt")
    audio_names = ["input_features", "is_longer"] if fused else ["input_features"]
    # References first: tracing for export leaves the torch model altered.
    with torch.no_grad():
        tokens = tokenizer(list(_CHECK_TEXTS), padding=True, truncation=True, return_tensors="pt")
        text_reference = TextTower()(tokens["input_ids"], tokens["attention_mask"]).numpy()
        audio_batch = {k: torch.cat([w[k] for w in window_inputs]) for k in window_inputs[0]}
        audio_reference = AudioTower()(*(audio_batch[name] for name in audio_names)).numpy()
    text_path = fast.export_path(folder, "text", precision)
    audio_path = fast.export_path(folder, "audio", precision)
    fast.export(
        TextTower(),
        (text_example["input_ids"], text_example["attention_mask"]),
        text_path,
        ["input_ids", "attention_mask"],
        {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}},
    )
    fast.export(
        AudioTower(),
        tuple(audio_example[name] for name in audio_names),
        audio_path,
        audio_names,
        {name: {0: "batch"} for name in audio_names},
    )
    fast.finish([text_path, audio_path], precision)
    manifest: dict[str, Any] = {"audio": {"rate": rate, "window_seconds": seconds}}
    converted = FastClap(folder, {**manifest, "dim": 0})

    reference_tokens = tokenizer(list(_CHECK_TEXTS), padding=True, truncation=True)
    ours = converted.tokenize(_CHECK_TEXTS)
    if not (
        np.array_equal(np.asarray(reference_tokens["input_ids"]), ours["input_ids"])
        and np.array_equal(np.asarray(reference_tokens["attention_mask"]), ours["attention_mask"])
    ):
        raise fast.ConversionError("its saved tokenizer differs from transformers'")
    ours_audio = converted.embed_batch([converted.features(window) for window in windows])
    manifest["agreement"] = {
        "audio": fast.agreement(audio_reference, ours_audio),
        "text": fast.agreement(text_reference, converted.embed_texts(_CHECK_TEXTS)),
    }
    for tower, value in manifest["agreement"].items():
        fast.check_agreement(tower, value, precision)
    manifest["dim"] = int(text_reference.shape[1])
    return manifest
