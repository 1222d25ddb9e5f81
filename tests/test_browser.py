"""The results page in a real browser: headless Chromium (Debian's `chromium`)
driven by Playwright, against a real `mediafind serve` process."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import COLORS, draw_photo, fake_cli
from media_factory import Shot, make_audio, make_video
from test_audio import make_video_with_sound
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


# More than the page's first 20 results, in a folder per year; one name with
# an emoji; a video of half-second shots, whose moments share their seconds;
# a video with sound, seen and heard at 0:00.
PHOTOS_2023 = 12
PHOTOS_2024 = 10
BIRTHDAY = "🎂 birthday.jpg"
QUICK_SHOTS = [
    Shot(0.5, (220, 30, 30), (250, 250, 250)),
    Shot(0.5, (30, 200, 60), (10, 10, 10)),
    Shot(0.5, (30, 60, 220), (250, 220, 40)),
    Shot(1.5, (240, 200, 40), (90, 20, 120)),
]
# Debian's fonts-noto-color-emoji.
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")


@dataclass
class Archive:
    url: str
    library: Path
    db: Path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    root = tmp_path_factory.mktemp("archive")
    library = root / "Archive"
    for i in range(PHOTOS_2023 - 1):
        draw_photo(library / "2023" / f"day-{i:02}.jpg", (20 * i, 200 - 15 * i, 90), size=(64, 48))
    draw_photo(library / "2023" / BIRTHDAY, COLORS["orange"], size=(64, 48))
    for i in range(PHOTOS_2024):
        draw_photo(library / "2024" / f"trip-{i:02}.jpg", (90, 20 * i, 230 - 20 * i), size=(64, 48))
    make_video(library / "quick.webm", QUICK_SHOTS, fps=FPS, codec="libvpx-vp9", gop_seconds=0.5)
    # Two 2-second scenes: seen at 0 and 2 s, heard in windows from 0 and 1.5 s.
    scenes = [(QUICK_SHOTS[0], "noise"), (QUICK_SHOTS[2], "chirp")]
    make_video_with_sound(library / "loud.mp4", scenes, seconds=2.0)
    make_audio(library / "tone.wav", [("tone", 3.0)])
    env = server_environment(root)
    indexing = subprocess.run(fake_cli("index", str(library)), env=env, capture_output=True)
    assert indexing.returncode == 0, indexing.stderr
    process, line = start(env)
    url = re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
    yield Archive(url, library, root / "index.db")
    assert stop(process) == 130


def search(page, words: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#q", words)
    page.press("#q", "Enter")
    page.wait_for_selector(".card")
    settled(page)


def settled(page) -> None:  # type: ignore[no-untyped-def]
    wait_until(page, "!document.querySelector('#status').textContent.includes('Searching')")


def names(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator(".card .name").all_text_contents()


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


def test_the_start_page_says_what_the_index_holds(browser, archive: Archive):  # type: ignore[no-untyped-def]
    with sqlite3.connect(archive.db) as conn:
        (last,) = conn.execute("SELECT max(last_indexed_at) FROM roots").fetchone()
    page = browser.new_page()
    page.goto(archive.url)
    wait_until(page, "document.querySelector('#start').textContent.length > 0")
    shown = page.text_content("#start") or ""
    assert "The index holds 22 photos, 2 videos and 1 recording." in shown
    assert f"Last indexed {datetime.fromtimestamp(last).strftime('%Y-%m-%d %H:%M')}." in shown
    assert str(archive.library) in shown
    # A search hides it; going back to no search shows it again.
    search(page, "a photo")
    assert not page.locator("#start").is_visible()
    page.go_back()
    wait_until(page, "!document.querySelector('#start').hidden")
    assert page.locator(".card").count() == 0
    page.close()


def test_filters_apply_when_changed(browser, archive: Archive):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(archive.url)
    search(page, "a photo")
    assert page.locator(".card").count() == 20
    page.click("#filters summary")
    # No Search pressed after any of these.
    page.check("input[name=type][value=video]")
    wait_until(page, "document.querySelectorAll('.card').length === 2")
    assert sorted(names(page)) == ["loud.mp4", "quick.webm"]
    page.uncheck("input[name=type][value=video]")
    page.select_option("#modality", "audio")
    wait_until(page, "location.hash.includes('modality=audio')")
    settled(page)
    assert sorted(names(page)) == ["loud.mp4", "tone.wav"]
    page.select_option("#modality", "")
    page.fill("#since", "2099-01-01")
    wait_until(page, "location.hash.includes('since=2099-01-01')")
    settled(page)
    assert page.locator(".card").count() == 0
    assert page.text_content("#status") == "Nothing found"
    page.close()


def test_in_folder_is_a_folder_of_the_index(browser, archive: Archive):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(archive.url)
    search(page, "a photo")
    page.click("#filters summary")
    offered = page.eval_on_selector_all("#folders option", "options => options.map(o => o.value)")
    assert offered == [str(archive.library)]
    page.fill("#in", "2024")
    page.press("#in", "Enter")
    wait_until(page, "location.hash.includes('in=2024')")
    settled(page)
    assert sorted(names(page)) == [f"trip-{i:02}.jpg" for i in range(PHOTOS_2024)]
    page.fill("#in", "2025")
    page.press("#in", "Enter")
    wait_until(page, "location.hash.includes('in=2025')")
    settled(page)
    assert page.locator(".card").count() == 0
    said = page.text_content("#status") or ""
    assert "in '2025': nothing is indexed there" in said and str(archive.library) in said
    page.close()


def test_more_than_the_first_20_results(browser, archive: Archive):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(archive.url)
    search(page, "a photo")
    first = names(page)
    assert len(first) == 20
    page.click("#more button")
    wait_until(page, "document.querySelectorAll('.card').length === 25")
    # All the library, the first 20 as they were; nothing more to ask for.
    assert names(page)[:20] == first
    assert len(set(names(page))) == 25
    assert page.locator("#more button").count() == 0
    page.close()


def test_labels_use_the_readmes_words(browser, archive: Archive):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(archive.url)
    page.evaluate("location.hash = 'q=a+photo&limit=25'")
    wait_until(page, "document.querySelectorAll('.card').length === 25")
    facts = {
        name: page.locator(".card", has_text=name).locator(".facts").text_content() or ""
        for name in ("tone.wav", "quick.webm", "trip-00.jpg")
    }
    score = r"-?\d+\.\d\d"
    assert re.fullmatch(rf"{score} · heard in a recording at 0:0\d", facts["tone.wav"])
    assert re.fullmatch(rf"{score} · seen in a video at 0:0\d", facts["quick.webm"])
    assert re.fullmatch(rf"{score} · seen in a photo", facts["trip-00.jpg"])
    kinds = page.locator("#kinds label").all_text_contents()
    assert [k.strip() for k in kinds] == ["photos (22)", "videos (2)", "recordings (1)"]
    matched = page.eval_on_selector_all("#modality option", "options => options.map(o => o.text)")
    assert matched == ["anything", "seen", "heard"]
    page.close()


def test_moments_that_share_a_second_are_told_apart(browser, archive: Archive):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(archive.url)
    search(page, "a photo")
    moments = page.locator(".card", has_text="quick.webm").locator("button.moment")
    # The four half-second shots start at 0, 0.5, 1 and 1.5 s.
    assert moments.all_text_contents() == ["0:00.0", "0:00.5", "0:01.0", "0:01.5"]
    moments.nth(3).click()
    wait_until(page, "document.querySelector('#stage video')?.readyState >= 1")
    at = page.locator("#stage video").evaluate("v => v.currentTime")
    assert 1.5 - 1 / FPS <= at <= 2.0
    page.keyboard.press("Escape")
    # Seen and heard at 0:00: each says which.
    both = page.locator(".card", has_text="loud.mp4").locator("button.moment")
    assert sorted(both.all_text_contents()) == ["0:00 heard", "0:00 seen", "0:01", "0:02"]
    page.close()


def test_emoji_in_names_are_drawn(browser, archive: Archive):  # type: ignore[no-untyped-def]
    if not EMOJI_FONT.exists():
        pytest.fail(
            "the emoji test needs a colour emoji font: "
            "apt-get install -y --no-install-recommends fonts-noto-color-emoji"
        )
    page = browser.new_page()
    page.goto(archive.url)
    search(page, "a photo")
    name = page.locator(".card .name", has_text="birthday.jpg")
    assert name.text_content() == BIRTHDAY
    # The page names the systems' emoji fonts ...
    stack = name.evaluate("n => getComputedStyle(n).fontFamily")
    for font in ("Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji"):
        assert f'"{font}"' in stack
    # ... and the browser draws the cake with one, not as a box.
    session = browser.new_cdp_session(page)
    session.send("DOM.enable")
    session.send("CSS.enable")
    document = session.send("DOM.getDocument", {"depth": -1})
    node = session.send(
        "DOM.querySelector",
        {"nodeId": document["root"]["nodeId"], "selector": f'.card .name[title$="{BIRTHDAY}"]'},
    )
    fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    drawn = {font["familyName"]: font["glyphCount"] for font in fonts}
    assert drawn.get("Noto Color Emoji") == 1  # the cake, one glyph
    page.close()
