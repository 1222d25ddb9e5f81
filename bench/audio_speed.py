"""Sound indexing speed: continuous and mostly silent recordings, whole file.

Generates (once, into --workdir) a 10-minute continuous recording (music-like
tones over noise) and a 10-minute mostly silent one (a few seconds of sound a
minute), builds a CLAP model of the default's architecture with random
weights (laion/larger_clap_general: HTSAT-base audio tower, RoBERTa text
tower; same compute as the real weights, no download), and times indexing
each file through the library with the models loaded beforehand.

    python bench/audio_speed.py
    python bench/audio_speed.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from index_speed import make_model

MINUTES = 10
RATE = 44_100


def make_recordings(folder: Path) -> dict[str, Path]:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from media_factory import write_audio

    seconds = MINUTES * 60
    t = np.arange(seconds * RATE) / RATE
    rng = np.random.default_rng(0)
    continuous = folder / "continuous.flac"
    if not continuous.exists():
        notes = 220 * 2 ** (np.floor(t / 0.5) % 12 / 12)
        music = 0.3 * np.sin(2 * np.pi * notes * t) + 0.05 * rng.standard_normal(len(t))
        write_audio(continuous, music.astype(np.float32), rate=RATE, codec="flac")
    quiet = folder / "mostly-silent.flac"
    if not quiet.exists():
        sparse = np.zeros(len(t), dtype=np.float32)
        for minute in range(MINUTES):
            start = (minute * 60 + 30) * RATE
            sparse[start : start + 3 * RATE] = 0.4 * np.sin(2 * np.pi * 523 * t[: 3 * RATE])
        write_audio(quiet, sparse, rate=RATE, codec="flac")
    return {"continuous": continuous, "mostly silent": quiet}


def make_clap(folder: Path) -> Path:
    if not (folder / "config.json").exists():
        import torch
        from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

        sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
        from tiny_models import build_tiny_clap

        # The tokenizer and processor of the tiny test model; the model itself
        # with the default's architecture (its config.json on the hub).
        build_tiny_clap(folder)
        torch.manual_seed(0)
        config = ClapConfig(
            audio_config={
                "depths": [2, 2, 12, 2],
                "hidden_size": 1024,
                "patch_embeds_hidden_size": 128,
            },
            text_config={"vocab_size": 320},
        )
        ClapModel(config).save_pretrained(str(folder))
        processor = ClapProcessor.from_pretrained(str(folder))
        ClapProcessor(
            feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"),
            tokenizer=processor.tokenizer,
        ).save_pretrained(str(folder))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    args = parser.parse_args()

    import numpy as np

    from mediafind.db import Store
    from mediafind.index import index_paths
    from mediafind.models.clap import ClapEmbedder
    from mediafind.models.clip import ClipEmbedder

    folder = args.workdir / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    recordings = make_recordings(folder)
    clap = ClapEmbedder(str(make_clap(args.workdir / "clap-larger-general")), args.device)
    clip = ClipEmbedder(
        make_model(args.workdir / "model-ViT-B-32-256", "ViT-B-32-256"), args.device
    )
    # Models load (and, the first time, convert for ONNX Runtime) outside the timing.
    clap.embed_texts(["warm up"])
    clap.embed_audio([np.zeros(clap.rate * 10, dtype=np.float32)])
    clip.embed_texts(["warm up"])

    print(
        f"{MINUTES}-minute recordings, CLAP of larger_clap_general's architecture "
        f"(random weights) on {args.device} ({clap.runtime}), median of {args.runs} runs"
    )
    print("| recording | windows embedded | seconds | real-time factor |")
    print("| --- | ---: | ---: | ---: |")
    for name, path in recordings.items():
        times = []
        windows = 0
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as work:
                single = Path(work) / "one"
                single.mkdir()
                (single / path.name).symlink_to(path)
                with Store.open(Path(work) / "bench.db", create=True) as store:
                    started = time.perf_counter()
                    index_paths(store, [single], {"visual": clip, "audio": clap})
                    times.append(time.perf_counter() - started)
                    windows = store.segment_total()
        seconds = statistics.median(times)
        print(f"| {name} | {windows} | {seconds:.2f} | {MINUTES * 60 / seconds:.0f}x |")


if __name__ == "__main__":
    main()
