"""Whole-process latency of `mediafind search QUERY --json`, answered by a
running `mediafind watch` (warm models, over its socket) and in the search's
own process, on the synthetic index of bench/search.py.

    python bench/warm_search.py --size 100000 --runs 15
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from index_speed import make_model
from search import WORDS, build_index

# `python -m mediafind` starts through `mediafind.entry`, as the installed
# script does once the package is reinstalled.
MEDIAFIND = [sys.executable, "-m", "mediafind"]


def timed(db: Path, query: str, env: dict[str, str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(
        [*MEDIAFIND, "search", query, "--json", "--limit", "20", "--db", str(db)],
        capture_output=True,
        env=env,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"search failed: {done.stderr.decode()}")
    return seconds, done.stdout


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--arch", default="ViT-B-32-256")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-warm-bench"))
    args = parser.parse_args()

    model = make_model(args.workdir / f"model-{args.arch}", args.arch)
    db = args.workdir / f"search-{args.size}.db"
    build_index(db, args.size, model)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFIND_")}
    env["MEDIAFIND_CACHE"] = str(args.workdir / "cache")
    runtime = Path(tempfile.mkdtemp(prefix="mfb", dir="/tmp"))
    served = dict(env, XDG_RUNTIME_DIR=str(runtime))
    alone = dict(env, XDG_RUNTIME_DIR=str(runtime / "none"))
    timed(db, "warm up: convert the model once", alone)
    folder = args.workdir / "watched"
    folder.mkdir(exist_ok=True)
    watcher = subprocess.Popen(
        [*MEDIAFIND, "watch", str(folder), "--db", str(db)],
        env=served,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(runtime.glob("mediafind/*.sock")):
            if time.monotonic() > deadline or watcher.poll() is not None:
                raise SystemExit("the watcher did not start")
            time.sleep(0.1)
        timed(db, "warm up the service", served)
        rows = []
        for label, chosen in (("through watch's socket", served), ("in-process", alone)):
            latencies = []
            for run in range(args.runs):
                query = f"{random.choice(WORDS)} {random.choice(WORDS)} {run}"
                seconds, _ = timed(db, query, chosen)
                latencies.append(seconds)
            rows.append((label, *summary(latencies)))
        query = "red bicycle"
        same = timed(db, query, served)[1] == timed(db, query, alone)[1]
    finally:
        watcher.terminate()
        watcher.wait(10)
    print(f"\ntext search, {args.size} segments, whole process, {args.runs} queries each")
    print("| path | median (s) | p95 (s) |")
    print("| --- | --- | --- |")
    for label, median, p95 in rows:
        print(f"| {label} | {median:.3f} | {p95:.3f} |")
    print(f"same bytes both ways: {same}")


if __name__ == "__main__":
    main()
