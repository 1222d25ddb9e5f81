"""Where things live and which defaults apply.

One place decides every path and default: a command-line flag wins over an
environment variable, which wins over the built-in default.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "mediafind"

# ViT-B-32-256 trained on DataComp-1B: as good as the best ViT-B/32 weights on
# open_clip's text-to-image retrieval benchmarks (MSCOCO R@1 0.399, Flickr30k
# R@1 0.649), the best B/32 zero-shot ImageNet accuracy (72.8%), at 11.5 image
# GFLOPs, a third of ViT-B-16. The README explains the choice.
DEFAULT_MODEL = "ViT-B-32-256:datacomp_s34b_b86k"

# LAION's CLAP trained on general sounds, music and speech together (its
# checkpoint reports 89.98% zero-shot accuracy on ESC-50); the README explains
# the choice.
DEFAULT_AUDIO_MODEL = "laion/larger_clap_general"

ENV_DB = "MEDIAFIND_DB"
ENV_AUDIO_MODEL = "MEDIAFIND_AUDIO_MODEL"
ENV_MODEL = "MEDIAFIND_MODEL"
ENV_DEVICE = "MEDIAFIND_DEVICE"
ENV_SQLITE_DRIVER = "MEDIAFIND_SQLITE_DRIVER"

DEVICES = ("auto", "cpu", "cuda", "mps")


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "index.db"


def resolve_db_path(flag: str | os.PathLike[str] | None = None) -> Path:
    """The index file: --db, else $MEDIAFIND_DB, else the per-user data folder."""
    value = flag or os.environ.get(ENV_DB)
    if value:
        return Path(value).expanduser().absolute()
    return default_db_path()


def requested_model(flag: str | None = None) -> str | None:
    """The model the user asked for (--model, else $MEDIAFIND_MODEL), or None.

    None means "whatever the index was built with", falling back to
    `DEFAULT_MODEL` for a new index; the caller decides, since only it knows
    the index.
    """
    return flag or os.environ.get(ENV_MODEL) or None


def requested_audio_model(flag: str | None = None) -> str | None:
    """--audio-model, else $MEDIAFIND_AUDIO_MODEL, else None (the index's own)."""
    return flag or os.environ.get(ENV_AUDIO_MODEL) or None


def resolve_device(flag: str | None = None) -> str:
    """The device name the user asked for: --device, else $MEDIAFIND_DEVICE, else auto."""
    return flag or os.environ.get(ENV_DEVICE) or "auto"


def sqlite_driver_choice() -> str:
    """'auto' unless $MEDIAFIND_SQLITE_DRIVER forces 'sqlite3' or 'sqlean'."""
    return os.environ.get(ENV_SQLITE_DRIVER, "auto").strip().lower() or "auto"
