"""mediafind: search a personal media library by meaning.

The library API, for use without the command line::

    from pathlib import Path
    from mediafind import Store, index_paths, search

    with Store.open(Path("index.db"), create=True) as store:
        index_paths(store, ["~/Pictures"])
        for result in search(store, "a red bicycle"):
            print(result.score, result.path)

Models are chosen as the command line chooses them (`models_for_index`):
$MEDIAFIND_MODEL and the config file, else the index's own, else the
defaults. Submodules are imported on first use, so `import mediafind` stays
cheap; public names differ from submodule names, so importing a submodule
never hides one.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# Nothing leaves the machine. ONNX Runtime 1.29 and later, in the official
# wheels, sends usage telemetry (it resolved mobile.events.data.microsoft.com
# ten seconds into an index run); it reads this variable once, when its
# library loads, so it is set here, before any mediafind code can import it,
# in every process that imports mediafind (worker processes included). The
# Hugging Face libraries' own telemetry switch, for the same reason.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"

_EXPORTS = {
    "Store": "mediafind.db",
    "Filters": "mediafind.db",
    "ClipEmbedder": "mediafind.models.clip",
    "ClapEmbedder": "mediafind.models.clap",
    "IndexOptions": "mediafind.index",
    "index_paths": "mediafind.index",
    "IndexSummary": "mediafind.events",
    "models_for_index": "mediafind.modalities",
    "Example": "mediafind.modalities",
    "search": "mediafind.query",
    "QueryPart": "mediafind.query",
    "SearchResult": "mediafind.query",
    "Moment": "mediafind.query",
    "index_status": "mediafind.status",
    "MediafindError": "mediafind.errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mediafind' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
