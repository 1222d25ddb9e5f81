"""The config file: defaults for model, sound model, device, excludes, limit, output;
precedence flag > environment > config file > built-in default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

from mediafind import config
from mediafind.errors import UsageError


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def requested_model(flag: str | None) -> str | None:
    chosen = config.requested(flag, "MEDIAFIND_MODEL", "model")
    return chosen.value if chosen else None


def test_model_precedence(config_file: Path, monkeypatch):
    monkeypatch.delenv("MEDIAFIND_MODEL")
    assert requested_model(None) is None  # built-in default applies later
    write(config_file, 'model = "file:model"\n')
    assert config.requested(None, "MEDIAFIND_MODEL", "model") == config.Choice(
        "file:model", "config", f"model in {config_file}"
    )
    monkeypatch.setenv("MEDIAFIND_MODEL", "env:model")
    assert config.requested(None, "MEDIAFIND_MODEL", "model") == config.Choice(
        "env:model", "environment", "MEDIAFIND_MODEL"
    )
    assert requested_model("flag:model") == "flag:model"


def test_audio_model_and_device_precedence(config_file: Path, monkeypatch):
    monkeypatch.delenv("MEDIAFIND_AUDIO_MODEL")
    monkeypatch.delenv("MEDIAFIND_DEVICE")
    assert config.resolve_device(None) == "auto"
    write(config_file, 'audio_model = "org/file"\ndevice = "cuda"\n')
    assert config.requested(None, "MEDIAFIND_AUDIO_MODEL", "audio_model") == config.Choice(
        "org/file", "config", f"audio_model in {config_file}"
    )
    assert config.resolve_device(None) == "cuda"
    monkeypatch.setenv("MEDIAFIND_DEVICE", "mps")
    assert config.resolve_device(None) == "mps"
    assert config.resolve_device("cpu") == "cpu"


def test_limit_output_and_excludes(config_file: Path):
    assert config.resolve_limit(None) == 20
    assert config.resolve_output(None) == "table"
    assert config.default_excludes() == ()
    write(config_file, 'limit = 3\noutput = "jsonl"\nexclude = ["*.tmp", "Trash"]\n')
    assert config.resolve_limit(None) == 3 and config.resolve_limit(7) == 7
    assert config.resolve_output(None) == "jsonl" and config.resolve_output("paths") == "paths"
    assert config.default_excludes() == ("*.tmp", "Trash")


def test_config_file_drives_the_cli(cli, config_file: Path, library: Path):
    write(config_file, 'limit = 2\noutput = "jsonl"\nexclude = ["2023"]\n')
    assert cli("index", library).exit_code == 0
    lines = cli("search", "a lake").stdout.splitlines()
    assert len(lines) == 2
    assert all("2023" not in json.loads(line)["path"] for line in lines)
    assert len(cli("search", "a lake", "--limit", "4", "--paths").stdout.splitlines()) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown setting 'colour'"),
        ('limit = "ten"\n', "limit must be a whole number"),
        ("limit = 0\n", "limit must be at least 1"),
        ('output = "xml"\n', "output must be one of"),
        ("exclude = [1, 2]\n", "exclude must be a list of glob strings"),
        ("model = [\n", "config file"),
    ],
)
def test_bad_config_is_a_clear_error(config_file: Path, text: str, message: str):
    write(config_file, text)
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        config.file_settings()


def test_bad_config_reaches_the_cli_as_one_line(cli, config_file: Path, library: Path):
    write(config_file, "limit = true\n")
    result = cli("index", library)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and str(config_file) in result.stderr


def test_status_shows_the_config_path(cli, config_file: Path, tmp_path: Path):
    draw_photo(tmp_path / "p" / "a.jpg", COLORS["red"])
    cli("index", tmp_path / "p")
    data = json.loads(cli("status", "--json").stdout)
    assert data["config_path"] == str(config_file) and data["config_exists"] is False
    assert str(config_file) in cli("status").stdout
