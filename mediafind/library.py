"""An index kept open for many questions: what `serve` and `mcp` share.

A command that answers once (search) opens the index, loads its query
models, answers and exits. A server answers many questions, so it keeps the
index open read-only and its models loaded (a model loads once, on the
first search or in `warm_up`), and looks up only files the index holds.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mediafind import config
from mediafind.db import FileRecord, Filters, Store
from mediafind.errors import MediafindError, UsageError
from mediafind.thumbnails import cache_for, thumbnail

if TYPE_CHECKING:
    from mediafind.modalities import Embedder, Example, Model
    from mediafind.query import SearchResult

# Results per search at most, whatever a client asks.
MAX_LIMIT = 500


class NotServed(MediafindError):
    """A file a server will not give out: not in the index, gone, or changed."""


class ModelsWhenNeeded(Mapping[str, "Model"]):
    """The query models, chosen at the first search rather than when the
    index opens: what needs no model (the index's status) answers even when
    none can be chosen yet (an index with nothing searchable in it). A choice
    that fails is tried again at the next search."""

    def __init__(self, choose: Callable[[], Mapping[str, Model]]) -> None:
        self._choose = choose
        self._models: Mapping[str, Model] | None = None

    def _chosen(self) -> Mapping[str, Model]:
        if self._models is None:
            self._models = self._choose()
        return self._models

    def __getitem__(self, name: str) -> Model:
        return self._chosen()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._chosen())

    def __len__(self) -> int:
        return len(self._chosen())


@dataclass
class Library:
    """The index, its query models (loaded once, on the first search), and the
    thumbnail cache. The index's connection and the models are used by one
    request at a time; decoding thumbnails runs beside them, at most one per
    core."""

    store: Store
    models: Mapping[str, Model]

    def __post_init__(self) -> None:
        self.thumbnails = cache_for(self.store)
        self.lock = threading.Lock()
        self.decoders = threading.BoundedSemaphore(config.usable_cores())

    def info(self) -> dict[str, Any]:
        from mediafind import modalities as registry

        with self.lock:
            counts = self.store.counts_by_kind()
            roots = self.store.roots()
            last = self.store.last_indexed_at()
        # What `mediafind status` shows of the index, and no more: a start
        # page says what can be searched, and since when.
        return {
            "index": str(self.store.path),
            "kinds": registry.kinds(),
            "modalities": list(self.models),
            "files": counts,
            "folders": [root.path for root in roots],
            "roots": [{"path": r.path, "last_indexed_at": r.last_indexed_at} for r in roots],
            "last_indexed_at": last,
            "limit": config.resolve_limit(None),
            "max_limit": MAX_LIMIT,
        }

    def warm_up(self) -> None:
        """Load the query models now, so the first search is as quick as the next."""
        from mediafind import modalities as registry
        from mediafind.modalities import VectorModality

        with self.lock:
            for name, model in self.models.items():
                if isinstance(registry.get(name), VectorModality):
                    # A model that cannot load says why at the first search,
                    # where the person (or assistant) is looking.
                    with contextlib.suppress(Exception):
                        cast("Embedder", model).embed_texts(["a photo"])

    def search(
        self,
        text: str | None,
        *,
        like: Sequence[Example] = (),
        kinds: Sequence[str] = (),
        modalities: Sequence[str] = (),
        filters: Filters | None = None,
        limit: int | None = None,
        min_score: float | None = None,
    ) -> tuple[list[SearchResult], list[FileRecord | None]]:
        """The results (at most MAX_LIMIT), and each one's indexed file."""
        from mediafind.query import DEFAULT_LIKE_WEIGHT, search

        chosen = config.resolve_limit(None) if limit is None else limit
        with self.lock:
            results = search(
                self.store,
                text,
                self.models,
                like=like,
                like_weight=DEFAULT_LIKE_WEIGHT if text else 1.0,
                min_score=min_score,
                limit=min(chosen, MAX_LIMIT),
                kinds=kinds,
                modalities=modalities,
                filters=filters,
            )
            records = self.store.files_at([result.path for result in results])
        return results, [records.get(result.path) for result in results]

    def file(self, file_id: int) -> FileRecord:
        if not 0 < file_id < 2**63:  # SQLite's integers
            raise NotServed("no such file in the index")
        with self.lock:
            record = self.store.file_by_id(file_id)
        if record is None or record.status == "failed":
            raise NotServed("no such file in the index")
        return record

    def file_at(self, path: str) -> FileRecord:
        """The indexed file at exactly `path` (a folder or any other path is
        not one); NotServed when the index holds none."""
        from mediafind.scan import canonical_path

        with self.lock:
            record = self.store.files_at([canonical_path(path)]).get(canonical_path(path))
        if record is None or record.status == "failed":
            raise NotServed(f"{path}: not a file in the index")
        return record

    def example(self, record: FileRecord, time: float | None = None) -> Example:
        """An indexed file (or a moment of it) as an example, while it is on disk."""
        from mediafind.modalities import Example

        if not os.path.isfile(record.path):
            raise UsageError(
                f"{{argument}} {record.path}: no longer on disk (deleted since it was indexed)",
                argument="like",
            )
        return Example(record.path, time)

    def thumbnail(self, record: FileRecord, time: float | None) -> bytes:
        """A thumbnail's JPEG, made by at most one thread per core."""
        with self.decoders:
            return thumbnail(record, time, self.thumbnails)
