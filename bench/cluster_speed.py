"""Indexing on a Ray cluster against the same work done here: what the cluster
path costs, what one worker does per second, and what that means for a large
archive.

Starts a Ray head on this machine (127.0.0.1, --cpus CPUs, no dashboard, no
usage statistics) and indexes generated media twice per kind: here (threads,
as `mediafind index` does) and through `ClusterRunner` on that head, once with
one file and once with all: the one-file run is the start (connecting,
starting workers, loading models), the difference is the steady rate. Kinds:
photos (1024x768 JPEGs, pictures only), videos (45-second 640x360 H.264 clips,
pictures only) and speech (espeak-ng sentences, the words pass).

Models: the tests' tiny models (tests/tiny_models.py: open_clip with 32-pixel
inputs, a tiny Whisper with random weights). Their compute is next to nothing,
so the rates measured are those of everything but the model: reading,
decoding, sampling, the pipeline, the transfer and the writer. The archive
model at the end adds the real models' compute per core, from the other
benchmarks in bench/README.md (real architectures, random weights).

    python bench/cluster_speed.py                  # about 4 minutes on 2 cores
    python bench/cluster_speed.py --cpus 2 --photos 2000
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

# What keeps Ray on this machine: one node on the loopback address, no usage
# statistics, no token (the head is reachable from here only).
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
SENTENCES = [
    "We parked the car on level three near the blue door.",
    "Happy birthday grandma, we all miss you very much.",
    "The train to the coast leaves at seven in the morning.",
    "Blow out the candles and make a wish before the cake melts.",
]

# Per core, from bench/README.md on this machine (2 cores, real architectures,
# ONNX Runtime): photos 30/s (ViT-B-32-256, fp32); video pictures 59x real time
# (the 720p reference clip); sound 66x (CLAP HTSAT-base, continuous sound);
# speech 20x on speech (Whisper base, int8, the chunk table). Halved: per core.
PHOTOS_PER_CORE_S = 30 / 2
VIDEO_PICTURES_X_PER_CORE = 59 / 2
VIDEO_SOUND_X_PER_CORE = 66 / 2
SPEECH_X_PER_CORE = 20 / 2
# One H200 node with 16 cores (bench/README.md, "On a lent GPU"): the 720p clip
# at 108x real time (decoding-bound), continuous sound at 132x.
GPU_NODE_VIDEO_PICTURES_X = 108
GPU_NODE_SOUND_X = 132
ARCHIVE_PHOTOS = 500_000
ARCHIVE_HOURS = 20_000


def make_photos(folder: Path, count: int) -> list[Path]:
    """index_speed's textured 1024x768 photos (the same files, made once)."""
    from index_speed import make_photos as make

    make(folder, count)
    return [folder / f"{number:05d}.jpg" for number in range(count)]


def make_videos(folder: Path, count: int) -> list[Path]:
    from media_factory import Shot, make_video

    paths = []
    for number in range(count):
        path = folder / f"{number:03d}.mp4"
        if not path.exists():
            shots = [
                Shot(5.0, ((number * 40 + k * 70) % 256, (k * 90) % 256, 120), pan=40.0)
                for k in range(9)
            ]
            make_video(path, shots, size=(640, 360), fps=25, gop_seconds=2.0)
        paths.append(path)
    return paths


def make_speech(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = folder / f"{number:03d}.wav"
        if not path.exists():
            text = " ".join(SENTENCES[(number + k) % len(SENTENCES)] for k in range(6))
            subprocess.run(["espeak-ng", "-w", str(path), "-s", "160", text], check=True)
        paths.append(path)
    return paths


def seconds_of(paths: list[Path]) -> float:
    import av

    total = 0.0
    for path in paths:
        with av.open(str(path)) as container:
            total += float(container.duration or 0) / 1e6
    return total


@dataclass
class Measured:
    seconds: float
    # Time the writer spent writing (the index's transactions), seconds.
    writing: float
    files: int


def index_once(root: Path, models: dict[str, Any], address: str | None, work: Path) -> Measured:
    """Index `root` into a new index, here or on the cluster, timed."""
    import mediafind.index as index
    from mediafind.db import Store

    db_path = work / "bench.db"
    for leftover in work.glob("bench.db*"):
        leftover.unlink()
    writing = 0.0
    real_write = index._Run.write

    def timed_write(self: Any, prepared: Any, vectors: Any) -> None:
        nonlocal writing
        started = time.perf_counter()
        real_write(self, prepared, vectors)
        writing += time.perf_counter() - started

    index._Run.write = timed_write  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        with Store.open(db_path, create=True) as store:
            if address is None:
                summary = index.index_paths(store, [root], models)
            else:
                from mediafind.cluster import ClusterRunner

                with ClusterRunner(address) as runner:
                    options = index.IndexOptions(runner=runner)
                    summary = index.index_paths(store, [root], models, options)
        elapsed = time.perf_counter() - started
    finally:
        index._Run.write = real_write  # type: ignore[method-assign]
    assert summary.failed == 0, summary
    return Measured(elapsed, writing, summary.new)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_head(cpus: int, temp: Path, cache: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, **RAY_ENV, "MEDIAFIND_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return head, f"127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or head.poll() is not None:
                raise SystemExit("the Ray head did not start") from None
            time.sleep(0.2)


def stop_head(head: subprocess.Popen[bytes]) -> None:
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the Ray head")
    parser.add_argument("--photos", type=int, default=800)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--speech", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mf-cluster")
    args = parser.parse_args()

    os.environ.update(RAY_ENV)
    os.environ["HF_HUB_OFFLINE"] = "1"
    work = args.workdir
    cache = work / "models-cache"
    os.environ["MEDIAFIND_CACHE"] = str(cache)
    from tiny_models import build_tiny_clip, build_tiny_whisper

    from mediafind import config
    from mediafind.modalities import get

    clip = "local-dir:" + str(build_tiny_clip(work / "tiny-clip"))
    whisper_folder = work / "tiny-whisper" / "model"
    if not (whisper_folder / "model.bin").exists():
        shutil.rmtree(whisper_folder, ignore_errors=True)
        build_tiny_whisper(whisper_folder)
    whisper = str(whisper_folder)
    pictures = {"visual": get("visual").embedder(config.Choice(clip, "option"), "cpu", "fp32")}
    words = {"speech": get("speech").embedder(config.Choice(whisper, "option"), "cpu", "fp32")}

    kinds = [
        ("photos", "photos", make_photos(work / "photos" / "all", args.photos), pictures),
        ("video (pictures)", "video s", make_videos(work / "video" / "all", args.videos), pictures),
        ("speech (words)", "audio s", make_speech(work / "speech" / "all", args.speech), words),
    ]
    temp = Path(tempfile.mkdtemp(prefix="mfbench-", dir="/tmp"))
    head, address = start_head(args.cpus, temp, cache)
    rows = []
    try:
        for label, unit, files, models in kinds:
            everything = files[0].parent
            one = everything.parent / "one"
            one.mkdir(exist_ok=True)
            if not (one / files[0].name).exists():
                os.link(files[0], one / files[0].name)
            units = float(len(files)) if unit == "photos" else seconds_of(files)
            extra = units * (len(files) - 1) / len(files)  # beyond the first file
            # First: the models converted and cached, and the cluster's
            # workers started once (a cold head starts its first ones slower).
            index_once(one, models, None, work)
            index_once(one, models, address, work)
            measured = {}
            for where, address_or_none in (("here", None), ("cluster", address)):
                first = index_once(one, models, address_or_none, work)
                whole = index_once(everything, models, address_or_none, work)
                measured[where] = (extra / (whole.seconds - first.seconds), first.seconds)
            writer = whole.files / max(whole.writing, 1e-9)
            rows.append((label, unit, *measured["here"], *measured["cluster"], writer))
    finally:
        stop_head(head)
        shutil.rmtree(temp, ignore_errors=True)

    print(f"\nTiny models; here: threads on {os.cpu_count()} cores; cluster: Ray head on this")
    print(f"machine, {args.cpus} CPUs (tasks decode, actors embed).\n")
    print(
        "| work | here: rate | here: one file, s | cluster: rate | cluster: one file, s "
        "| cluster: per worker | cluster / here | writer: files/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, unit, here_rate, here_fixed, rate, fixed, writer_rate in rows:
        print(
            f"| {label} | {here_rate:.1f} {unit}/s | {here_fixed:.1f} | {rate:.1f} {unit}/s "
            f"| {fixed:.1f} | {rate / args.cpus:.1f} {unit}/s | {rate / here_rate:.2f} "
            f"| {writer_rate:.0f} |"
        )
    archive_model(rows, args.cpus)


def archive_model(rows: list[Any], cpus: int) -> None:
    """Hours for 500,000 photos and 20,000 hours of video on N workers: the
    real models' core-seconds (bench/README.md) plus what the cluster path
    costs per item beyond a local run (measured above), over N cores."""
    by_label = {row[0]: row for row in rows}

    def extra_per_unit(label: str) -> float:
        _, _, here_rate, _, rate, _, _ = by_label[label]
        # What a worker spends per unit beyond what a core spends here.
        return max(0.0, cpus / rate - 1 / here_rate * min(cpus, os.cpu_count() or 1))

    video_s = ARCHIVE_HOURS * 3600
    work = {
        "photos": ARCHIVE_PHOTOS / PHOTOS_PER_CORE_S + ARCHIVE_PHOTOS * extra_per_unit("photos"),
        "video pictures": video_s / VIDEO_PICTURES_X_PER_CORE
        + video_s * extra_per_unit("video (pictures)"),
        "video sound": video_s / VIDEO_SOUND_X_PER_CORE,
        "speech (if all of it is talk)": video_s / SPEECH_X_PER_CORE
        + video_s * extra_per_unit("speech (words)"),
    }
    print("\nThe archive (500,000 photos, 20,000 hours of video), hours of work:\n")
    print("| work | core-hours | 8 cores | 64 cores | 256 cores |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, seconds in work.items():
        hours = seconds / 3600
        spread = " | ".join(f"{hours / cores:,.1f}" for cores in (8, 64, 256))
        print(f"| {label} | {hours:,.0f} | {spread} |")
    total = sum(work.values()) / 3600
    spread = " | ".join(f"{total / cores:,.1f}" for cores in (8, 64, 256))
    print(f"| all | {total:,.0f} | {spread} |")
    gpu_hours = video_s / GPU_NODE_VIDEO_PICTURES_X / 3600 + video_s / GPU_NODE_SOUND_X / 3600
    print(
        f"\nGPU nodes (H200 + 16 cores, bench/README.md; not measured here): the video's "
        f"pictures and sound take {gpu_hours:,.0f} node-hours, {gpu_hours / 4:,.0f} h on 4 "
        "nodes; speech and photos on a GPU were not measured."
    )


if __name__ == "__main__":
    main()
