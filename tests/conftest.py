"""Shared fixtures: tiny local models, generated photos, an isolated environment.

No test touches the network: the hub is forced offline and every model is built
here with random weights and loaded through `local-dir:` like a user's model.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# Before anything imports huggingface_hub, which reads this once: no test may
# reach the network, and the hub library refuses every request when it is set.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from fake_modality import fake_modalities
from tiny_models import build_tiny_clap, build_tiny_clip, build_tiny_whisper

from mediafind.cli import app


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`local-dir:` spec of a tiny open_clip model (32-d, 32 px input)."""
    return "local-dir:" + str(build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"), seed=0))


@pytest.fixture(scope="session")
def other_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second tiny model with different weights: vectors must never mix with the first."""
    return "local-dir:" + str(build_tiny_clip(tmp_path_factory.mktemp("other-clip"), seed=1))


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder of a tiny transformers CLAP model (16-d) with its own tokenizer."""
    return str(build_tiny_clap(tmp_path_factory.mktemp("tiny-clap"), seed=0))


@pytest.fixture(scope="session")
def other_clap(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_clap(tmp_path_factory.mktemp("other-clap"), seed=1))


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder of a tiny faster-whisper model (random weights, its own tokenizer)."""
    return str(build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper") / "model", seed=0))


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted models, shared by the session so each tiny model converts once."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_clip: str,
    tiny_clap: str,
    tiny_whisper: str,
    model_cache: Path,
) -> Iterator[None]:
    monkeypatch.setenv("MEDIAFIND_DB", str(tmp_path / "index.db"))
    monkeypatch.setenv("MEDIAFIND_MODEL", tiny_clip)
    monkeypatch.setenv("MEDIAFIND_AUDIO_MODEL", tiny_clap)
    monkeypatch.setenv("MEDIAFIND_SPEECH_MODEL", tiny_whisper)
    monkeypatch.setenv("MEDIAFIND_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("MEDIAFIND_DEVICE", "cpu")
    monkeypatch.setenv("MEDIAFIND_CACHE", str(model_cache))
    monkeypatch.delenv("MEDIAFIND_RUNTIME", raising=False)
    monkeypatch.delenv("MEDIAFIND_SQLITE_DRIVER", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # Thumbnails go to the per-user cache: never the real one, whose `prune`
    # would drop what the test's index does not hold.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    yield


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The registry with deterministic numpy stand-ins for the picture and sound
    models (same names, kinds and options): for tests where the model is not
    the subject. Real files are still decoded by the real readers."""
    from mediafind import modalities

    fakes = {modality.name: modality for modality in fake_modalities()}
    monkeypatch.setattr(modalities, "_REGISTRY", fakes)
    return fakes


# Runs `mediafind ARGS` in a subprocess with the fake models registered.
FAKE_CLI = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    "from fake_modality import fake_modalities; from mediafind import modalities; "
    "modalities._REGISTRY.clear(); [modalities.register(m) for m in fake_modalities()]; "
    "from mediafind.entry import main; sys.argv[0] = 'mediafind'; main()"
)


def fake_cli(*args: str) -> list[str]:
    """The argv of `mediafind ARGS` run in a subprocess with the fake models."""
    return [sys.executable, "-c", FAKE_CLI, *args]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "index.db"


COLORS = {
    "red": (220, 30, 30),
    "green": (30, 200, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
    "purple": (140, 40, 180),
    "orange": (250, 140, 20),
}


def draw_photo(
    path: Path,
    color: tuple[int, int, int] = (200, 50, 50),
    size: tuple[int, int] = (160, 120),
    *,
    stripe: tuple[int, int, int] | None = None,
    orientation: int | None = None,
    quality: int = 90,
) -> Path:
    """A generated photo: a solid colour with an optional stripe across the top third."""
    from PIL import Image

    image = Image.new("RGB", size, color)
    if stripe is not None:
        image.paste(stripe, (0, 0, size[0], size[1] // 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, object] = {}
    if path.suffix.lower() in (".jpg", ".jpeg"):
        kwargs["quality"] = quality
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    image.save(path, **kwargs)
    return path


@pytest.fixture
def photo() -> Callable[..., Path]:
    return draw_photo


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A small photo library: eight distinct photos in nested folders."""
    root = tmp_path / "Pictures"
    names = list(COLORS)
    for number, name in enumerate(names):
        folder = root / ("2023" if number % 2 else "2024") / ("trip" if number % 3 == 0 else "")
        stripe = COLORS[names[(number + 3) % len(names)]]
        draw_photo(folder / f"{name}.jpg", COLORS[name], stripe=stripe)
    return root


class Cli:
    """Runs `mediafind` in-process with separate stdout and stderr."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return self.runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()


# How to take a current index back to an older schema, step by step: tests of
# migrations make an index with today's code, then turn it into what an older
# mediafind left.
UNDO_MIGRATION = {
    8: ("ALTER TABLE segment_words DROP COLUMN box",),
    7: (
        "DROP TRIGGER segment_words_added",
        "DROP TRIGGER segment_words_removed",
        "DROP TABLE words_fts",
        "DROP TABLE words_trigram",
        "DROP TABLE segment_words",
        "ALTER TABLE files DROP COLUMN language",
    ),
    # 6 only dropped constraints: an index without them reads the same.
    6: (),
    5: ("ALTER TABLE roots DROP COLUMN excludes", "DROP TABLE forgotten"),
    4: ("ALTER TABLE spaces DROP COLUMN shards",),
    3: ("DROP INDEX files_captured_at", "ALTER TABLE files DROP COLUMN captured_at"),
}


def downgrade(conn, version: int) -> None:  # type: ignore[no-untyped-def]
    """Undo the migrations after `version` on an open connection."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for number in range(current, version, -1):
        for statement in UNDO_MIGRATION[number]:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env
