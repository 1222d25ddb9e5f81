"""The registry of modalities, and the one place that decides an index's models.

Pipeline, search, status, output and the command line iterate over
`modalities()`; adding a modality is adding its module and one line below.
What a modality is (which files fail without it, what it offers other
commands) it declares itself: nothing is inferred from the order in which
modalities register.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING

from mediafind import config
from mediafind.errors import IndexEmptyError, UsageError
from mediafind.modalities.audio import Audio
from mediafind.modalities.base import (
    Decoded,
    DecodeOptions,
    Embedder,
    Example,
    Modality,
    Model,
    VectorModality,
    WordsModality,
)
from mediafind.modalities.speech import Speech
from mediafind.modalities.text import Text
from mediafind.modalities.visual import Visual

if TYPE_CHECKING:
    from mediafind.db import Store

__all__ = [
    "DecodeOptions",
    "Decoded",
    "Embedder",
    "Example",
    "Modality",
    "Model",
    "VectorModality",
    "WordsModality",
    "for_kind",
    "get",
    "modalities",
    "models_for_index",
    "register",
]

_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> None:
    if modality.name in _REGISTRY:
        raise ValueError(f"a modality named {modality.name!r} is already registered")
    config.declare_key(modality.config_key, str)
    _REGISTRY[modality.name] = modality


def unregister(name: str) -> None:
    del _REGISTRY[name]


@contextlib.contextmanager
def registered(modality: Modality) -> Iterator[Modality]:
    """`modality` in the registry for a while (tests, plugins)."""
    register(modality)
    try:
        yield modality
    finally:
        unregister(modality.name)


def modalities() -> list[Modality]:
    return list(_REGISTRY.values())


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Modality:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"{{argument}} {name!r}: expected one of {', '.join(_REGISTRY)}",
            argument="modalities",
        ) from None


def for_kind(kind: str) -> list[Modality]:
    """The modalities that read files of `kind`."""
    return [modality for modality in _REGISTRY.values() if kind in modality.kinds]


def offering(what: str) -> Modality | None:
    """The modality that offers `what` to other commands ("pictures"), if any."""
    return next((m for m in _REGISTRY.values() if what in m.offers), None)


def kinds() -> list[str]:
    """Every kind of file some modality reads."""
    return list(dict.fromkeys(kind for modality in _REGISTRY.values() for kind in modality.kinds))


def models_for_index(
    store: Store | None,
    requests: Mapping[str, str | config.Choice | None] | None = None,
    *,
    device: str | None = None,
    precision: str | None = None,
    skip: Collection[str] = (),
    searching: bool = False,
) -> dict[str, Model]:
    """The model each modality uses with this index (nothing is loaded yet).

    For each modality: the model asked for in `requests` (by modality name; a
    spec, or a `config.Choice` that says where it came from), else its
    environment variable or config key, else the one the index was built with,
    else its default; when `searching`, the index's model comes before the
    variable and the key. The precision: `precision`, else the index's (a
    modality new to the index follows the others, so that int8 once is
    remembered for all), else fp32. `skip` leaves modalities out.

    `searching` keeps only the modalities the index holds vectors of, each in
    the precision it was built with; an index with none is IndexEmptyError.
    """
    requests = requests or {}
    device = device or config.resolve_device()
    spaces = {space.modality: space for space in store.spaces() if space.active} if store else {}
    if searching and store is not None:
        spaces = {name: space for name, space in spaces.items() if store.has_vectors(space)}
        if not spaces:
            raise IndexEmptyError(
                f"the index {store.path} is empty; add media with: mediafind index FOLDER"
            )
    models: dict[str, Model] = {}
    for modality in modalities():
        if modality.name in skip or (searching and modality.name not in spaces):
            continue
        asked = requests.get(modality.name)
        if isinstance(asked, str):
            asked = config.Choice(asked, "option")
        space = spaces.get(modality.name)
        # A search answers with the model that made the index's vectors, unless
        # asked otherwise on the command line: a MEDIAFIND_MODEL exported for
        # indexing (README: Offline use) must not break every search once the
        # index moved to another model. Indexing does follow the variable, and
        # says so when it disagrees with the index.
        choice = asked
        if choice is None and not (searching and space is not None):
            choice = config.requested(None, modality.env, modality.config_key)
        if choice is None:
            choice = (
                config.Choice(space.model, "index")
                if space is not None
                else config.Choice(modality.default_model, "default")
            )
        if searching and space is not None:
            chosen_precision = space.precision  # queries as the vectors were made
        else:
            # A modality new to the index follows the vectors it already holds
            # (words have no precision to follow).
            held = [s for s in (space, *spaces.values()) if s is not None and not s.words]
            chosen_precision = precision or (held[0].precision if held else "fp32")
        models[modality.name] = modality.embedder(choice, device, chosen_precision)
    return models


register(Visual())
register(Audio())
register(Speech())
register(Text())
