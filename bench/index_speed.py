"""Indexing speed of `mediafind index` on generated photos, whole process timed.

Generates N 1024x768 JPEGs (textured, so decoding costs what a photo costs),
builds an open_clip model of the chosen architecture with random weights as a
`local-dir:` folder (same compute as the real weights, no download), then runs
`python -m mediafind index` as a subprocess per setup and prints a table.
Setups: `torch` (MEDIAFIND_RUNTIME=torch), `fast` (the default: ONNX Runtime
on the CPU), `int8` (--precision int8), `cuda`. The model is converted for
ONNX Runtime before timing (a one-time step per model, timed separately).
It also compares each setup's stored vectors with the first setup's.

    python bench/index_speed.py --images 1000 --setups torch fast int8
    python bench/index_speed.py --images 1000 --setups cpu cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def make_photos(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    existing = len(list(folder.glob("*.jpg")))
    rng = np.random.default_rng(0)
    for number in range(existing, count):
        # Smooth gradients plus noise: compresses like a photo, not like a flat colour.
        base = rng.integers(0, 255, size=(3, 4, 3), dtype=np.uint8)
        small = Image.fromarray(base).resize((1024, 768), Image.Resampling.BICUBIC)
        pixels = np.asarray(small).astype(np.int16)
        pixels += rng.integers(-12, 12, size=pixels.shape, dtype=np.int16)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"{number:05d}.jpg", quality=88)


def make_model(folder: Path, arch: str) -> str:
    if not (folder / "open_clip_config.json").exists():
        import open_clip
        import torch
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        model = open_clip.create_model(arch)
        state = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(folder / "open_clip_model.safetensors"))
        config = {"model_cfg": open_clip.get_model_config(arch), "preprocess_cfg": {}}
        (folder / "open_clip_config.json").write_text(json.dumps(config))
    return f"local-dir:{folder}"


SETUPS = {
    "torch": (["--device", "cpu"], {"MEDIAFIND_RUNTIME": "torch"}),
    "fast": (["--device", "cpu"], {}),
    "int8": (["--device", "cpu", "--precision", "int8"], {}),
    "cpu": (["--device", "cpu"], {}),
    "cuda": (["--device", "cuda"], {}),
}


INDEX = [sys.executable, "-m", "mediafind", "index"]


def run_index(photos: Path, model: str, setup: str, db: Path) -> float:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    flags, extra_env = SETUPS[setup]
    started = time.perf_counter()
    subprocess.run(
        # Pictures only: the words pass (text) has its own bench, ocr_speed.py.
        [*INDEX, str(photos), "--db", str(db), "--model", model, "--no-audio", "--no-text", *flags],
        check=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **extra_env},
    )
    return time.perf_counter() - started


def convert_first(model: str, precision: str) -> float:
    """Seconds to convert the model for ONNX Runtime (0 when already done)."""
    from mediafind.models.clip import ClipEmbedder

    started = time.perf_counter()
    embedder = ClipEmbedder(model, device="cpu", precision=precision)
    assert embedder.runtime == "onnxruntime", embedder.notes
    return time.perf_counter() - started if embedder.notes else 0.0


def stored_vectors(db: Path) -> dict[str, object]:
    import numpy as np

    from mediafind.db import Store

    with Store.open(db, create=False) as store:
        space = store.active_space("visual")
        assert space is not None
        rows = store.conn.execute(
            f"SELECT f.path, v.embedding FROM {space.table} v "
            "JOIN segments s ON s.id = v.segment_id JOIN files f ON f.id = s.file_id"
        )
        return {path: np.frombuffer(blob, dtype=np.float32) for path, blob in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--arch", default="ViT-B-32-256")
    parser.add_argument("--setups", nargs="+", default=["torch", "fast", "int8"])
    parser.add_argument("--runs", type=int, default=1, help="median of this many runs")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    args = parser.parse_args()

    photos = args.workdir / f"photos-{args.images}"
    make_photos(photos, args.images)
    model = make_model(args.workdir / f"model-{args.arch}", args.arch)

    for setup in args.setups:
        if setup in ("fast", "int8", "cpu"):
            seconds = convert_first(model, "int8" if setup == "int8" else "fp32")
            if seconds:
                print(f"converted for {setup} once, in {seconds:.1f} s")

    rows = []
    for setup in args.setups:
        db = args.workdir / f"index-{setup}.db"
        times = sorted(run_index(photos, model, setup, db) for _ in range(args.runs))
        rows.append((setup, statistics.median(times)))

    print(
        f"\n{args.images} photos of 1024x768, {args.arch} (random weights), whole process, "
        f"median of {args.runs}"
    )
    print("| setup | wall time (s) | images/s |")
    print("| --- | ---: | ---: |")
    for setup, seconds in rows:
        print(f"| {setup} | {seconds:.1f} | {args.images / seconds:.1f} |")

    if len(args.setups) > 1:
        import numpy as np

        first = stored_vectors(args.workdir / f"index-{args.setups[0]}.db")
        for setup in args.setups[1:]:
            other = stored_vectors(args.workdir / f"index-{setup}.db")
            cosines = [float(np.dot(first[p], other[p])) for p in first]
            print(
                f"{args.setups[0]} vs {setup}: stored vectors agree to cosine "
                f"{min(cosines):.6f} (worst) / {float(np.mean(cosines)):.6f} (mean) "
                f"over {len(cosines)} photos"
            )


if __name__ == "__main__":
    main()
