"""Time and peak memory of `mediafind duplicates` on synthetic indexes of photos.

Builds indexes of N one-segment photos with 512-dimensional unit vectors,
written through the Store API as `index` writes them, in two cases:

- `ordinary`: random vectors (unrelated photos agree at cosine 0.3 at most),
  and one photo in a hundred a near copy of the one before it (cosine
  0.994-0.996), so N / 100 groups of two;
- `similar`: every photo a tiny perturbation of one vector (every pair agrees
  at 0.986-0.993), so one group of N: the case where every pair matches.

Then runs `python -m mediafind duplicates --json --db INDEX` as a subprocess
per case and reports its wall time and peak resident memory (the child's
`ru_maxrss`), median of `--runs`, and checks the groups it printed. A run
longer than `--timeout` is stopped and reported as such.

    python bench/duplicates.py --sizes 10000 19000 50000 99000 --runs 3

The indexes are kept in `--workdir` and reused. To measure another version
of the code on the same indexes, put its package first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIM = 512
CASES = ("ordinary", "similar")
# One photo in this many is a near copy of the one before it (`ordinary`).
COPY_EVERY = 100


def make_vectors(size: int, case: str) -> Any:
    """`size` unit vectors for `case`, the same on every run."""
    import numpy as np

    rng = np.random.default_rng(size)
    vectors = rng.standard_normal((size, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Noise of length 0.1 on a unit vector: a copy agrees with it at about
    # 1 / sqrt(1.01), two copies with each other at about 1 / 1.01.
    noise = rng.standard_normal((size, DIM)).astype(np.float32) * np.float32(0.1 / np.sqrt(DIM))
    if case == "similar":
        vectors = vectors[0] + noise
    else:
        copies = np.arange(COPY_EVERY - 1, size, COPY_EVERY)
        vectors[copies] = vectors[copies - 1] + noise[copies]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def build_index(db: Path, size: int, case: str) -> None:
    from mediafind.db import FileFacts, NewSegment, Part, Store

    if db.exists():
        return
    partial = db.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    vectors = make_vectors(size, case)
    with Store.open(partial, create=True) as store:
        # A throwaway file: no need to wait for the disk at each commit.
        store.conn.execute("PRAGMA synchronous = OFF")
        space = store.create_space("visual", "bench", "bench-random-512", DIM, active=True)
        segment = [NewSegment("visual", None, None)]
        for number, vector in enumerate(vectors):
            facts = FileFacts(f"/photos/{number:06d}.jpg", "image", 1000, 0, f"h{number}", "ok")
            store.write_file(facts, [Part(space, segment, vector[None])])
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(db)


@dataclass
class Run:
    seconds: float
    peak_mb: float
    groups: list[dict] | None  # None when stopped


def run_duplicates(db: Path, timeout: float) -> Run:
    """One `mediafind duplicates` process: wall time, its own peak RSS, its groups."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFIND_")}
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "mediafind", "duplicates", "--json", "--db", str(db)],
            stdout=out,
            env=env,
        )
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            seconds = time.perf_counter() - started
            if pid:
                break
            if seconds > timeout:
                os.kill(process.pid, signal.SIGKILL)
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = -signal.SIGKILL  # reaped here, not by Popen
                return Run(seconds, usage.ru_maxrss / 1024, None)
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 1):
            raise SystemExit(f"duplicates failed on {db} (exit {process.returncode})")
        out.seek(0)
        return Run(seconds, usage.ru_maxrss / 1024, json.load(out))


def check(groups: list[dict], size: int, case: str) -> str:
    """What was found, and whether it is what was planted."""
    sizes = sorted((len(group["paths"]) for group in groups), reverse=True)
    expected = [size] if case == "similar" else [2] * (size // COPY_EVERY)
    if sizes != expected:
        raise SystemExit(f"{case} {size}: found groups of {sizes[:5]}..., expected {expected[:5]}")
    weakest = min(group["similarity"] for group in groups)
    counted = f"{len(groups)} groups" if len(groups) > 1 else "1 group"
    return f"{counted}, largest {sizes[0]}, weakest {weakest:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 19_000, 50_000, 99_000])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--runs", type=int, default=3, help="median of this many runs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run stops")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        for case in args.cases:
            db = args.workdir / f"duplicates-{case}-{size}.db"
            started = time.perf_counter()
            build_index(db, size, case)
            print(f"{case} index of {size} photos ready ({time.perf_counter() - started:.0f} s)")
            runs = []
            for _ in range(args.runs):
                run = run_duplicates(db, args.timeout)
                runs.append(run)
                if run.groups is None:
                    break
            stopped = runs[-1].groups is None
            found = "stopped" if stopped else check(runs[-1].groups or [], size, case)
            seconds = runs[-1].seconds if stopped else statistics.median(r.seconds for r in runs)
            peak = max(r.peak_mb for r in runs)
            times = ", ".join(f"{r.seconds:.1f}" for r in runs)
            print(f"  {times} s; peak {peak:.0f} MB; {found}")
            rows.append((size, case, seconds, stopped, peak, found))

    print(f"\n`mediafind duplicates --json`, whole process, median of {args.runs}")
    print("| photos | case | seconds | peak RSS (MB) | found |")
    print("| ---: | --- | ---: | ---: | --- |")
    for size, case, seconds, stopped, peak, found in rows:
        time_text = f"stopped after {seconds:.0f}" if stopped else f"{seconds:.2f}"
        print(f"| {size:,} | {case} | {time_text} | {peak:.0f} | {found} |")


if __name__ == "__main__":
    main()
