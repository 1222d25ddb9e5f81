"""Near-duplicate photos and videos, found from the vectors already in the index.

Photos are near-duplicates when their vectors agree (re-encoded, resized,
lightly edited). Videos are compared on their sequence of moments: the
shorter video's moments, weighted by how long each lasts, must each find a
matching moment in the other. A re-encoded or trimmed copy passes; two
different videos that open on the same black fade do not, because the fade
is a sliver of either.

Every photo is compared with every other, a tile of the similarity matrix at a
time: the time grows with the square of the count, the memory with the count
only (the vectors), however many pairs match.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediafind import modalities
from mediafind.db import Store
from mediafind.errors import IndexEmptyError, UsageError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD = 0.95
# Pairs of videos whose mean vectors agree less than this cannot match
# moment by moment; skipping them keeps the comparison near linear.
_VIDEO_PREFILTER = 0.8
# Working memory for one tile of the similarity matrix, whatever the number of
# files or of matching pairs: per cell, 4 bytes of similarity, a byte each for
# the matches, the matches across components, the upper triangle and a
# temporary mask, and 2 for a row number. 40 MiB gives 2048 x 2048 tiles,
# large enough for BLAS to run at full speed.
_TILE_BYTES = 40 * 2**20
_CELL_BYTES = 10


@dataclass(frozen=True)
class DuplicateGroup:
    kind: str
    paths: list[str]
    # The lowest agreement between two members that match directly (at or
    # above the threshold), whether or not that pair was needed to join them.
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "similarity": self.similarity, "paths": self.paths}


def _tile_side() -> int:
    return max(64, math.isqrt(_TILE_BYTES // _CELL_BYTES))


def _upper_tiles(count: int) -> Iterator[tuple[slice, slice, np.ndarray | None]]:
    """Tiles covering the pairs i < j of `count` items: (rows, columns, above).

    `above` is set on tiles that straddle the diagonal and is true where the
    column comes after the row; on the others every pair counts.
    """
    import numpy as np

    side = _tile_side()
    upper = np.triu(np.ones((side, side), dtype=bool), k=1)
    for top in range(0, count, side):
        bottom = min(top + side, count)
        yield slice(top, bottom), slice(top, bottom), upper[: bottom - top, : bottom - top]
        for left in range(bottom, count, side):
            yield slice(top, bottom), slice(left, min(left + side, count)), None


def _components(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest node in each node's connected component, for the edges a[k]-b[k]."""
    import numpy as np

    root = np.arange(count)
    while True:
        root_a, root_b = root[a], root[b]
        apart = root_a != root_b
        if not apart.any():
            return root
        # Hook each root to the smallest root it has an edge to, then point every
        # node at its root; a root only ever moves to a smaller one, so no cycles.
        np.minimum.at(root, np.maximum(root_a, root_b)[apart], np.minimum(root_a, root_b)[apart])
        while not np.array_equal(higher := root[root], root):
            root = higher


class _Groups:
    """Connected components over file indexes, in arrays, with each file's weakest match.

    The work per tile of matches is a few passes of numpy over the tile and a
    little per component it joins, never a Python step per matching pair: with
    every photo alike, all but the first tiles find nothing left to join.
    """

    def __init__(self, count: int) -> None:
        import numpy as np

        self.parent = np.arange(count)
        # The lowest similarity of the matches noted for each file; a group's is
        # the lowest of its members'.
        self.weakest = np.full(count, np.inf)

    def find(self, items: np.ndarray) -> np.ndarray:
        """The root of each item's component (and each item then points at it)."""
        import numpy as np

        roots = self.parent[items]
        while not np.array_equal(higher := self.parent[roots], roots):
            roots = higher
        self.parent[items] = roots
        return roots

    def note(self, items: np.ndarray, similarities: np.ndarray) -> None:
        """Remember the similarity of a match that involves each of `items`."""
        import numpy as np

        np.minimum.at(self.weakest, items, similarities)

    def merge(self, a: np.ndarray, b: np.ndarray) -> None:
        """Join the component of each a[k] with that of b[k]."""
        import numpy as np

        roots, inverse = np.unique(
            np.concatenate([self.find(a), self.find(b)]), return_inverse=True
        )
        smallest = _components(len(roots), inverse[: len(a)], inverse[len(a) :])
        self.parent[roots] = roots[smallest]

    def link(self, rows: np.ndarray, columns: np.ndarray, matches: np.ndarray) -> None:
        """Join rows[i] with columns[j] wherever matches[i, j]."""
        import numpy as np

        while True:
            row_roots, column_roots = self.find(rows), self.find(columns)
            # All in one group already: with every photo alike, every tile after the
            # first row of tiles.
            if row_roots.min() == row_roots.max() == column_roots.min() == column_roots.max():
                return
            # Only pairs still in different components matter.
            across = np.not_equal.outer(row_roots, column_roots)
            across &= matches
            if not across.any():
                return
            # Each row joins its first match across, and each column its last (numpy's
            # argmax down the columns copies the tile transposed, slowly; a maximum
            # of row numbers is a pass). Every component with a match across joins
            # at least one other, so their count halves each round.
            first_column = across.argmax(axis=1)
            live_rows = across[np.arange(len(rows)), first_column]
            numbers = np.arange(1, len(rows) + 1, dtype=np.min_scalar_type(len(rows)))
            last_row = np.where(across, numbers[:, None], 0).max(axis=0).astype(np.intp) - 1
            live_columns = last_row >= 0
            self.merge(
                np.concatenate([rows[live_rows], rows[last_row[live_columns]]]),
                np.concatenate([columns[first_column[live_rows]], columns[live_columns]]),
            )

    def groups(self) -> list[tuple[np.ndarray, float]]:
        """Components of two or more, each with its members' weakest match."""
        import numpy as np

        if not len(self.parent):
            return []
        roots = self.find(np.arange(len(self.parent)))
        order = np.argsort(roots, kind="stable")
        starts = np.flatnonzero(np.diff(roots[order], prepend=-1))
        sizes = np.diff(starts, append=len(order))
        weakest = np.minimum.reduceat(self.weakest[order], starts)
        # float32 rounding can put identical vectors a hair above 1.
        return [
            (order[start : start + size], min(1.0, float(low)))
            for start, size, low in zip(starts, sizes, weakest, strict=True)
            if size > 1
        ]


def _photo_groups(paths: list[str], vectors: np.ndarray, threshold: float) -> list[DuplicateGroup]:
    """Photos whose vectors match at `threshold`, directly or through other photos."""
    import numpy as np

    groups = _Groups(len(paths))
    for rows, columns, above in _upper_tiles(len(paths)):
        similarities = vectors[rows] @ vectors[columns].T
        matches = similarities >= threshold
        if above is not None:
            matches &= above
        if not matches.any():
            continue
        if not matches.all():  # what does not match must not count as the weakest match
            np.copyto(similarities, np.inf, where=~matches)
        row_items = np.arange(rows.start, rows.stop)
        groups.note(row_items, similarities.min(axis=1))
        groups.link(row_items, np.arange(columns.start, columns.stop), matches)
    return [
        DuplicateGroup("image", sorted(paths[i] for i in items), low)
        for items, low in groups.groups()
    ]


def _coverage(a: np.ndarray, weights: np.ndarray, b: np.ndarray) -> float:
    """How well video b covers video a: a's moments, weighted by length, matched in b."""
    best = (a @ b.T).max(axis=1)
    return float((best * weights).sum() / max(float(weights.sum()), 1e-9))


def _agreement(
    a: tuple[str, np.ndarray, np.ndarray], b: tuple[str, np.ndarray, np.ndarray]
) -> float:
    """How well the shorter of two videos is found, moment by moment, in the longer."""
    (_, a_moments, a_weights), (_, b_moments, b_weights) = a, b
    if a_weights.sum() <= b_weights.sum():
        return _coverage(a_moments, a_weights, b_moments)
    return _coverage(b_moments, b_weights, a_moments)


def _video_groups(
    videos: list[tuple[str, np.ndarray, np.ndarray]], threshold: float
) -> list[DuplicateGroup]:
    import numpy as np

    if len(videos) < 2:
        return []
    means = np.stack([v.mean(axis=0) for _, v, _ in videos])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-9)
    groups = _Groups(len(videos))
    for rows, columns, above in _upper_tiles(len(videos)):
        near = means[rows] @ means[columns].T >= _VIDEO_PREFILTER
        if above is not None:
            near &= above
        for row in np.flatnonzero(near.any(axis=1)):
            i = rows.start + int(row)
            candidates = np.flatnonzero(near[row]) + columns.start
            # A Python step per pair that passes the prefilter: comparing two
            # videos moment by moment costs far more anyway.
            scores = np.array([_agreement(videos[i], videos[j]) for j in candidates])
            found = scores >= threshold
            if found.any():
                groups.note(np.array([i]), scores[found].min(keepdims=True))
                groups.merge(np.full(int(found.sum()), i), candidates[found])
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
        raise UsageError(
            f"{{argument}} must be above 0 and at most 1, got {threshold}", argument="threshold"
        )
    for kind in kinds:
        if kind not in ("image", "video"):
            raise UsageError(
                f"{{argument}} {kind!r}: duplicates are found among images and videos",
                argument="kinds",
            )
    # The vectors of what photos and frames look like.
    pictures = modalities.offering("pictures")
    space = store.active_space(pictures.name) if pictures is not None else None
    if space is None or not store.has_vectors(space):
        raise IndexEmptyError(f"the index {store.path} holds no photos or videos")
    want_photos = not kinds or "image" in kinds
    want_videos = not kinds or "video" in kinds
    photo_paths: list[str] = []
    # The photos' vectors end to end, read straight into one buffer: an array
    # per photo, stacked afterwards, held them twice (200 MB more at 100,000).
    photo_vectors = bytearray()
    videos: dict[str, list[tuple[float, Any]]] = {}
    for path, kind, start, end, blob in store.visual_vectors(space):
        if kind == "image" and want_photos:
            photo_paths.append(path)
            photo_vectors += blob
        elif kind == "video" and want_videos:
            length = (end - start) if start is not None and end is not None else 1.0
            vector = np.frombuffer(blob, dtype=np.float32)
            videos.setdefault(path, []).append((max(length, 1e-3), vector))
    found: list[DuplicateGroup] = []
    if photo_paths:
        vectors = np.frombuffer(photo_vectors, dtype=np.float32).reshape(len(photo_paths), -1)
        found += _photo_groups(photo_paths, vectors, threshold)
    if videos:
        prepared = [
            (path, np.stack([v for _, v in parts]), np.array([w for w, _ in parts]))
            for path, parts in sorted(videos.items())
        ]
        found += _video_groups(prepared, threshold)
    found.sort(key=lambda group: (-len(group.paths), group.paths))
    return found
