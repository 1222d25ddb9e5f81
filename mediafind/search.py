"""Text query -> vector -> nearest segments -> one ranked result per file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mediafind.db import KNN_MAX_K, SegmentHit, Store
from mediafind.errors import IndexEmptyError, MediaError, ModelMismatchError, UsageError
from mediafind.models.clip import ClipEmbedder

if TYPE_CHECKING:
    import numpy as np

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


# Moments further down than this many per file are noise for a person.
MAX_MOMENTS = 5
# Two adjacent segments whose vectors agree this well show the same shot.
# Frames that differ only by a small camera move or compression agree above
# 0.99; frames of different shots of the tiny test model agree at most 0.96,
# and clearly less with real weights. To revisit with measurements on real
# weights.
SAME_SHOT_COSINE = 0.97


@dataclass(frozen=True)
class Example:
    """A query by example: a photo, a whole video, or a video at a time."""

    path: str
    time: float | None = None


def parse_time(text: str) -> float:
    """'83', '83.5', '1:23' or '1:02:03' -> seconds."""
    parts = text.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3 or any(part.strip() == "" for part in parts):
            raise ValueError
        values = [float(part) for part in parts]
    except ValueError:
        raise UsageError(f"{text!r} is not a time; use seconds (83.5), m:ss or h:mm:ss") from None
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    if seconds < 0:
        raise UsageError(f"{text!r}: a time cannot be negative")
    return seconds


def parse_example(text: str) -> Example:
    """FILE or VIDEO@TIME; a file whose own name holds '@' is taken as it is."""
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.isfile(path):
        return Example(path)
    head, at, tail = text.rpartition("@")
    if at and head:
        video = os.path.abspath(os.path.expanduser(head))
        if os.path.isfile(video):
            try:
                return Example(video, parse_time(tail))
            except UsageError as error:
                raise UsageError(f"--like {text}: {error}") from None
    raise UsageError(f"--like {text}: no such file")


def embed_example(example: Example, embedder: ClipEmbedder) -> np.ndarray:
    """The example's vector in the visual space (unit length)."""
    import numpy as np

    from mediafind.media.image import load_image
    from mediafind.media.video import frame_at, sample_frames
    from mediafind.scan import VIDEO_EXTENSIONS

    size = embedder.image_size
    try:
        if os.path.splitext(example.path)[1].lower() in VIDEO_EXTENSIONS:
            if example.time is not None:
                images = [frame_at(example.path, example.time, min_side=size)]
            else:
                images = [f.image for f in sample_frames(example.path, min_side=size).frames]
        elif example.time is not None:
            raise UsageError(f"--like {example.path}@...: a time goes with a video")
        else:
            images = [load_image(example.path, size).image]
    except MediaError as error:
        raise UsageError(f"--like {example.path}: {error}") from error
    vectors = embedder.embed_images(images)
    mean = vectors.mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


def _same_shot(a: SegmentHit, b: SegmentHit) -> bool:
    """Adjacent segments whose frames look alike are one shot seen twice
    (a static shot cut by --max-gap, a slow pan), not two moments."""
    import numpy as np

    if a.end is None or b.start is None or abs(a.end - b.start) > 1e-6:
        return False
    first = np.frombuffer(a.embedding, dtype=np.float32)
    second = np.frombuffer(b.embedding, dtype=np.float32)
    return float(np.dot(first, second)) >= SAME_SHOT_COSINE


def _moments(hits: Sequence[SegmentHit]) -> list[Moment]:
    """The file's matching segments as distinct moments, best first."""
    ordered = sorted(hits, key=lambda hit: hit.start or 0.0)
    runs: list[list[SegmentHit]] = []
    for hit in ordered:
        if runs and _same_shot(runs[-1][-1], hit):
            runs[-1].append(hit)
        else:
            runs.append([hit])
    moments = [
        Moment(
            start=run[0].start,
            end=run[-1].end,
            score=max(1.0 - hit.distance for hit in run),
            modality=run[0].modality,
        )
        for run in runs
    ]
    moments.sort(key=lambda moment: moment.score, reverse=True)
    return moments[:MAX_MOMENTS]


def _group(hits: Sequence[SegmentHit], exclude: set[str]) -> list[SearchResult]:
    by_file: dict[int, list[SegmentHit]] = {}
    for hit in hits:  # nearest first, so files come in the order of their best
        if hit.path not in exclude:
            by_file.setdefault(hit.file_id, []).append(hit)
    results = []
    for file_hits in by_file.values():
        best = file_hits[0]
        if best.kind == "image":
            moments: list[Moment] = []
            start, end = best.start, best.end
        else:
            moments = _moments(file_hits)
            start, end = moments[0].start, moments[0].end
        results.append(
            SearchResult(
                path=best.path,
                kind=best.kind,
                score=1.0 - best.distance,
                start=start,
                end=end,
                modality=best.modality,
                moments=moments,
            )
        )
    return results


def search(
    store: Store,
    query: str | None,
    embedder: ClipEmbedder,
    *,
    like: Sequence[Example] = (),
    like_weight: float = 0.5,
    limit: int = 20,
    kinds: Sequence[str] | None = None,
) -> list[SearchResult]:
    """The `limit` files that best match `query` and/or the `like` examples, best first.

    With both, the text and the examples' mean are averaged, the examples
    weighing `like_weight`. Example files are left out of the results.
    """
    import numpy as np

    if query is not None and not query.strip():
        raise UsageError('the query is empty; try: mediafind search "a dog on a beach"')
    if query is None and not like:
        raise UsageError("nothing to search for: give a QUERY, --like FILE, or both")
    if not 0.0 <= like_weight <= 1.0:
        raise UsageError("--like-weight must be between 0 and 1")
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
    parts = []
    if like:
        examples = np.stack([embed_example(example, embedder) for example in like])
        parts.append((like_weight if query is not None else 1.0, examples.mean(axis=0)))
    if query is not None:
        parts.append((1.0 - like_weight if like else 1.0, embedder.embed_texts([query])[0]))
    vector = sum(weight * part for weight, part in parts)
    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    exclude = {example.path for example in like}
    # A file can own many segments (video frames), so ask for more neighbours
    # than results and widen until `limit` distinct files are found.
    k = max(16, limit * 4)
    while True:
        hits = store.nearest(space, vector, k, kinds)
        results = _group(hits, exclude)
        if len(results) >= limit or len(hits) < k or k >= KNN_MAX_K:
            return results[:limit]
        k = min(k * 4, KNN_MAX_K)
