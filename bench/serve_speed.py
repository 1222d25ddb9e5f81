"""Thumbnails and the results page: what they cost, and how quickly they answer.

Generates a library (N 1024x768 JPEGs, a few 12-megapixel ones, and the
two-minute 720p reference clip of video_speed.py), indexes it with an
open_clip model of the default architecture with random weights (same
compute as the real weights, no download; --no-audio --no-speech), then
measures and prints markdown tables:

- the cost of one thumbnail: of a photo (12 MP and 1024x768), of a video
  moment, and, for comparison, from a picture already decoded (what making it
  while indexing would add), and of reading one back from the cache;
- the time from starting `mediafind serve` to the URL line, and to the page
  answering;
- the first page of 20 results with their thumbnails, fetched as a browser
  does (6 connections), on a cold and on a warm cache; and, where Chromium is
  installed, the same in the browser, from pressing Enter to the last
  thumbnail drawn.

    python bench/serve_speed.py                 # 300 photos, 5 starts, 20 warm pages
    python bench/serve_speed.py --photos 1000 --runs 40
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from index_speed import make_model, make_photos
from video_speed import make_reference_clip

SERVE = [sys.executable, "-m", "mediafind", "serve"]
INDEX = [sys.executable, "-m", "mediafind", "index"]
QUERIES = ["a beach at sunset", "a red car", "people at a party", "a dog", "snow", "food"]
BROWSER_CONNECTIONS = 6  # what Chromium opens per host


def make_large_photos(folder: Path, count: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(2)
    paths = []
    for number in range(count):
        path = folder / f"large-{number}.jpg"
        if not path.exists():
            coarse = rng.integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
            big = Image.fromarray(coarse).resize((4032, 3024), Image.Resampling.BICUBIC)
            pixels = np.asarray(big).astype(np.int16)
            pixels += rng.integers(-15, 15, size=pixels.shape, dtype=np.int16)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def timed(work, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for number in range(repeats):
        started = time.perf_counter()
        work(number)
        times.append(time.perf_counter() - started)
    return times


def ms(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values) * 1000:.{digits}f}"


def p95(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000:.1f}"


def thumbnail_costs(photos: list[Path], large: list[Path], clip: Path, root: Path) -> None:
    from PIL import Image

    from mediafind.thumbnails import (
        THUMBNAIL_SIDE,
        ThumbnailCache,
        encode_jpeg,
        picture,
    )

    rows = []
    repeats = 12
    small = timed(lambda n: encode_jpeg(picture(str(photos[n]), "image")), repeats)
    rows.append(("photo, 1024x768 JPEG", small))
    big = timed(lambda n: encode_jpeg(picture(str(large[n % len(large)]), "image")), repeats)
    rows.append(("photo, 4032x3024 JPEG (12 MP)", big))
    moments = [7.3 + 9.7 * n for n in range(repeats)]
    video = timed(lambda n: encode_jpeg(picture(str(clip), "video", moments[n])), repeats)
    rows.append(("video moment, 720p H.264, keyframe every 2 s", video))
    # As the indexer holds a photo: decoded at reduced scale (JPEG draft), 512x384.
    with Image.open(photos[0]) as opened:
        opened.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        decoded = opened.convert("RGB")

    def from_decoded(_: int) -> None:
        copy = decoded.copy()
        copy.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        encode_jpeg(copy)

    rows.append(("from a picture already decoded (at index time)", timed(from_decoded, repeats)))
    cache = ThumbnailCache(root / "cost-cache")
    data = encode_jpeg(picture(str(photos[0]), "image"))
    cache.put("ab" * 20, data)
    rows.append(("read back from the cache", timed(lambda n: cache.get("ab" * 20), 200)))
    print("\n| thumbnail | median (ms) | slowest (ms) |\n| --- | ---: | ---: |")
    for label, values in rows:
        print(f"| {label} | {ms(values, 2)} | {max(values) * 1000:.2f} |")
    sizes = [
        ("a 1024x768 photo's", data),
        ("a 12 MP one's", encode_jpeg(picture(str(large[0]), "image"))),
        ("a moment's", encode_jpeg(picture(str(clip), "video", moments[0]))),
    ]
    print("\n(thumbnail sizes: " + ", ".join(f"{n} {len(d) / 1024:.0f} KB" for n, d in sizes) + ")")


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[str], str, float, float]:
    """A server, its URL, seconds to the URL line and to the page answering."""
    import httpx

    started = time.perf_counter()
    process = subprocess.Popen(SERVE, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    printed = time.perf_counter() - started
    match = re.search(r"http://\S+", line)
    assert match, line
    with httpx.Client(follow_redirects=True) as client:
        assert client.get(match.group(0)).status_code == 200
    return process, match.group(0), printed, time.perf_counter() - started


def first_page(url: str, query: str) -> float:
    """Seconds for the results of `query` and their 20 thumbnails, as a browser
    asks for them: the search, then the pictures over six connections."""
    import httpx

    base, token = url.split("/?token=")
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.Client(base_url=base, headers=headers) for _ in range(BROWSER_CONNECTIONS)]
    try:
        for client in clients:
            client.get("/static/page.css")  # connections open, as a page's are
        started = time.perf_counter()
        response = clients[0].get("/api/search", params={"q": query, "limit": 20})
        response.raise_for_status()
        # The pictures' addresses, as the page takes them.
        wanted = [a for a in response.headers["x-mediafind-thumbnails"].split(",") if a]

        def fetch(number: int) -> None:
            client = clients[number % len(clients)]
            for path in wanted[number :: len(clients)]:
                client.get(path).raise_for_status()

        with ThreadPoolExecutor(len(clients)) as pool:
            list(pool.map(fetch, range(len(clients))))
        return time.perf_counter() - started
    finally:
        for client in clients:
            client.close()


SEARCH_IN_PAGE = r"""async (query) => {
    const started = performance.now();
    document.getElementById("q").value = query;
    document.getElementById("search").requestSubmit();
    const status = document.getElementById("status");
    while (!/results? \(/.test(status.textContent)) {
        await new Promise((done) => setTimeout(done, 5));
    }
    const images = [...document.querySelectorAll(".card img")];
    await Promise.all(images.map((image) => image.decode()));
    return (performance.now() - started) / 1000;
}"""


def page_contents(url: str, queries: list[str]) -> str:
    """What the first pages held: photos, video moments, and results without a picture."""
    import httpx

    base, token = url.split("/?token=")
    kinds = {"image": 0, "video": 0, "audio": 0}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        for query in queries:
            for result in client.get("/api/search", params={"q": query, "limit": 20}).json():
                kinds[result["kind"]] += 1
    return (
        f"{len(queries)} first pages held {kinds['image']} photos and "
        f"{kinds['video']} video moments in all"
    )


def in_browser(url: str, queries: list[str], *, browser_cache: bool) -> list[float] | None:
    """Seconds from pressing Enter to the last thumbnail decoded, per query,
    in a browser that has shown the page once already. Without
    `browser_cache` every picture is asked of the server again; with it,
    each query was run once before (untimed), so its pictures are the
    browser's own."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        if not browser_cache:
            session = page.context.new_cdp_session(page)
            session.send("Network.enable")
            session.send("Network.setCacheDisabled", {"cacheDisabled": True})
        page.goto(url)
        for query in sorted(set(queries)) if browser_cache else queries[:1]:
            page.evaluate(SEARCH_IN_PAGE, query)
            page.goto(url)
        for query in queries:
            timings.append(page.evaluate(SEARCH_IN_PAGE, query))
            page.goto(url)  # a fresh page for the next query
        browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20, help="warm first pages timed")
    parser.add_argument("--starts", type=int, default=5, help="server starts timed")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mf-serve")
    args = parser.parse_args()

    work = args.workdir
    library = work / "library"
    make_photos(library, args.photos)
    large = make_large_photos(library, 4)
    clip = make_reference_clip(library / "reference.mp4")
    photos = sorted(library.glob("0*.jpg"))
    model = make_model(work / "model", "ViT-B-32-256")
    db = work / "index.db"
    env = {
        **os.environ,
        "MEDIAFIND_DB": str(db),
        "MEDIAFIND_CACHE": str(work / "cache" / "models"),
        "MEDIAFIND_CONFIG": str(work / "config.toml"),
        # Thumbnails go to the per-user cache: this run's own.
        "XDG_CACHE_HOME": str(work / "cache"),
    }
    thumbnails = work / "cache" / "mediafind" / "thumbnails"
    subprocess.run(
        [*INDEX, str(library), "--model", model, "--no-audio", "--no-speech"],
        env=env,
        check=True,
    )
    os.environ.update(env)
    thumbnail_costs(photos, large, clip, work)

    starts = []
    for _ in range(args.starts):
        process, url, printed, answering = start_server(env)
        starts.append((printed, answering))
        process.send_signal(2)
        process.wait()
    print("\n| `mediafind serve` | median (s) | slowest (s) |\n| --- | ---: | ---: |")
    for label, values in (
        ("start to the URL line", [s[0] for s in starts]),
        ("start to the page answering", [s[1] for s in starts]),
    ):
        print(f"| {label} | {statistics.median(values):.2f} | {max(values):.2f} |")

    shutil.rmtree(thumbnails, ignore_errors=True)
    process, url, _, _ = start_server(env)
    try:
        time.sleep(1.0)  # the query model loads in the background after the URL line
        cold = []
        for query in QUERIES:
            shutil.rmtree(thumbnails, ignore_errors=True)
            cold.append(first_page(url, query))
        warm = [first_page(url, QUERIES[n % len(QUERIES)]) for n in range(args.runs)]
        queries = [QUERIES[n % len(QUERIES)] for n in range(args.runs)]
        fresh = in_browser(url, queries, browser_cache=False)
        again = in_browser(url, queries, browser_cache=True)
        held = page_contents(url, QUERIES)
    finally:
        process.send_signal(2)
        process.wait()
    rows = [
        (f"cold cache, HTTP client ({len(cold)} queries)", cold),
        (f"warm cache, HTTP client ({len(warm)} runs)", warm),
    ]
    if fresh and again:
        rows.append((f"warm cache, Chromium with its own cache off ({len(fresh)} runs)", fresh))
        rows.append((f"warm cache, Chromium, its pictures seen before ({len(again)} runs)", again))
    print("\n| first page: search + 20 thumbnails | median (ms) | p95 (ms) |")
    print("| --- | ---: | ---: |")
    for label, values in rows:
        print(f"| {label} | {ms(values)} | {p95(values)} |")
    print(f"\n({held})")


if __name__ == "__main__":
    main()
