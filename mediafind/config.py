"""Where things live and which defaults apply.

One place decides every path and default: a command-line flag wins over an
environment variable, which wins over the config file, which wins over the
built-in default.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from mediafind.errors import UsageError

APP_NAME = "mediafind"

ENV_DB = "MEDIAFIND_DB"
ENV_DEVICE = "MEDIAFIND_DEVICE"
ENV_SQLITE_DRIVER = "MEDIAFIND_SQLITE_DRIVER"
ENV_CONFIG = "MEDIAFIND_CONFIG"
ENV_CACHE = "MEDIAFIND_CACHE"
ENV_RUNTIME = "MEDIAFIND_RUNTIME"
ENV_CLUSTER = "MEDIAFIND_CLUSTER"

DEFAULT_LIMIT = 20
# `mediafind serve` listens on the loopback address: this machine only.
DEFAULT_SERVE_HOST = "127.0.0.1"
OUTPUT_STYLES = ("table", "json", "jsonl", "paths")
# The config file's keys and the type each takes; the registry declares each
# modality's model key (`declare_key`) as it registers the modality.
CONFIG_KEYS: dict[str, type] = {
    "device": str,
    "runtime": str,
    # A Ray cluster's address for indexing, and LOCAL=REMOTE path maps.
    "cluster": str,
    "path_map": list,
    "exclude": list,
    "limit": int,
    "output": str,
    "preview": bool,
}

# "auto" runs models on the CPU with ONNX Runtime when they convert, else torch.
RUNTIMES = ("auto", "torch")


def config_path() -> Path:
    """The optional TOML config file: $MEDIAFIND_CONFIG, else the per-user config folder."""
    value = os.environ.get(ENV_CONFIG)
    if value:
        return Path(value).expanduser().absolute()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def _config_source() -> str:
    """How the config file was chosen, for messages about it."""
    return f"{ENV_CONFIG}={os.environ[ENV_CONFIG]}" if os.environ.get(ENV_CONFIG) else "config file"


_read: dict[tuple[Path, int, int], dict[str, Any]] = {}


def file_settings() -> dict[str, Any]:
    """The config file's settings, checked; {} when there is no file.

    Read once per version of the file: one command asks for several settings.
    """
    path = config_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}  # the file is optional
    except OSError as error:
        raise UsageError(f"{_config_source()}: cannot read {path} ({error.strerror})") from error
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(
            f"{_config_source()}: {path} is not a regular file; the config file is a TOML file"
        )
    version = (path, info.st_mtime_ns, info.st_size)
    if version not in _read:
        _read.clear()
        _read[version] = _parse_settings(path)
    return _read[version]


def _parse_settings(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        # utf-8-sig: editors on Windows start UTF-8 files with a byte order mark.
        settings = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"config file {path}: {error}") from error
    keys = CONFIG_KEYS
    for key, value in settings.items():
        expected = keys.get(key)
        if expected is None:
            known = ", ".join(keys)
            raise UsageError(f"config file {path}: unknown setting {key!r} (known: {known})")
        # TOML's true and false are Python bools, which are also ints.
        if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
            kinds = {str: "a string", list: "a list", int: "a whole number", bool: "true or false"}
            kind = kinds[expected]
            raise UsageError(f"config file {path}: {key} must be {kind}, not {value!r}")
    if "exclude" in settings and not all(isinstance(g, str) for g in settings["exclude"]):
        raise UsageError(f"config file {path}: exclude must be a list of glob strings")
    if "path_map" in settings and not all(isinstance(m, str) for m in settings["path_map"]):
        raise UsageError(f"config file {path}: path_map must be a list of LOCAL=REMOTE strings")
    if settings.get("output", "table") not in OUTPUT_STYLES:
        raise UsageError(f"config file {path}: output must be one of {', '.join(OUTPUT_STYLES)}")
    if settings.get("runtime", "auto") not in RUNTIMES:
        raise UsageError(f"config file {path}: runtime must be one of {', '.join(RUNTIMES)}")
    if settings.get("limit", 1) < 1:
        raise UsageError(f"config file {path}: limit must be at least 1")
    return settings


def declare_key(key: str, kind: type) -> None:
    """A setting the config file may hold, declared by whoever reads it (the
    registry, for each modality's model): this module reads the file and
    imports none of them."""
    if CONFIG_KEYS.get(key, kind) is not kind:
        raise ValueError(f"the config key {key!r} is declared twice, with two types")
    CONFIG_KEYS[key] = kind
    _read.clear()  # a file read before the key was known is checked again


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "index.db"


def resolve_db_path(flag: str | os.PathLike[str] | None = None) -> Path:
    """The index file: --db, else $MEDIAFIND_DB, else the per-user data folder."""
    value = flag or os.environ.get(ENV_DB)
    if value:
        return Path(value).expanduser().absolute()
    return default_db_path()


@dataclass(frozen=True)
class Choice:
    """A value and where it came from, so that a message about it names what
    the user did: an option they typed, a variable or a config key they set,
    or nothing at all (the index's own, or the built-in default)."""

    value: str
    source: str  # "option", "environment", "config", "index" or "default"
    where: str = ""  # the variable's name, or the config file and key

    def described(self, what: str) -> str:
        """How a message names it: `{argument} SPEC` (an option: the CLI fills
        in its name), `MEDIAFIND_MODEL=SPEC`, `the index's picture model SPEC`."""
        if self.source == "option":
            return f"{{argument}} {self.value}"
        if self.source == "environment":
            return f"{self.where}={self.value}"
        if self.source == "config":
            return f"{self.where} = {self.value!r}"
        if self.source == "index":
            return f"the index's {what} {self.value}"
        return f"the default {what} {self.value}"

    def withdrawn(self) -> str:
        """How to stop asking for it: what a message tells the user to do."""
        if self.source == "environment":
            return f"unset {self.where}"
        if self.source == "config":
            return f"remove the setting {self.where}"
        return "leave out {argument}"


def requested(flag: str | None, env: str, key: str) -> Choice | None:
    """What the user asked for: the option, else the environment variable, else
    the config file's key; None when nothing was asked ("whatever the index was
    built with, else the default": only the caller knows the index)."""
    if flag:
        return Choice(flag, "option")
    if os.environ.get(env):
        return Choice(os.environ[env], "environment", env)
    value = file_settings().get(key)
    if value:
        return Choice(value, "config", f"{key} in {config_path()}")
    return None


def resolve_device(flag: str | None = None) -> str:
    """--device, else $MEDIAFIND_DEVICE, else the config file, else auto."""
    return flag or os.environ.get(ENV_DEVICE) or file_settings().get("device") or "auto"


def resolve_runtime() -> str:
    """$MEDIAFIND_RUNTIME, else the config file, else auto: whether CPU work may
    use the ONNX Runtime fast path ("auto") or must use torch ("torch")."""
    value = (os.environ.get(ENV_RUNTIME) or file_settings().get("runtime") or "auto").lower()
    if value not in RUNTIMES:
        raise UsageError(f"{ENV_RUNTIME}={value!r}: expected one of {', '.join(RUNTIMES)}")
    return value


def resolve_cluster(flag: str | None = None) -> Choice | None:
    """The Ray cluster that indexes: --cluster, else $MEDIAFIND_CLUSTER, else the
    config file's `cluster`; None (or "local"): this machine alone."""
    choice = requested(flag, ENV_CLUSTER, "cluster")
    return None if choice is None or choice.value == "local" else choice


def resolve_path_maps(flags: list[str] | None = None) -> list[Choice]:
    """Where the cluster's workers find this machine's files (LOCAL=REMOTE):
    the --path-map options given, else the config file's `path_map`."""
    if flags:
        return [Choice(text, "option") for text in flags]
    where = f"path_map in {config_path()}"
    return [Choice(text, "config", where) for text in file_settings().get("path_map", ())]


def cache_root() -> Path:
    """Where converted models live: $MEDIAFIND_CACHE, else the per-user cache folder."""
    value = os.environ.get(ENV_CACHE)
    if value:
        return Path(value).expanduser().absolute()
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "models"


def thumbnails_root() -> Path:
    """Where thumbnails of results are kept: the per-user cache folder
    (`~/.cache/mediafind/thumbnails` on Linux), beside the converted models'
    default home; unlike them, bounded in size and remade when dropped."""
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "thumbnails"


def default_excludes() -> tuple[str, ...]:
    """The config file's exclude globs, applied to every folder indexed."""
    return tuple(file_settings().get("exclude", ()))


def resolve_limit(flag: int | None) -> int:
    return flag or file_settings().get("limit") or DEFAULT_LIMIT


def resolve_preview(flag: bool | None) -> bool:
    """Whether a results table shows thumbnails (where stdout is a terminal):
    --preview or --no-preview, else the config file's `preview`, else no."""
    return flag if flag is not None else bool(file_settings().get("preview", False))


def resolve_output(chosen: str | None) -> str:
    """The output style: the flag given, else the config file's, else a table."""
    return chosen or file_settings().get("output") or "table"


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def sqlite_driver_choice() -> str:
    """'auto' unless $MEDIAFIND_SQLITE_DRIVER forces 'sqlite3' or 'sqlean'."""
    return os.environ.get(ENV_SQLITE_DRIVER, "auto").strip().lower() or "auto"
