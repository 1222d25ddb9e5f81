"""What the terminal shows: the play line of the top result, --format number
specs, the table piped to a script, preview sizes, and progress while a
model loads."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from mediafind.output import print_results_table
from mediafind.query import SearchResult


def table_text(results: list[SearchResult]) -> str:
    stream = io.StringIO()
    print_results_table(results, stream)
    return stream.getvalue()


# The play line ---------------------------------------------------------------

RECORDING = SearchResult("/m/rain noise.ogg", "audio", 2.4, 7.0, 9.0, "audio")
VIDEO = SearchResult("/m/holiday.mp4", "video", 1.1, 8.0, 10.0, "visual")
PHOTO = SearchResult("/m/beach.jpg", "image", 3.0, None, None, "visual")


def test_the_play_line_plays_the_top_result_whatever_its_kind():
    below = table_text([RECORDING, VIDEO]).splitlines()[-1]
    assert below == "play the top moment: mpv --start=7.0 '/m/rain noise.ogg'"
    below = table_text([VIDEO, RECORDING]).splitlines()[-1]
    assert below == "play the top moment: mpv --start=8.0 /m/holiday.mp4"


def test_a_top_photo_gets_no_play_line_for_another_result():
    text = table_text([PHOTO, VIDEO, RECORDING])
    assert "mpv" not in text and "play" not in text


@pytest.mark.parametrize(
    "name",
    ["it's a\nclip.mp4", "esc\x1b[31mred.mp4", "caf\udce9.mp4", "rtl\u202egpm.mp4"],
)
def test_the_play_line_pastes_back_the_exact_name(tmp_path, name: str):
    path = os.path.join(str(tmp_path), name)
    line = table_text([SearchResult(path, "video", 1.0, 3.0, 4.0, "visual")]).splitlines()[-1]
    assert "\x1b" not in line and "\n" not in line and "\u202e" not in line
    command = line.removeprefix("play the top moment: mpv --start=3.0 ")
    # bash reads the word back: the bytes it prints are the name's on disk.
    pasted = subprocess.run(["bash", "-c", f"printf %s {command}"], capture_output=True, check=True)
    assert pasted.stdout == os.fsencode(path)
