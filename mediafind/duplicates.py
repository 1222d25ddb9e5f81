"""Near-duplicate photos and videos, found from the vectors already in the index.

Photos are near-duplicates when their vectors agree (re-encoded, resized,
lightly edited). Videos are compared on their sequence of moments: the
shorter video's moments, weighted by how long each lasts, must each find a
matching moment in the other. A re-encoded or trimmed copy passes; two
different videos that open on the same black fade do not, because the fade
is a sliver of either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediafind.db import Store
from mediafind.errors import IndexEmptyError, UsageError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD = 0.95
# Pairs of videos whose mean vectors agree less than this cannot match
# moment by moment; skipping them keeps the comparison near linear.
_VIDEO_PREFILTER = 0.8
_BLOCK = 2048


@dataclass(frozen=True)
class DuplicateGroup:
    kind: str
    paths: list[str]
    # The lowest agreement between two members joined directly.
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "similarity": self.similarity, "paths": self.paths}


class _Groups:
    """Union-find over file indexes, remembering the weakest joining link."""

    def __init__(self, count: int) -> None:
        self.parent = list(range(count))
        self.weakest: dict[int, float] = {}

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def join(self, a: int, b: int, similarity: float) -> None:
        root_a, root_b = self.find(a), self.find(b)
        low = min(similarity, self.weakest.get(root_a, 1.0), self.weakest.get(root_b, 1.0))
        if root_a != root_b:
            self.parent[root_b] = root_a
        self.weakest[root_a] = low

    def groups(self) -> list[tuple[list[int], float]]:
        members: dict[int, list[int]] = {}
        for item in range(len(self.parent)):
            members.setdefault(self.find(item), []).append(item)
        return [
            (items, self.weakest.get(root, 1.0))
            for root, items in members.items()
            if len(items) > 1
        ]


def _photo_groups(paths: list[str], vectors: np.ndarray, threshold: float) -> list[DuplicateGroup]:
    import numpy as np

    groups = _Groups(len(paths))
    for start in range(0, len(paths), _BLOCK):
        block = vectors[start : start + _BLOCK] @ vectors.T
        rows, columns = np.nonzero(block >= threshold)
        for row, column in zip(rows, columns, strict=True):
            i = start + int(row)
            if i < column:
                groups.join(i, int(column), float(block[row, column]))
    return [
        DuplicateGroup("image", sorted(paths[i] for i in items), low)
        for items, low in groups.groups()
    ]


def _coverage(a: np.ndarray, weights: np.ndarray, b: np.ndarray) -> float:
    """How well video b covers video a: a's moments, weighted by length, matched in b."""
    best = (a @ b.T).max(axis=1)
    return float((best * weights).sum() / max(float(weights.sum()), 1e-9))


def _video_groups(
    videos: list[tuple[str, np.ndarray, np.ndarray]], threshold: float
) -> list[DuplicateGroup]:
    import numpy as np

    if len(videos) < 2:
        return []
    means = np.stack(
        [v.mean(axis=0) / max(np.linalg.norm(v.mean(axis=0)), 1e-9) for _, v, _ in videos]
    )
    near = means @ means.T
    groups = _Groups(len(videos))
    for i in range(len(videos)):
        for j in np.nonzero(near[i, i + 1 :] >= _VIDEO_PREFILTER)[0] + i + 1:
            (_, a, wa), (_, b, wb) = videos[i], videos[int(j)]
            # The shorter one must be found, moment by moment, in the longer.
            score = _coverage(a, wa, b) if wa.sum() <= wb.sum() else _coverage(b, wb, a)
            if score >= threshold:
                groups.join(i, int(j), score)
    return [
        DuplicateGroup("video", sorted(videos[i][0] for i in items), low)
        for items, low in groups.groups()
    ]


def find_duplicates(
    store: Store, *, threshold: float = DEFAULT_THRESHOLD, kinds: tuple[str, ...] = ()
) -> list[DuplicateGroup]:
    """Groups of near-duplicate photos and videos, largest first."""
    import numpy as np

    if not 0.0 < threshold <= 1.0:
        raise UsageError("--threshold must be above 0 and at most 1")
    for kind in kinds:
        if kind not in ("image", "video"):
            raise UsageError(f"--type {kind!r}: duplicates are found among images and videos")
    space = store.active_space("visual")
    if space is None or not store.has_vectors(space):
        raise IndexEmptyError(f"the index {store.path} holds no photos or videos")
    photos: list[tuple[str, Any]] = []
    videos: dict[str, list[tuple[float, Any]]] = {}
    for path, kind, start, end, blob in store.visual_vectors(space):
        vector = np.frombuffer(blob, dtype=np.float32)
        if kind == "image":
            photos.append((path, vector))
        elif kind == "video":
            length = (end - start) if start is not None and end is not None else 1.0
            videos.setdefault(path, []).append((max(length, 1e-3), vector))
    found: list[DuplicateGroup] = []
    if photos and (not kinds or "image" in kinds):
        found += _photo_groups([p for p, _ in photos], np.stack([v for _, v in photos]), threshold)
    if videos and (not kinds or "video" in kinds):
        prepared = [
            (path, np.stack([v for _, v in parts]), np.array([w for w, _ in parts]))
            for path, parts in sorted(videos.items())
        ]
        found += _video_groups(prepared, threshold)
    found.sort(key=lambda group: (-len(group.paths), group.paths))
    return found
