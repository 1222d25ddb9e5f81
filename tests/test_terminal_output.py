"""What the terminal shows: the play line of the top result, --format number
specs, the table piped to a script, preview sizes, and progress while a
model loads."""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest
from conftest import COLORS, draw_photo
from media_factory import Shot, make_video

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


# --format number specs -------------------------------------------------------


@pytest.mark.usefixtures("fake_models")
def test_format_takes_number_types_on_number_fields(cli, tmp_path):
    root = tmp_path / "media"
    make_video(root / "clip.mp4", [Shot(2, (200, 30, 30)), Shot(2, (30, 30, 200))])
    draw_photo(root / "photo.jpg", COLORS["green"])
    cli("index", root, "--no-audio")
    shown = cli("search", "x", "--format", "{rank:02d} {score:+.2f} [{start:>6.1f}] {kind:s}")
    assert shown.exit_code == 0, shown.stderr
    found = json.loads(cli("search", "x", "--json").stdout)

    # Worked out from the JSON's numbers; a photo has no start: six blanks.
    def start(seconds: float | None) -> str:
        return " " * 6 if seconds is None else f"{seconds:6.1f}"

    expected = [
        f"{rank:02d} {r['score']:+.2f} [{start(r['start'])}] {r['kind']}"
        for rank, r in enumerate(found, start=1)
    ]
    assert shown.stdout.splitlines() == expected
    assert "[      ] image" in shown.stdout


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{path:.2f}", "{path:.2f}: path is text; it takes only the type s"),
        ("{start:d}", "{start:d}: start is a number; it takes the type s (text) or f, F, e"),
        ("{score:+}", "{score:+}: a sign and = alignment are for numbers; give a type"),
    ],
)
def test_a_type_that_does_not_fit_its_field_is_a_clear_error(cli, library, template, complaint):
    cli("index", library)
    refused = cli("search", "x", "--format", template)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"mediafind: error: --format: {complaint}")
    assert "Traceback" not in refused.stderr
