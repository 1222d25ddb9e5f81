"""Indexing speed of `mediafind index` on generated photos, whole process timed.

Generates N 1024x768 JPEGs (textured, so decoding costs what a photo costs),
builds an open_clip model of the chosen architecture with random weights as a
`local-dir:` folder (same compute as the real weights, no download), then runs
`python -m mediafind index` as a subprocess per device and prints a table.
With two devices it also compares the stored vectors of the two runs.

    python bench/index_speed.py --images 300 --devices cpu
    python bench/index_speed.py --images 1000 --devices cpu cuda
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_index(photos: Path, model: str, device: str, db: Path) -> float:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mediafind",
            "index",
            str(photos),
            "--db",
            str(db),
            "--model",
            model,
            "--device",
            device,
        ],
        check=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return time.perf_counter() - started


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
    parser.add_argument("--devices", nargs="+", default=["cpu"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    args = parser.parse_args()

    photos = args.workdir / f"photos-{args.images}"
    make_photos(photos, args.images)
    model = make_model(args.workdir / f"model-{args.arch}", args.arch)

    rows = []
    for device in args.devices:
        db = args.workdir / f"index-{device}.db"
        seconds = run_index(photos, model, device, db)
        rows.append((device, seconds))

    print(f"\n{args.images} photos of 1024x768, {args.arch} (random weights), whole process")
    print("| device | wall time (s) | images/s |")
    print("| --- | ---: | ---: |")
    for device, seconds in rows:
        print(f"| {device} | {seconds:.1f} | {args.images / seconds:.1f} |")

    if len(args.devices) > 1:
        import numpy as np

        first = stored_vectors(args.workdir / f"index-{args.devices[0]}.db")
        for device in args.devices[1:]:
            other = stored_vectors(args.workdir / f"index-{device}.db")
            cosines = [float(np.dot(first[p], other[p])) for p in first]
            print(
                f"\n{args.devices[0]} vs {device}: min cosine of stored vectors "
                f"{min(cosines):.6f} over {len(cosines)} photos"
            )


if __name__ == "__main__":
    main()
