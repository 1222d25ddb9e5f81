"""A query that is not valid UTF-8 (bytes from an old shell script, a Latin-1
terminal) is read as Latin-1: `caf\\xe9` searches for café.

Run through a real process with the bytes in its argv, as a shell passes
them, and the tests' tiny real models (sound and pictures) beside the real
words search, so that every model's tokenizer sees the query.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import COLORS
from test_speech import SRT

from mediafind.db import Store
from mediafind.index import index_paths
from mediafind.query import parse_part, search

CAFE = b"caf\xe9"  # "café" in Latin-1: not valid UTF-8
CREME = b"cr\xe8me"  # "crème"
SAID = "Welcome to the Café Crème, the best in town"


@pytest.fixture
def indexed(cli, tmp_path: Path) -> Path:
    from media_factory import Shot, make_video

    root = tmp_path / "videos"
    make_video(root / "party.mp4", [Shot(3.0, COLORS["red"]), Shot(3.0, COLORS["blue"])])
    (root / "party.srt").write_text(SRT, encoding="utf-8")
    make_video(root / "other.mp4", [Shot(3.0, COLORS["yellow"])])
    assert cli("index", root).exit_code == 0
    return root


def mediafind(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mediafind", *args],
        capture_output=True,
        env=dict(os.environ),
        timeout=300,
    )


def test_a_latin_1_query_is_searched_as_its_letters(indexed: Path):
    table = mediafind("search", CAFE)
    assert table.returncode == 0, table.stderr
    assert b"Traceback" not in table.stderr
    assert SAID.encode() in table.stdout  # shown whole, in UTF-8

    found = json.loads(mediafind("search", CAFE, "--json").stdout)
    assert found[0]["text"] == SAID and Path(found[0]["path"]).name == "party.mp4"

    line = mediafind("search", CAFE, "--format", "{name}|{text}", "--limit", "1")
    assert line.returncode == 0, line.stderr
    assert line.stdout == f"party.mp4|{SAID}\n".encode()

    speech = mediafind("search", CAFE, CREME, "--modality", "speech", "--paths")
    assert speech.returncode == 0, speech.stderr
    assert speech.stdout == f"{indexed / 'party.mp4'}\n".encode()

    # Nothing written in these videos: no result, and no crash either.
    text = mediafind("search", CAFE, "--modality", "text")
    assert text.returncode == 1 and b"Traceback" not in text.stderr, text.stderr


def test_latin_1_words_in_and_and_not(indexed: Path):
    both = mediafind("search", "welcome", "--and", CAFE, "--modality", "speech", "--json")
    assert both.returncode == 0, both.stderr
    assert [r["text"] for r in json.loads(both.stdout)] == [SAID]
    away = mediafind("search", "birthday", "--not", b"0.5:" + CREME, "--json")
    assert away.returncode == 0, away.stderr
    assert b"Traceback" not in away.stderr


# Each byte that is never valid alone in UTF-8, and some words mixing such
# bytes with valid UTF-8, with the text meant (worked out by hand for the mixed).
ODD_WORDS = [(bytes([byte]), bytes([byte]).decode("latin-1")) for byte in range(0x80, 0x100, 3)]
ODD_WORDS += [
    (b"na\xefve cr\xe8me br\xfbl\xe9e", "naïve crème brûlée"),
    (b"\xc3\xa9t\xe9", "été"),  # UTF-8 é, then Latin-1 é
    (b"\xe4\xf6\xfc \xdf", "äöü ß"),
]


@pytest.mark.usefixtures("fake_models")
def test_every_such_query_searches_as_the_latin_1_text(db_path: Path, library: Path):
    with Store.open(db_path, create=True) as store:
        index_paths(store, [library])
    with Store.open(db_path, create=False) as store:
        for raw, meant in ODD_WORDS:
            given = os.fsdecode(raw)  # what Python makes of these bytes in argv
            found = search(store, f"a {given} photo", parts=[parse_part(f"0.5:{given}")])
            wanted = search(store, f"a {meant} photo", parts=[parse_part(f"0.5:{meant}")])
            assert [(r.path, r.score) for r in found] == [(r.path, r.score) for r in wanted], raw
