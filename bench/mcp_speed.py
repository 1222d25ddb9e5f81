"""`mediafind mcp`: how quickly an assistant's calls answer, beside `serve`.

Generates N 1024x768 JPEGs, indexes them with an open_clip model of the
default architecture with random weights (same compute as the real weights,
no download; --no-audio --no-speech), then measures and prints a markdown
table:

- `mediafind mcp` started by the MCP SDK's own client over stdio, as an
  assistant starts it: to the handshake done, to the first search answered
  (the models load in the background from the start), then warm searches
  of 10 results, without and with their thumbnails (warm cache), `similar`
  and `status`;
- the same search of 10 results through `serve`'s /api/search, warm, and as
  a fresh `mediafind search --json` process (what each call would cost if
  the models were not kept loaded).

    python bench/mcp_speed.py                   # 300 photos, 20 calls of each
    python bench/mcp_speed.py --photos 1000 --runs 40
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from index_speed import make_model, make_photos

MEDIAFIND = [sys.executable, "-m", "mediafind"]
QUERIES = ["a beach at sunset", "a red car", "people at a party", "a dog", "snow", "food"]


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def p95(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000:.1f}"


def through_mcp(env: dict[str, str], runs: int, example: str) -> list[tuple[str, list[float]]]:
    import anyio
    from mcp import Client, StdioServerParameters

    async def run() -> list[tuple[str, list[float]]]:
        server = StdioServerParameters(command=MEDIAFIND[0], args=[*MEDIAFIND[1:], "mcp"], env=env)
        started = time.perf_counter()
        async with Client(server) as client:
            handshake = time.perf_counter() - started
            answer = await client.call_tool("search", {"query": "a cat", "thumbnails": False})
            assert not answer.is_error, answer.content
            first = time.perf_counter() - started

            async def timed(name: str, arguments: dict[str, Any]) -> float:
                began = time.perf_counter()
                answer = await client.call_tool(name, arguments)
                assert not answer.is_error, answer.content
                return time.perf_counter() - began

            plain, pictured, alike, status = [], [], [], []
            for number in range(runs):
                query = QUERIES[number % len(QUERIES)]
                plain.append(await timed("search", {"query": query, "thumbnails": False}))
            for query in QUERIES:  # thumbnails made once: the cache is warm after
                await timed("search", {"query": query})
            for number in range(runs):
                pictured.append(await timed("search", {"query": QUERIES[number % len(QUERIES)]}))
                alike.append(await timed("similar", {"path": example, "thumbnails": False}))
                status.append(await timed("status", {}))
        return [
            ("mcp: start to the handshake done", [handshake]),
            ("mcp: start to the first search answered", [first]),
            (f"mcp: search, 10 results, no thumbnails ({runs} calls)", plain),
            (f"mcp: search, 10 results and 10 thumbnails, warm cache ({runs} calls)", pictured),
            (f"mcp: similar, 10 results ({runs} calls)", alike),
            (f"mcp: status ({runs} calls)", status),
        ]

    return anyio.run(run)


def through_serve(env: dict[str, str], runs: int) -> list[float]:
    import httpx

    process = subprocess.Popen([*MEDIAFIND, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        match = re.search(r"http://\S+", process.stderr.readline())
        assert match
        base, token = match.group(0).split("/?token=")
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
            client.get("/api/search", params={"q": "a cat", "limit": 10}).raise_for_status()
            times = []
            for number in range(runs):
                began = time.perf_counter()
                params = {"q": QUERIES[number % len(QUERIES)], "limit": 10}
                client.get("/api/search", params=params).raise_for_status()
                times.append(time.perf_counter() - began)
        return times
    finally:
        process.send_signal(2)
        process.wait()


def one_shot(env: dict[str, str], runs: int) -> list[float]:
    times = []
    for number in range(runs):
        began = time.perf_counter()
        subprocess.run(
            [*MEDIAFIND, "search", QUERIES[number % len(QUERIES)], "--json", "-n", "10"],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20, help="calls of each kind timed")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mf-mcp")
    args = parser.parse_args()

    work = args.workdir
    library = work / "library"
    make_photos(library, args.photos)
    model = make_model(work / "model", "ViT-B-32-256")
    env = {
        **os.environ,
        "MEDIAFIND_DB": str(work / "index.db"),
        "MEDIAFIND_CACHE": str(work / "cache" / "models"),
        "MEDIAFIND_CONFIG": str(work / "config.toml"),
        "XDG_CACHE_HOME": str(work / "cache"),
    }
    subprocess.run(
        [*MEDIAFIND, "index", str(library), "--model", model, "--no-audio", "--no-speech"],
        env=env,
        check=True,
    )
    example = str(sorted(library.glob("*.jpg"))[0])
    rows = through_mcp(env, args.runs, example)
    rows.append(
        (
            f"serve: /api/search, 10 results, warm ({args.runs} requests)",
            through_serve(env, args.runs),
        )
    )
    shots = max(3, args.runs // 4)
    rows.append((f"a fresh `mediafind search --json -n 10` ({shots} runs)", one_shot(env, shots)))
    print("\n| what | median (ms) | p95 (ms) |\n| --- | ---: | ---: |")
    for label, values in rows:
        print(f"| {label} | {ms(values)} | {p95(values)} |")


if __name__ == "__main__":
    main()
