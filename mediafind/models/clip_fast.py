"""open_clip models on the CPU fast path (see `fast`): conversion and use.

The conversion needs the torch model; using the result needs only numpy,
Pillow and ONNX Runtime. Images are prepared the way open_clip's own
transform prepares them (resize the short side with Pillow, centre crop,
scale, normalise), and text is tokenized by `bpe.ClipBpe`; the conversion
checks both against open_clip's before anything is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediafind.models import fast
from mediafind.models.bpe import ClipBpe

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

# Texts and pictures the conversion compares torch and ONNX Runtime on.
_CHECK_TEXTS = (
    "kids blowing out candles on a birthday cake",
    "a",
    "Café crème brûlée, 東京の夜景 & 🎂",
    "THE SAME WORDS IN CAPITALS, with punctuation!?",
    " ".join(["long"] * 120),
)
_CHECK_SIZES = ((320, 240), (240, 320), (256, 256), (900, 300), (90, 70))


class FastClip(fast.Converted):
    """A converted open_clip model: image and text towers in ONNX Runtime."""

    media_tower = "image"

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        import numpy as np

        super().__init__(folder, manifest)
        image = manifest["image"]
        self.image_size = int(image["size"])
        self._interpolation = str(image["interpolation"])
        self._squash = image["resize_mode"] == "squash"
        mean = np.asarray(image["mean"], dtype=np.float64)
        std = np.asarray(image["std"], dtype=np.float64)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (mean / std).astype(np.float32)
        self._tokenizer: ClipBpe | None = None
        # Images per call: four per core, each core running its share alone
        # (batches of 4 to 8 per run were fastest on 2 cores).
        self.batch_size = 4 * fast.ParallelTower.workers_here()

    def preprocess(self, image: Image) -> np.ndarray:
        """One RGB image as the image tower's input; safe in worker threads."""
        import numpy as np
        from PIL import Image as PILImage

        size = self.image_size
        method = (
            PILImage.Resampling.BILINEAR
            if self._interpolation == "bilinear"
            else PILImage.Resampling.BICUBIC
        )
        width, height = image.size
        if self._squash:
            image = image.resize((size, size), method)
        else:
            # torchvision's Resize(int) then CenterCrop, to the pixel.
            if width <= height:
                new = (size, int(size * height / width))
            else:
                new = (int(size * width / height), size)
            if new != (width, height):
                image = image.resize(new, method)
            left = round((new[0] - size) / 2.0)
            top = round((new[1] - size) / 2.0)
            if (left, top) != (0, 0) or new != (size, size):
                image = image.crop((left, top, left + size, top + size))
        if image.mode != "RGB":
            image = image.convert("RGB")
        # (pixels / 255 - mean) / std, in two passes over the array.
        pixels = np.asarray(image, dtype=np.float32)
        pixels *= self._scale
        pixels -= self._offset
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def embed_batch(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        import numpy as np

        return self.tower("image")({"pixels": np.stack(list(inputs))})

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = ClipBpe.from_file(
                    self.folder / "merges.txt", int(self.manifest["text"]["context_length"])
                )
        tokens = self._tokenizer(texts)
        if self.manifest["text"].get("trim"):
            # Up to the last end-of-text token: zeros after it change nothing.
            ends = np.argmax(tokens == self._tokenizer.eot, axis=1)
            tokens = tokens[:, : int(np.max(ends)) + 1]
        return tokens

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return fast.run(self.text_session(), {"tokens": self.tokenize(texts)})


def _check_images() -> list[Image]:
    """Varied pictures: shapes, gradients and noise, wide, tall and tiny."""
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageDraw

    rng = np.random.default_rng(7)
    pictures = []
    for index, (width, height) in enumerate(_CHECK_SIZES):
        ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        base = np.broadcast_to(ramp, (height, width, 3)).copy()
        base += rng.normal(0, 40 * (index % 3), size=base.shape)
        picture = PILImage.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(picture)
        draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(200, 30, 40))
        pictures.append(picture)
    return pictures


def _image_settings(model: Any) -> dict[str, Any]:
    from open_clip import get_model_preprocess_cfg

    cfg = dict(get_model_preprocess_cfg(model))
    size = cfg.get("size")
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise fast.ConversionError(f"non-square image size {size} is not supported")
        size = size[0]
    if not isinstance(size, int):
        raise fast.ConversionError(f"image size {size!r} is not a number of pixels")
    mode = cfg.get("resize_mode") or "shortest"
    if mode not in ("shortest", "squash"):
        raise fast.ConversionError(f"resize mode {mode!r} is not supported")
    interpolation = cfg.get("interpolation") or "bicubic"
    return {
        "size": int(size),
        "mean": [float(v) for v in cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))],
        "std": [float(v) for v in cfg.get("std", (0.26862954, 0.26130258, 0.27577711))],
        "interpolation": "bilinear" if interpolation == "bilinear" else "bicubic",
        "resize_mode": mode,
    }


def _write_merges(tokenizer: Any, folder: Path) -> dict[str, Any]:
    from open_clip.tokenizer import SimpleTokenizer, _clean_lower

    if (
        type(tokenizer) is not SimpleTokenizer
        or tokenizer.clean_fn is not _clean_lower
        or tokenizer.reduction_fn is not None
        or len(tokenizer.all_special_ids) != 2
    ):
        raise fast.ConversionError(f"its tokenizer ({type(tokenizer).__name__}) is not CLIP's BPE")
    lines = [f"{first} {second}" for first, second in tokenizer.bpe_ranks]
    if any(len(line.split(" ")) != 2 for line in lines):
        raise fast.ConversionError("its merges hold symbols with spaces")
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"context_length": int(tokenizer.context_length)}


def convert(
    model: Any, preprocess: Any, tokenizer: Any, precision: str, folder: Path
) -> dict[str, Any]:
    """Write `model`'s towers to `folder` and check them against torch."""
    import numpy as np
    import torch

    image_settings = _image_settings(model)
    text_settings = _write_merges(tokenizer, folder)
    model = model.to("cpu").eval()

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.model.encode_image(pixels, normalize=True)

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.model.encode_text(tokens, normalize=True)

    class ShortTextTower(TextTower):
        """open_clip's CLIP text tower on tokens cut after the end-of-text
        token: its attention is causal and it reads the end token's state, so
        the padding after it changes nothing, and a query of a few words
        runs in a fifth of the time of 77 positions."""

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            from open_clip.transformer import text_global_pool

            m = self.model
            length = tokens.shape[1]
            x = m.token_embedding(tokens) + m.positional_embedding[:length]
            x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
            x = text_global_pool(m.ln_final(x), tokens, m.text_pool_type)
            x = (
                m.text_projection(x)
                if isinstance(m.text_projection, torch.nn.Linear)
                else (x @ m.text_projection)
            )
            return torch.nn.functional.normalize(x, dim=-1)

    # Only the plain CLIP text tower is known to read nothing past the end token.
    short = (
        type(model).__name__ == "CLIP"
        and getattr(model, "text_pool_type", None) == "argmax"
        and getattr(model, "attn_mask", None) is not None
    )
    text_settings["trim"] = short

    # References first: tracing for export may leave the torch model altered.
    pictures = _check_images()
    theirs = torch.stack([preprocess(picture) for picture in pictures]).numpy()
    with torch.no_grad():
        image_reference = model.encode_image(torch.from_numpy(theirs), normalize=True).numpy()
        text_reference = model.encode_text(tokenizer(list(_CHECK_TEXTS)), normalize=True).numpy()
    size = image_settings["size"]
    pixels = torch.zeros(2, 3, size, size)
    tokens = tokenizer(["a photo", "a dog"])[:, :8] if short else tokenizer(["a photo", "a dog"])
    image_path = fast.export_path(folder, "image", precision)
    text_path = fast.export_path(folder, "text", precision)
    fast.export(ImageTower(), (pixels,), image_path, ["pixels"], {"pixels": {0: "batch"}})
    fast.export(
        ShortTextTower() if short else TextTower(),
        (tokens,),
        text_path,
        ["tokens"],
        {"tokens": {0: "batch", 1: "length"} if short else {0: "batch"}},
        dynamo=short,
    )
    fast.finish([image_path, text_path], precision)
    manifest: dict[str, Any] = {"image": image_settings, "text": text_settings}
    converted = FastClip(folder, {**manifest, "dim": 0})

    ours = np.stack([converted.preprocess(picture) for picture in pictures])
    if theirs.shape != ours.shape or float(np.max(np.abs(theirs - ours))) > 1e-4:
        raise fast.ConversionError("its image preparation differs from open_clip's")
    theirs_tokens = tokenizer(list(_CHECK_TEXTS)).numpy()
    ours_tokens = converted.tokenize(_CHECK_TEXTS)
    if not np.array_equal(theirs_tokens[:, : ours_tokens.shape[1]], ours_tokens) or np.any(
        theirs_tokens[:, ours_tokens.shape[1] :]
    ):
        raise fast.ConversionError("its tokenizer differs from open_clip's")
    image_agreement = fast.agreement(image_reference, converted.embed_batch(list(ours)))
    text_agreement = fast.agreement(text_reference, converted.embed_texts(_CHECK_TEXTS))
    fast.check_agreement("image", image_agreement, precision)
    fast.check_agreement("text", text_agreement, precision)
    manifest["dim"] = int(text_reference.shape[1])
    manifest["agreement"] = {"image": image_agreement, "text": text_agreement}
    return manifest
