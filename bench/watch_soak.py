"""What `mediafind watch` costs: CPU seconds while nothing changes, and its
memory (RSS) and CPU over a stream of file events (new photos, rewrites,
renames, deletes), sampled from /proc. The models are the tests' numpy
stand-ins (tests/fake_modality.py): this measures the watcher, not a model.

    python bench/watch_soak.py --idle 120 --events 2000 --over 180
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from conftest import fake_cli  # noqa: E402 (tests/ is put on the path first)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def photo(path: Path, seed: int) -> None:
    from PIL import Image

    Image.new("RGB", (32, 24), (seed % 256, (seed * 7) % 256, (seed * 13) % 256)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=float, default=120.0, help="idle seconds measured")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--over", type=float, default=180.0, help="seconds the events span")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mf-soak-"))
    root = work / "Pictures"
    root.mkdir()
    env = dict(
        os.environ,
        MEDIAFIND_DB=str(work / "index.db"),
        MEDIAFIND_CONFIG=str(work / "config.toml"),
        XDG_RUNTIME_DIR=str(work / "run"),
        XDG_CACHE_HOME=str(work / "cache"),
    )
    watcher = subprocess.Popen(
        fake_cli("watch", str(root)), env=env, stderr=subprocess.DEVNULL, text=True
    )
    try:
        time.sleep(5)  # started, caught up with an empty folder
        start_cpu, started = cpu_seconds(watcher.pid), time.monotonic()
        time.sleep(args.idle)
        idle_cpu = cpu_seconds(watcher.pid) - start_cpu
        idle_wall = time.monotonic() - started
        rss_start = rss_mib(watcher.pid)
        print(f"idle: {idle_cpu:.2f} CPU s over {idle_wall:.0f} s; RSS {rss_start:.0f} MiB")

        rng = random.Random(0)
        alive: list[Path] = []
        samples: list[tuple[float, float]] = []
        busy_cpu = cpu_seconds(watcher.pid)
        began = time.monotonic()
        for number in range(args.events):
            action = rng.random()
            if action < 0.55 or len(alive) < 10:
                path = root / f"p{number:06d}.jpg"
                photo(path, number)
                alive.append(path)
            elif action < 0.7:
                photo(rng.choice(alive), number)  # rewritten
            elif action < 0.85:
                old = alive.pop(rng.randrange(len(alive)))
                new = old.with_name(f"r{number:06d}.jpg")
                old.rename(new)
                alive.append(new)
            else:
                alive.pop(rng.randrange(len(alive))).unlink()
            pause = began + (number + 1) * args.over / args.events - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if number % max(1, args.events // 20) == 0:
                samples.append((time.monotonic() - began, rss_mib(watcher.pid)))
        time.sleep(5)
        samples.append((time.monotonic() - began, rss_mib(watcher.pid)))
        spent = cpu_seconds(watcher.pid) - busy_cpu
        from mediafind.db import Store

        with Store.open(work / "index.db", create=False, readonly=True) as store:
            indexed = set(store.all_paths())
        expected = {str(path) for path in alive}
        print(
            f"events: {args.events} over {time.monotonic() - began:.0f} s, "
            f"{spent:.1f} CPU s; index matches the folder: {indexed == expected} "
            f"({len(expected)} files)"
        )
        print("| seconds | RSS (MiB) |")
        print("| --- | --- |")
        for at, rss in samples[:: max(1, len(samples) // 6)] + samples[-1:]:
            print(f"| {at:.0f} | {rss:.0f} |")
    finally:
        watcher.terminate()
        watcher.wait(10)


if __name__ == "__main__":
    main()
