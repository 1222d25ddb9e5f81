"""The results page in a real browser: headless Chromium (Debian's `chromium`)
driven by Playwright, against a real `mediafind serve` process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import COLORS, draw_photo, fake_cli
from media_factory import Shot, make_audio, make_video
from test_serve import server_environment, start, stop

from mediafind.serve import opening_page

# Debian's package; Playwright's own browser download is not used.
CHROMIUM = os.environ.get("MEDIAFIND_TEST_CHROMIUM") or shutil.which("chromium") or ""
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
FPS = 24
SHOTS = [
    Shot(2.0, (220, 30, 30), (250, 250, 250)),
    Shot(2.0, (30, 200, 60), (10, 10, 10)),
    Shot(2.0, (30, 60, 220), (250, 220, 40)),
    Shot(2.0, (240, 200, 40), (90, 20, 120)),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not CHROMIUM or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            "the browser test needs Chromium: apt-get install -y --no-install-recommends chromium"
        )
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browsed")
    library = root / "Pictures"
    for name in ("red", "green", "blue", "yellow", "purple", "orange"):
        draw_photo(library / f"{name}.jpg", COLORS[name], size=(400, 300))
    make_video(library / "party.webm", SHOTS, fps=FPS, codec="libvpx-vp9", gop_seconds=2.0)
    make_audio(library / "tone.wav", [("tone", 3.0)])
    env = server_environment(root)
    indexing = subprocess.run(fake_cli("index", str(library)), env=env, capture_output=True)
    assert indexing.returncode == 0, indexing.stderr
    process, line = start(env)
    yield re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
    assert stop(process) == 130


def wait_until(page, expression: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for a JavaScript expression to hold. (Playwright's wait_for_function
    evaluates strings in the page, which the page's own CSP rightly forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def test_search_see_thumbnails_and_play_a_moment(browser, page_url: str):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(page_url)
    assert "token" not in page.url  # traded for a cookie, dropped from the address

    page.fill("#q", "a party")
    page.press("#q", "Enter")
    page.wait_for_selector(".card")
    cards = page.locator(".card")
    assert cards.count() == 8
    # Every photo and video shows its thumbnail; the recording a sign.
    wait_until(
        page,
        "[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth > 0)",
    )
    assert page.locator(".card img").count() == 7
    assert page.locator(".card.audio .glyph").count() == 1
    assert "results" in (page.text_content("#status") or "")

    video = page.locator(".card.video")
    moments = video.locator("button.moment")
    assert moments.count() == len(SHOTS)
    times = {moments.nth(i).text_content(): i for i in range(moments.count())}
    assert set(times) == {"0:00", "0:02", "0:04", "0:06"}

    # A moment's button plays the video from that moment.
    moments.nth(times["0:04"]).click()
    player = page.locator("#stage video")
    player.wait_for()
    wait_until(page, "document.querySelector('#stage video').readyState >= 1")
    at = player.evaluate("v => v.currentTime")
    assert 4.0 - 1 / FPS <= at <= 4.5  # from its moment (and playing on)
    assert page.locator("#viewer-title").text_content() == "party.webm at 0:04"
    page.click("#viewer-close")

    # The thumbnail plays from the best moment.
    best = video.locator("img").get_attribute("src") or ""
    start = float(parse_qs(urlsplit(best).query)["t"][0])
    video.locator("button.thumb").click()
    wait_until(page, "document.querySelector('#stage video')?.readyState >= 1")
    at = page.locator("#stage video").evaluate("v => v.currentTime")
    assert start - 1 / FPS <= at <= start + 0.5
    page.keyboard.press("Escape")

    # More like this: a search by example, without the example itself.
    page.locator(".card", has_text="green.jpg").locator("button.more").click()
    wait_until(page, "location.hash.includes('like=')")
    page.wait_for_selector(".card")
    wait_until(page, "!document.querySelector('#status').textContent.includes('Searching')")
    names = page.locator(".card .name").all_text_contents()
    assert names and "green.jpg" not in names
    assert "like green.jpg" in (page.text_content("#status") or "")
    assert problems == []
    page.close()


def test_the_opening_page_leads_to_the_results_page(browser, page_url: str):  # type: ignore[no-untyped-def]
    # What `serve --open` hands the browser (see test_serve): a local file.
    from playwright.sync_api import Error

    page = browser.new_page()
    page.goto(opening_page(page_url).as_uri())
    # Asked of the page itself (Playwright's page.url is not told of a meta
    # refresh), again while a navigation replaces it.
    deadline = time.monotonic() + 15
    while True:
        try:
            if page.evaluate("document.querySelector('#q') !== null"):
                break
        except Error:
            pass
        assert time.monotonic() < deadline, "the opening page led nowhere"
        time.sleep(0.05)
    assert page.evaluate("location.href") == page_url.split("?")[0]
    page.close()
