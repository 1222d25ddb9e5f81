"""What an index holds, for `mediafind status`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediafind import config
from mediafind.db import Root, Store, WatchState, running_watcher
from mediafind.thumbnails import CacheUsage, cache_for


@dataclass(frozen=True)
class ModelInfo:
    modality: str
    model: str
    dim: int
    active: bool
    vectors: int
    # The precision of a model's vectors; None for a model that reads words.
    precision: str | None = "fp32"


@dataclass(frozen=True)
class IndexStatus:
    db_path: str
    db_bytes: int
    sqlite_driver: str
    models: list[ModelInfo]
    files: dict[str, int]
    segments: int
    # Files per spoken language (speech), most first.
    languages: dict[str, int]
    failed: list[tuple[str, str]]
    # Indexed in part (a video cut short), with why.
    partial: list[tuple[str, str]]
    roots: list[Root]
    last_indexed_at: float | None
    config_path: str
    config_exists: bool
    # The index's thumbnail cache and what it holds.
    thumbnails_path: str
    thumbnails: CacheUsage
    # The `mediafind watch` keeping the index current, if one runs.
    watcher: WatchState | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "db_path": self.db_path,
            "db_bytes": self.db_bytes,
            "sqlite_driver": self.sqlite_driver,
            "models": [vars(model) for model in self.models],
            "files": self.files,
            "segments": self.segments,
            "languages": self.languages,
            "failed": [{"path": path, "error": error} for path, error in self.failed],
            "partial": [{"path": path, "error": error} for path, error in self.partial],
            "roots": [
                {
                    "path": r.path,
                    "last_indexed_at": r.last_indexed_at,
                    "excludes": list(r.excludes),
                    "forgotten": r.forgotten,
                }
                for r in self.roots
            ],
            "last_indexed_at": self.last_indexed_at,
            "config_path": self.config_path,
            "config_exists": self.config_exists,
            "thumbnails": {"path": self.thumbnails_path, **vars(self.thumbnails)},
            "watcher": vars(self.watcher) if self.watcher is not None else None,
        }


def index_status(store: Store) -> IndexStatus:
    counts = store.counts_by_kind()
    thumbnails = cache_for(store)
    return IndexStatus(
        db_path=str(store.path),
        db_bytes=store.size_bytes(),
        sqlite_driver=store.driver,
        models=[
            ModelInfo(
                s.modality,
                s.model,
                s.dim,
                s.active,
                store.vector_count(s),
                None if s.words else s.precision,
            )
            for s in store.spaces()
        ],
        files={kind: counts.get(kind, 0) for kind in ("image", "video", "audio")},
        segments=store.segment_total(),
        languages=store.languages(),
        failed=store.files_with_status("failed"),
        partial=store.files_with_status("partial"),
        roots=store.roots(),
        last_indexed_at=store.last_indexed_at(),
        config_path=str(config.config_path()),
        config_exists=config.config_path().is_file(),
        thumbnails_path=str(thumbnails.root),
        thumbnails=thumbnails.usage(),
        watcher=running_watcher(store.path),
    )
