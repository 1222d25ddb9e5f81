"""Latency and recall of `mediafind search`, whole process, on synthetic indexes.

Builds indexes of N segments with the real schema (random unit vectors, one
photo per segment, written straight into the tables in large transactions,
then the space's statistics as `index` computes them), tagged with a model
of the default architecture with random weights (`local-dir:`, the same
compute as the real weights). Then runs `mediafind search QUERY --json` as a
subprocess with a fresh query each run, so no cache helps, and prints the
median and 95th percentile wall time, and recall@20 against an exact scan
of the same vectors in numpy with the same query vector.

`--breakdown` also times each phase of one search inside a fresh process.

    python bench/search.py --sizes 10000 100000 1000000 --runs 7
    python bench/search.py --sizes 100000 --breakdown
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from index_speed import make_model, stored_vectors

WORDS = [
    "dog",
    "beach",
    "birthday",
    "candles",
    "snow",
    "mountain",
    "city",
    "night",
    "car",
    "red",
    "blue",
    "kitchen",
    "garden",
    "cat",
    "river",
    "bridge",
    "sunset",
    "party",
    "baby",
    "train",
    "forest",
    "market",
    "rain",
    "crowd",
]


def build_index(db: Path, size: int, model: str) -> None:
    """An index of `size` one-segment photos with random unit vectors."""
    import numpy as np

    from mediafind.db import Store
    from mediafind.models.clip import ClipEmbedder

    if db.exists():
        return
    partial = db.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    embedder = ClipEmbedder(model, device="cpu")
    rng = np.random.default_rng(size)
    now = time.time()
    with Store.open(partial, create=True) as store:
        space = store.create_space("visual", model, embedder.key, embedder.dim, active=True)
        step = 20_000
        for start in range(0, size, step):
            count = min(step, size - start)
            vectors = rng.standard_normal((count, embedder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = range(start + 1, start + count + 1)
            with store.transaction():
                store.conn.executemany(
                    "INSERT INTO files (id, path, kind, size, mtime_ns, content_hash, status, "
                    "width, height, indexed_at, captured_at) "
                    "VALUES (?, ?, 'image', 1000, 0, ?, 'ok', 1024, 768, ?, ?)",
                    [(i, f"/photos/{i:07d}.jpg", f"h{i}", now, now - i * 60) for i in ids],
                )
                store.conn.executemany(
                    "INSERT INTO segments (id, file_id, modality) VALUES (?, ?, 'visual')",
                    [(i, i) for i in ids],
                )
                store.conn.executemany(
                    "INSERT INTO file_spaces (file_id, space_id) VALUES (?, ?)",
                    [(i, space.id) for i in ids],
                )
                store.conn.executemany(
                    f"INSERT INTO {space.table} (segment_id, shard, embedding, kind) "
                    "VALUES (?, ?, ?, 'image')",
                    [(i, i % space.shards, vectors[i - start - 1].tobytes()) for i in ids],
                )
        store.update_stats(space)
    store.conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(db)


def all_vectors(db: Path) -> tuple[list[str], object]:
    import numpy as np

    by_path = stored_vectors(db)
    return list(by_path), np.stack(list(by_path.values()))


def mediafind_command() -> list[str]:
    script = Path(sys.executable).with_name("mediafind")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mediafind"]


def timed_search(db: Path, query: str, env: dict[str, str]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    result = subprocess.run(
        [*mediafind_command(), "search", query, "--json", "--limit", "20", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"search failed: {result.stderr}")
    return seconds, [item["path"] for item in json.loads(result.stdout)]


BREAKDOWN = r"""
import time, sys, io
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import numpy, onnxruntime, typer, rich
from mediafind.cli import app
from mediafind import query as search_module
from mediafind.db import Store
from mediafind.output import print_results_json
mark("imports")
store = Store.open(__import__("pathlib").Path(sys.argv[1]), create=False)
from mediafind.modalities import models_for_index
models = models_for_index(store, searching=True)
mark("open index")
embedder = models["visual"]
backend = embedder._backend(text=True)
if hasattr(backend, "tokenize"):
    backend.text_session(); backend.tokenize(["warm up the tokenizer files"])
mark("model load")
vector = embedder.embed_texts([sys.argv[2]])
mark("text encoding")
embedder.embed_texts = lambda texts: vector
results = search_module.search(store, sys.argv[2], models, limit=20)
mark("vector search")
print_results_json(results, io.StringIO())
mark("output")
for (_, before), (name, after) in zip(marks, marks[1:]):
    print(f"{name}\t{after - before:.3f}")
sys.stdout.flush()
__import__("os")._exit(0)  # as the command does once its results are out
"""


def breakdown(db: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds per phase of one search, each run in a fresh process."""
    phases: dict[str, list[float]] = {}
    for run in range(runs):
        query = f"{random.choice(WORDS)} {random.choice(WORDS)} {run}"
        started = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(db), query],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        total = time.perf_counter() - started
        accounted = 0.0
        for line in output.splitlines():
            name, seconds = line.split("\t")
            phases.setdefault(name, []).append(float(seconds))
            accounted += float(seconds)
        phases.setdefault("interpreter start and exit", []).append(total - accounted)
    return {name: statistics.median(values) for name, values in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--arch", default="ViT-B-32-256")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()

    import numpy as np

    from mediafind.models.clip import ClipEmbedder

    model = make_model(args.workdir / f"model-{args.arch}", args.arch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFIND_")}
    env.setdefault("MEDIAFIND_CACHE", os.environ.get("MEDIAFIND_CACHE", ""))
    if not env["MEDIAFIND_CACHE"]:
        del env["MEDIAFIND_CACHE"]
    embedder = ClipEmbedder(model, device="cpu")
    rows = []
    for size in args.sizes:
        db = args.workdir / f"search-{size}.db"
        started = time.perf_counter()
        build_index(db, size, model)
        print(f"index of {size} segments ready ({time.perf_counter() - started:.0f} s)")
        timed_search(db, "warm up: convert the model once", env)
        paths, matrix = all_vectors(db)
        latencies, recalls = [], []
        for run in range(args.runs):
            query = f"{random.choice(WORDS)} {random.choice(WORDS)} {random.choice(WORDS)} {run}"
            seconds, found = timed_search(db, query, env)
            vector = embedder.embed_texts([query])[0]
            exact = np.argsort(-(matrix @ vector))[:20]  # type: ignore[operator]
            truth = {paths[i] for i in exact}
            latencies.append(seconds)
            recalls.append(len(truth & set(found[:20])) / 20)
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        rows.append((size, statistics.median(latencies), p95, min(recalls), db.stat().st_size))
        if args.breakdown:
            phases = breakdown(db, env, max(3, args.runs // 2))
            print(f"\nwhere the time goes, {size} segments (median of fresh processes):")
            print("| phase | seconds |")
            print("| --- | ---: |")
            for name, seconds in phases.items():
                print(f"| {name} | {seconds:.3f} |")
        del matrix

    print(f"\n`mediafind search QUERY --json`, whole process, {args.runs} fresh queries each")
    print("| segments | index size | p50 (s) | p95 (s) | recall@20 (worst) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size, p50, p95, recall, nbytes in rows:
        print(f"| {size:,} | {nbytes / 1e6:.0f} MB | {p50:.2f} | {p95:.2f} | {recall:.2f} |")


if __name__ == "__main__":
    main()
