"""File names as they are found in the wild: bytes that are not UTF-8, control
characters, escape sequences. Indexed and found like any other; shown escaped
to people; written exactly to programs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")

LATIN1_FILE = b"caf\xe9.jpg"
LATIN1_FOLDER = b"\xe9t\xe9"
CLEAR_SCREEN = "clear\x1b[2J\x1b[H.jpg"
SET_TITLE = "title\x1b]0;PWNED\x07.jpg"
NEWLINE = "two\nlines.jpg"


def fs(name: bytes) -> str:
    return os.fsdecode(name)


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "hostile"
    names = list(COLORS)
    for number in range(6):
        draw_photo(root / f"good-{number}.jpg", COLORS[names[number]])
    draw_photo(Path(fs(os.fsencode(root) + b"/" + LATIN1_FILE)), COLORS["orange"])
    draw_photo(Path(fs(os.fsencode(root) + b"/" + LATIN1_FOLDER + b"/x.jpg")), COLORS["purple"])
    draw_photo(root / CLEAR_SCREEN, COLORS["white"])
    draw_photo(root / NEWLINE, COLORS["black"])
    (root / SET_TITLE).write_bytes(b"not a picture")  # fails: its name reaches a warning
    return root


def raw_names(root: Path) -> set[bytes]:
    out = set()
    for folder, _, files in os.walk(os.fsencode(root)):
        for name in files:
            out.add(os.path.join(folder, name))
    return out


def test_every_name_is_indexed_and_found(cli, hostile: Path):
    result = cli("index", hostile)
    assert result.exit_code == 0, result.stderr
    assert "10 new" in result.stderr and "1 failed" in result.stderr
    found = cli("search", "x", "--paths", "-0", "--limit", "50")
    assert found.exit_code == 0
    listed = set(found.stdout_bytes.split(b"\0")[:-1])
    expected = raw_names(hostile) - {os.fsencode(hostile / SET_TITLE)}
    assert listed == expected
    for name in listed:  # the exact bytes open the file
        assert os.path.isfile(name)


def test_format_writes_the_exact_bytes(cli, hostile: Path):
    cli("index", hostile)
    out = cli("search", "x", "--format", "{name}", "-0", "--limit", "50").stdout_bytes
    assert LATIN1_FILE in out.split(b"\0")
    assert CLEAR_SCREEN.encode() in out.split(b"\0")


def test_json_round_trips_a_name_that_is_not_utf8(cli, hostile: Path):
    cli("index", hostile)
    out = cli("search", "x", "--json", "--limit", "50").stdout_bytes
    out.decode("utf-8")  # valid UTF-8 whatever the names hold
    assert b"\\udce9" in out  # the byte 0xE9, escaped the way Python's surrogateescape reads it
    paths = {os.fsencode(item["path"]) for item in json.loads(out)}
    assert os.fsencode(hostile) + b"/" + LATIN1_FILE in paths
    assert all(os.path.isfile(path) for path in paths)
    lines = cli("search", "x", "--jsonl", "--limit", "50").stdout_bytes.splitlines()
    assert {os.fsencode(json.loads(line)["path"]) for line in lines} == paths


def test_people_see_escapes_not_control_characters(cli, hostile: Path):
    indexed = cli("index", hostile)
    table = cli("search", "x", "--limit", "50")
    status = cli("status", "--failed")
    for output in (indexed.stderr, table.stdout, status.stdout, cli("status").stdout):
        assert "\x1b" not in output and "\x07" not in output
        assert "\udce9" not in output
    assert "title\\x1b]0;PWNED\\x07.jpg" in indexed.stderr  # the failed file's warning
    assert "clear\\x1b[2J\\x1b[H.jpg" in table.stdout
    assert "caf\\xe9.jpg" in table.stdout
    assert "two\\nlines.jpg" in table.stdout
    assert "title\\x1b]0;PWNED\\x07.jpg" in status.stdout
    # Programs still get the name itself.
    names = {
        os.path.basename(item["path"])
        for item in json.loads(cli("search", "x", "--json", "--limit", "50").stdout)
    }
    assert CLEAR_SCREEN in names and NEWLINE in names


def test_duplicates_and_roots_escape_names(cli, tmp_path: Path):
    root = tmp_path / "dupes\x1b[31m"
    draw_photo(root / "a\x1b]0;x\x07.jpg", COLORS["red"])
    draw_photo(root / "b.jpg", COLORS["red"])
    cli("index", root)
    groups = cli("duplicates")
    assert groups.exit_code == 0
    assert "\x1b" not in groups.stdout and "a\\x1b]0;x\\x07.jpg" in groups.stdout
    roots = cli("roots")
    assert "\x1b" not in roots.stdout and "dupes\\x1b[31m" in roots.stdout


def test_an_unexpected_error_on_one_file_is_its_warning(cli, tmp_path: Path, monkeypatch):
    import mediafind.filework as filework

    root = tmp_path / "some"
    for number, name in enumerate(["a", "b", "c"]):
        draw_photo(root / f"{name}.jpg", list(COLORS.values())[number])
    real = filework.decode_file

    def flaky(prepared, models, emit):  # type: ignore[no-untyped-def]
        if prepared.task.found.path.endswith("b.jpg"):
            raise RuntimeError("a bug in a decoder")
        return real(prepared, models, emit)

    monkeypatch.setattr(filework, "decode_file", flaky)
    result = cli("index", root)
    assert result.exit_code == 0
    assert "b.jpg: unexpected error (RuntimeError: a bug in a decoder)" in result.stderr
    assert "2 new" in result.stderr and "1 failed" in result.stderr


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{path.__class__}", "unknown field {path.__class__}"),
        ("{path[0]}", "unknown field {path[0]}"),
        ("{path:>200000000}", "at most 1000"),
        ("{score:{path}}", "a field takes only"),
        ("{path!r}", "conversions are not supported"),
        ("{path", "literal braces"),
    ],
)
def test_format_templates_are_only_fields_with_simple_specs(
    cli, library: Path, template, complaint
):
    cli("index", library)
    result = cli("search", "x", "--format", template)
    assert result.exit_code == 2
    assert result.stderr.startswith("mediafind: error: --format: ")
    assert complaint in result.stderr


def test_format_widths_and_alignment(cli, library: Path):
    cli("index", library)
    out = cli("search", "x", "--format", "[{kind:>8}|{name:.3}]", "--limit", "1").stdout
    assert out == "[   image|" + out[10:13] + "]\n"
