"""Text query -> vector -> nearest segments -> one ranked result per file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mediafind.db import KNN_MAX_K, SegmentHit, Store
from mediafind.errors import IndexEmptyError, ModelMismatchError, UsageError
from mediafind.models.clip import ClipEmbedder

KINDS = ("image", "video", "audio")


@dataclass(frozen=True)
class Moment:
    start: float | None
    end: float | None
    score: float
    modality: str


@dataclass(frozen=True)
class SearchResult:
    """One file, scored by its best moment. `score` is a cosine similarity:
    higher is better, 1.0 is identical direction."""

    path: str
    kind: str
    score: float
    start: float | None
    end: float | None
    modality: str
    moments: list[Moment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: exactly these keys, in this order."""
        return {
            "path": self.path,
            "kind": self.kind,
            "score": self.score,
            "start": self.start,
            "end": self.end,
            "modality": self.modality,
            "moments": [asdict(moment) for moment in self.moments],
        }


def embedder_for_index(store: Store, requested: str | None, device: str) -> ClipEmbedder:
    """The text model matching the index's vectors (or the one asked for, if it matches)."""
    space = store.active_space("visual")
    if space is None:
        raise IndexEmptyError(
            f"the index {store.path} is empty; add media with: mediafind index FOLDER"
        )
    return ClipEmbedder(requested or space.model, device=device)


def _group(hits: Sequence[SegmentHit]) -> list[SearchResult]:
    by_file: dict[int, list[SegmentHit]] = {}
    for hit in hits:  # nearest first, so each file's list starts with its best
        by_file.setdefault(hit.file_id, []).append(hit)
    results = []
    for file_hits in by_file.values():
        best = file_hits[0]
        moments = (
            []
            if best.kind == "image"
            else [Moment(h.start, h.end, 1.0 - h.distance, h.modality) for h in file_hits]
        )
        results.append(
            SearchResult(
                path=best.path,
                kind=best.kind,
                score=1.0 - best.distance,
                start=best.start,
                end=best.end,
                modality=best.modality,
                moments=moments,
            )
        )
    return results


def search(
    store: Store,
    query: str,
    embedder: ClipEmbedder,
    *,
    limit: int = 20,
    kinds: Sequence[str] | None = None,
) -> list[SearchResult]:
    """The `limit` files that best match `query`, best first."""
    if not query.strip():
        raise UsageError('the query is empty; try: mediafind search "a dog on a beach"')
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    for kind in kinds or ():
        if kind not in KINDS:
            raise UsageError(f"--type {kind!r}: expected one of {', '.join(KINDS)}")
    space = store.active_space("visual")
    if space is None or not store.has_vectors(space):
        raise IndexEmptyError(
            f"the index {store.path} is empty; add media with: mediafind index FOLDER"
        )
    if embedder.key != space.model_key:
        raise ModelMismatchError(
            f"the index {store.path} was built with model {space.model}, not "
            f"{embedder.spec.text}; search without --model, or re-embed with: "
            f"mediafind index --model {embedder.spec.text} --reembed FOLDER..."
        )
    vector = embedder.embed_texts([query])[0]
    # A file can own many segments (video frames), so ask for more neighbours
    # than results and widen until `limit` distinct files are found.
    k = max(16, limit * 4)
    while True:
        hits = store.nearest(space, vector, k, kinds)
        results = _group(hits)
        if len(results) >= limit or len(hits) < k or k >= KNN_MAX_K:
            return results[:limit]
        k = min(k * 4, KNN_MAX_K)
