"""What the terminal shows: the play line of the top result, --format number
specs, the table piped to a script, preview sizes, and progress while a
model loads."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import termios

import pytest
from conftest import COLORS, draw_photo, fake_cli
from media_factory import Shot, make_audio, make_video
from rich.console import Console

from mediafind.events import FileDone, FileProgress, ModelPreparing, ModelReady, ScanDone
from mediafind.output import IndexReporter, print_results_table
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


# The table piped -------------------------------------------------------------


@pytest.mark.usefixtures("fake_models")
def test_a_piped_table_keeps_each_path_whole_and_pads_no_line(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    root = tmp_path / ("a rather long folder name for holiday photos " * 2).strip()
    photos = [draw_photo(root / name, COLORS["blue"]) for name in ("beach.jpg", "sea side.jpg")]
    cli("index", root)
    result = cli("search", "beach")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "\x1b" not in result.stdout  # no colour, no hyperlink escapes in a pipe
    assert [line for line in lines if line != line.rstrip()] == []
    for photo in photos:
        assert any(line.endswith(f"  {photo}") for line in lines[1:])
    assert len(lines) == 3  # the header and one line per result, nothing folded


# Previews --------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[\]_][^\x07\x1b]*(?:\x07|\x1b\\)")


def in_a_plain_terminal(arguments: list[str], columns: int) -> str:
    """What a program writes to a terminal `columns` wide that answers no
    graphics query (so pictures are coloured half blocks), without escapes."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environment = {**os.environ, "TERM": "xterm-256color", "NO_COLOR": ""}
    environment.pop("COLUMNS", None)
    process = subprocess.Popen(arguments, stdin=follower, stdout=follower, env=environment)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the program has ended
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0
    os.close(leader)
    return ANSI.sub("", output.decode("utf-8", "replace"))


@pytest.mark.usefixtures("fake_models")
def test_previews_are_a_fifth_of_a_wide_terminal_and_sounds_get_a_symbol(tmp_path):
    library = tmp_path / "lib"
    draw_photo(library / "red.jpg", COLORS["red"], size=(320, 240))
    make_audio(library / "tone.wav", [("tone", 2.0)])
    indexing = subprocess.run(fake_cli("index", str(library)), capture_output=True)
    assert indexing.returncode == 0, indexing.stderr
    shown = in_a_plain_terminal(fake_cli("search", "x", "--preview"), columns=160)
    rows = shown.splitlines()
    widest = max(len(run) for row in rows for run in re.findall("▀+", row))
    assert widest == 160 // 5  # cells of the photo's picture
    # A 4:3 picture 32 cells wide is 24 half blocks, 12 rows, tall.
    assert sum("▀" in row for row in rows) == 12
    recording = next(row for row in rows if "tone.wav" in row)
    assert "♪" in recording and "▀" not in recording


# Progress while a model loads -------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def terminal_reporter(clock: FakeClock) -> IndexReporter:
    reporter = IndexReporter(io.StringIO(), clock=clock)
    reporter.console = Console(file=reporter.stream, force_terminal=True, width=160)
    return reporter


def progress_line(reporter: IndexReporter) -> str:
    assert reporter.progress is not None
    shown = Console(file=io.StringIO(), width=160, color_system=None)
    shown.print(reporter.progress.make_tasks_table(reporter.progress.tasks))
    return shown.file.getvalue()  # type: ignore[attr-defined]


def test_a_model_loaded_after_a_pass_is_shown_not_its_last_file():
    with terminal_reporter(FakeClock()) as reporter:
        reporter(ScanDone(found=2, to_process=2, work_bytes=300))
        reporter(FileProgress("/m/whistle.wav", 200, 3.0, 3.0))
        reporter(FileDone("/m/photo.jpg", "embedded", 100))
        reporter(FileDone("/m/whistle.wav", "embedded", 200))
        reporter(ModelPreparing("whisper-base", "loading it", once=False))
        # The finished bar, frozen at "whistle.wav 0:03/0:03", is gone.
        assert reporter.progress is None and reporter.status is not None
        assert "preparing whisper-base: loading it" in str(reporter.status.renderable.text)
        reporter(ModelReady("whisper-base", 4.0))
        assert reporter.status is None
    # A load is paid every run: no "ready for this CPU, once" line for it.
    assert "ready for this CPU" not in reporter.stream.getvalue()


def test_the_time_left_keeps_a_model_load_mid_pass_out_of_the_rate():
    clock = FakeClock()
    with terminal_reporter(clock) as reporter:
        reporter(ScanDone(found=3, to_process=3, work_bytes=1000))
        clock.now = 1.0
        reporter(FileDone("/m/a.jpg", "embedded", 100))
        # 100 bytes in 1 s: 900 bytes left, 9 s.
        assert "0:00:09" in progress_line(reporter)
        reporter(ModelPreparing("laion/clap", "loading it", once=False))
        assert "preparing laion/clap: loading it" in progress_line(reporter)
        assert "a.jpg" not in progress_line(reporter)
        clock.now = 361.0  # six minutes of loading
        assert "0:00:09" in progress_line(reporter)
        reporter(ModelReady("laion/clap", 360.0))
        clock.now = 362.0
        reporter(FileDone("/m/b.jpg", "embedded", 100))
        # 200 bytes in 2 s of work: 800 bytes left, 8 s, not six minutes.
        line = progress_line(reporter)
        assert "0:00:08" in line and "b.jpg" in line
