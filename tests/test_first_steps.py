"""What a new user's first steps met: the quick start on a machine without
every folder, a model variable that must not fight the index, folders given
as models, every missing model in one line with nothing left behind, no
silent empty answers, values as people type them, and completions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo
from media_factory import make_audio

from mediafind.db import Store

ROOT = Path(__file__).resolve().parent.parent


# The quick start --------------------------------------------------------------


@pytest.mark.usefixtures("fake_models")
def test_the_quick_start_indexes_the_folders_that_exist(cli, tmp_path: Path, db_path: Path):
    home = tmp_path / "home"
    draw_photo(home / "Pictures" / "red.jpg", COLORS["red"])
    videos, music = home / "Videos", home / "Music"
    result = cli("index", home / "Pictures", videos, music)
    assert result.exit_code == 0
    # One warning names both missing folders, then the run goes on.
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"mediafind: warning: left out: {videos}: no such file or folder; "
        f"{music}: no such file or folder"
    ]
    with Store.open(db_path, create=False) as store:
        assert store.all_paths() == [str(home / "Pictures" / "red.jpg")]
        assert [root.path for root in store.roots()] == [str(home / "Pictures")]


def test_a_run_where_no_folder_exists_is_an_error_and_writes_nothing(
    cli, tmp_path: Path, db_path: Path
):
    videos, music = tmp_path / "Videos", tmp_path / "Music"
    result = cli("index", videos, music)
    assert result.exit_code == 2
    assert result.stderr == (
        f"mediafind: error: {videos}: no such file or folder; {music}: no such file or folder\n"
    )
    assert not db_path.exists()


# A model in the environment ---------------------------------------------------


def test_search_answers_with_the_index_model_whatever_the_environment_says(
    cli, library: Path, other_clip: str, monkeypatch
):
    # As README "Offline use" advises, MEDIAFIND_MODEL stays exported (the
    # conftest exports the tiny model); the index moves to another model.
    monkeypatch.setenv("MEDIAFIND_AUDIO_MODEL", "/nowhere")  # photos only: never needed
    assert cli("index", library, "--model", other_clip, "--reembed").exit_code == 0
    searched = cli("search", "a red photo", "--json")
    assert searched.exit_code == 0, searched.stderr
    assert len(json.loads(searched.stdout)) == 8
    # A model named on the command line is still refused, naming the option.
    asked = cli("search", "a red photo", "--model", os.environ["MEDIAFIND_MODEL"])
    assert asked.exit_code == 2 and "search without --model" in asked.stderr


def test_indexing_names_the_variable_that_disagrees_with_the_index(
    cli, library: Path, other_clip: str, tiny_clip: str, tmp_path: Path, monkeypatch
):
    assert cli("index", library, "--model", other_clip, "--reembed").exit_code == 0
    result = cli("index", library)  # MEDIAFIND_MODEL still names the first model
    assert result.exit_code == 2
    line = result.stderr
    assert line.startswith(f"mediafind: error: MEDIAFIND_MODEL={tiny_clip} asks for picture")
    assert "unset MEDIAFIND_MODEL to go on with" in line
    assert "--model" not in line
    # The same from the config file names the file's setting.
    monkeypatch.delenv("MEDIAFIND_MODEL")
    config = tmp_path / "config.toml"
    config.write_text(f"model = {tiny_clip!r}\n")
    from_file = cli("index", library).stderr
    assert f"remove the setting model in {config} to go on" in from_file
    assert "--model" not in from_file


# Folders as models --------------------------------------------------------------


def test_a_picture_model_folder_is_taken_without_local_dir(
    cli, library: Path, tiny_clip: str, monkeypatch
):
    folder = tiny_clip.removeprefix("local-dir:")
    monkeypatch.delenv("MEDIAFIND_MODEL")
    assert cli("index", library, "--model", folder, "--no-audio").exit_code == 0
    # The same folder with local-dir: is the same model: no re-embedding asked.
    assert cli("search", "red", "--model", f"local-dir:{folder}").exit_code == 0
    assert cli("search", "red", "--model", folder).exit_code == 0


def test_a_model_spec_that_is_neither_suggests_a_folder(cli, library: Path):
    result = cli("index", library, "--model", "no-such-model")
    assert result.exit_code == 2
    assert "local-dir:PATH, or its path" in result.stderr


# Every missing model at once, nothing left behind ---------------------------------


def test_missing_folders_of_two_models_are_named_in_one_line(
    cli, tmp_path: Path, db_path: Path, monkeypatch
):
    root = tmp_path / "media"
    draw_photo(root / "a.jpg", COLORS["red"])
    make_audio(root / "memo.wav", [("tone", 2.0)])
    clip, clap = tmp_path / "x" / "no-such-clip", tmp_path / "x" / "no-such-clap"
    monkeypatch.setenv("MEDIAFIND_MODEL", f"local-dir:{clip}")
    monkeypatch.setenv("MEDIAFIND_AUDIO_MODEL", str(clap))
    result = cli("index", root, "--no-speech")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("mediafind: error: 2 models this run needs cannot be had")
    assert f"the folder {clip} does not exist" in result.stderr
    assert f"the folder {clap} does not exist" in result.stderr
    # Nothing left behind: no index, no lock file, so the next search says
    # that there is no index rather than that it is empty.
    assert sorted(p.name for p in db_path.parent.iterdir() if p.name.startswith("index")) == []
    assert "no index at" in cli("search", "x").stderr


def test_a_malformed_model_leaves_no_index_behind(cli, library: Path, db_path: Path):
    assert cli("index", library, "--model", "no-such-model").exit_code == 2
    assert not db_path.exists()
    assert not db_path.with_name("index.db.lock").exists()


def test_a_failed_model_check_keeps_an_index_that_holds_files(
    cli, library: Path, tmp_path: Path, db_path: Path
):
    assert cli("index", library).exit_code == 0
    make_audio(tmp_path / "sounds" / "memo.wav", [("tone", 2.0)])
    result = cli("index", tmp_path / "sounds", "--audio-model", tmp_path / "gone", "--no-speech")
    assert result.exit_code == 2
    with Store.open(db_path, create=False) as store:
        assert len(store.all_paths()) == 8


# No silent empty answers ------------------------------------------------------------


def run_on_a_terminal(*args: str) -> tuple[int, str]:
    from test_new_user import run_on_a_terminal as run

    return run(*args)


def test_a_transcript_of_nothing_said_says_so(cli, tmp_path: Path):
    root = tmp_path / "sounds"
    make_audio(root / "hum.wav", [("tone", 3.0)])  # the voice detector hears no one
    assert cli("index", root).exit_code == 0
    piped = cli("transcript", root / "hum.wav")
    assert piped.exit_code == 1 and piped.stdout == "" and piped.stderr == ""
    code, said = run_on_a_terminal("transcript", str(root / "hum.wav"))
    assert code == 1
    assert f"mediafind: nothing is said in {root / 'hum.wav'}" in said


@pytest.mark.usefixtures("fake_models")
def test_a_photo_given_as_the_query_says_how_to_search_by_example(cli, library: Path):
    cli("index", library)
    red = next(library.rglob("red.jpg"))
    result = cli("search", red)
    assert result.exit_code == 2
    assert f"mediafind search --like {red}" in result.stderr
    assert f"mediafind similar {red}" in result.stderr
    # Words that merely name a file that is not media are still words.
    (library / "notes").write_text("x")
    assert cli("search", library / "notes").exit_code in (0, 1)


# Values as people type them -------------------------------------------------------


@pytest.mark.usefixtures("fake_models")
def test_photo_is_a_kind(cli, library: Path, tmp_path: Path):
    cli("index", library)
    photos = json.loads(cli("search", "red", "--type", "photo", "--json").stdout)
    images = json.loads(cli("search", "red", "--type", "image", "--json").stdout)
    assert photos == images and len(photos) == 8
    wrong = cli("search", "red", "--type", "song")
    assert wrong.exit_code == 2
    assert "'song' is not one of image (or photo), video, audio (or recording)" in wrong.stderr
    # The library takes people's words too (the results page, an assistant).
    with Store.open(tmp_path / "index.db", create=False) as store:
        from mediafind.query import search

        assert [r.path for r in search(store, "red", kinds=["photos"])] == [
            r["path"] for r in photos
        ]
    assert "Value error" not in wrong.stderr


COMMANDS = (
    ["index"],
    ["search"],
    ["similar"],
    ["transcript"],
    ["status"],
    ["duplicates"],
    ["forget"],
    ["prune"],
    ["serve"],
    ["roots"],
    ["roots", "remove"],
)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_no_internal_types(cli, command: list[str]):
    text = cli(*command, "--help").stdout
    for internal in ("<list", "<int", "<float", "<str>", "<path>", "<fp32", "[x>=", "range>"):
        assert internal not in text


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["search", "x", "--limit", "0"], "0 is out of range: expected a whole number at least 1"),
        (["search", "x", "--like-weight", "half"], "'half' is not a number"),
        (["duplicates", "--threshold", "2"], "expected a number from 0 to 1"),
        (["index", "--precision", "int4"], "'int4' is not one of fp32, int8"),
    ],
)
def test_bad_values_are_said_in_words(cli, args: list[str], said: str):
    result = cli(*args)
    assert result.exit_code == 2
    assert said in result.stderr
    assert "Value error" not in result.stderr and "Input should be" not in result.stderr


# Completions ----------------------------------------------------------------


def test_install_completion_installs_the_script_the_readme_copies(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "SHELL": "/bin/bash"}
    # Typer finds the shell from the parent process: run it under bash.
    subprocess.run(
        ["bash", "-c", f"{sys.executable} -m mediafind --install-completion"],
        env=env,
        check=True,
        capture_output=True,
    )
    installed = home / ".bash_completions" / "mediafind.sh"
    shipped = ROOT / "completions" / "mediafind.bash"
    assert installed.read_text().strip() == shipped.read_text().strip()
    assert f"source '{installed}'" in (home / ".bashrc").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "~/.bash_completions/mediafind.sh" in readme


def test_a_transcript_of_a_file_that_does_not_exist_says_so(cli, library: Path, tmp_path: Path):
    cli("index", library, "--no-audio")
    result = cli("transcript", tmp_path / "nonexist.wav")
    assert result.exit_code == 2
    assert result.stderr == f"mediafind: error: {tmp_path / 'nonexist.wav'}: no such file\n"
