"""Query -> a vector per space -> nearest segments -> calibrated, one result per file.

A text query is embedded by every model in the index: CLIP's text tower for
photos and frames, CLAP's for sound. Their cosine similarities live on
different scales (CLIP's text-image scores cluster around 0.2, CLAP's spread
wider), so each is calibrated before they meet in one list:

    score = (cosine - mean) / standard deviation

where the mean and standard deviation are those of this query's cosines over
all the segments of that space. Both follow from the space's mean vector m and
covariance C (stored after each index run): mean = q.m, variance = q.C.q.
A score is thus "how many standard deviations above the typical segment",
comparable across modalities and across queries. A video moment whose frames
and sound both match scores by Stouffer's rule, (z_visual + z_audio) / sqrt(2),
when that beats either alone.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mediafind.db import KNN_MAX_K, Filters, SegmentHit, Space, Store
from mediafind.errors import IndexEmptyError, MediaError, ModelMismatchError, UsageError
from mediafind.models.clap import ClapEmbedder
from mediafind.models.clip import ClipEmbedder
from mediafind.scan import canonical_path

if TYPE_CHECKING:
    import numpy as np

KINDS = ("image", "video", "audio")
MODALITIES = ("visual", "audio")
# Moments further down than this many per file are noise for a person.
MAX_MOMENTS = 5
# Two adjacent segments whose vectors agree this well show the same shot.
# Frames that differ only by a small camera move or compression agree above
# 0.99; different shots in the tests' videos agree at most 0.96, and clearly
# less with real weights. To revisit with measurements on real weights.
SAME_SHOT_COSINE = 0.97
# Below this many vectors a space's spread is not known well enough to
# calibrate; its scores stay raw cosines until the index grows.
MIN_STATS_VECTORS = 2


@dataclass(frozen=True)
class Moment:
    start: float | None
    end: float | None
    score: float
    modality: str


@dataclass(frozen=True)
class SearchResult:
    """One file, scored by its best moment (calibrated: see the module docstring)."""

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


@dataclass(frozen=True)
class Example:
    """A query by example: a photo, a recording, a whole video, or a moment of one."""

    path: str
    time: float | None = None


@dataclass
class Searchers:
    """The models that embed queries for an index's spaces (None: no such space)."""

    visual: ClipEmbedder | None
    audio: ClapEmbedder | None


def _empty(store: Store) -> IndexEmptyError:
    return IndexEmptyError(
        f"the index {store.path} is empty; add media with: mediafind index FOLDER"
    )


def searchers_for_index(
    store: Store, requested: str | None, requested_audio: str | None, device: str
) -> Searchers:
    """Query models matching the index's spaces; nothing is loaded until used."""
    visual = store.active_space("visual")
    audio = store.active_space("audio")
    if (visual is None or not store.has_vectors(visual)) and (
        audio is None or not store.has_vectors(audio)
    ):
        raise _empty(store)
    # Queries are embedded in the precision the index was built with.
    return Searchers(
        visual=(
            ClipEmbedder(requested or visual.model, device=device, precision=visual.precision)
            if visual
            else None
        ),
        audio=(
            ClapEmbedder(requested_audio or audio.model, device=device, precision=audio.precision)
            if audio
            else None
        ),
    )


def embedder_for_index(store: Store, requested: str | None, device: str) -> ClipEmbedder:
    """The visual query model (for library users who only have photos and videos)."""
    visual = searchers_for_index(store, requested, None, device).visual
    if visual is None:
        raise _empty(store)
    return visual


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
    """FILE or FILE@TIME; a file whose own name holds '@' is taken as it is."""
    path = canonical_path(text)
    if os.path.isfile(path):
        return Example(path)
    head, at, tail = text.rpartition("@")
    if at and head:
        media = canonical_path(head)
        if os.path.isfile(media):
            try:
                return Example(media, parse_time(tail))
            except UsageError as error:
                raise UsageError(f"--like {text}: {error}") from None
    raise UsageError(f"--like {text}: no such file")


def parse_date(text: str, *, option: str, end: bool = False) -> float:
    """An ISO date or date-time in local time as Unix seconds. A bare date as the
    end of a range covers that whole day."""
    from datetime import datetime, timedelta

    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: expected an ISO date such as 2024-07-14 or 2024-07-14T18:30"
        ) from None
    if end and len(text.strip()) == 10:
        when += timedelta(days=1)
    return when.timestamp()


def make_filters(
    *,
    folders: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    min_duration: str | None = None,
    max_duration: str | None = None,
) -> Filters:
    """Filters from the user's words: folders relative to the current one,
    ISO dates, durations in seconds or m:ss."""
    low = parse_time(min_duration) if min_duration is not None else None
    high = parse_time(max_duration) if max_duration is not None else None
    if low is not None and high is not None and low > high:
        raise UsageError("--min-duration is longer than --max-duration")
    start = parse_date(since, option="--since") if since else None
    stop = parse_date(until, option="--until", end=True) if until else None
    if start is not None and stop is not None and start >= stop:
        raise UsageError("--since is not before --until")
    return Filters(
        folders=[canonical_path(folder) for folder in folders],
        since=start,
        until=stop,
        min_duration=low,
        max_duration=high,
    )


def example_modality(example: Example) -> str:
    from mediafind.scan import AUDIO_EXTENSIONS

    extension = os.path.splitext(example.path)[1].lower()
    return "audio" if extension in AUDIO_EXTENSIONS else "visual"


def _unit(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    mean = vectors.mean(axis=0)
    return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-12), dtype=np.float32)


def embed_visual_example(example: Example, embedder: ClipEmbedder) -> np.ndarray:
    """A photo, a video frame, or a whole video (mean of its kept frames)."""
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
            raise UsageError(f"--like {example.path}@...: a time goes with a video or a recording")
        else:
            images = [load_image(example.path, size).image]
    except MediaError as error:
        raise UsageError(f"--like {example.path}: {error}") from error
    return _unit(embedder.embed_images(images))


def embed_audio_example(example: Example, embedder: ClapEmbedder) -> np.ndarray:
    """A recording (mean of its sounding windows), or its window starting at a time."""
    from mediafind.media.audio import audio_windows

    try:
        windows = list(
            audio_windows(example.path, rate=embedder.rate, window_seconds=embedder.window_seconds)
        )
    except MediaError as error:
        raise UsageError(f"--like {example.path}: {error}") from error
    if example.time is not None:
        windows = [w for w in windows if w.start <= example.time < w.end][:1]
    if not windows:
        raise UsageError(f"--like {example.path}: no sound there to compare with (silence?)")
    return _unit(embedder.embed_audio([w.samples for w in windows]))


def _same_shot(a: SegmentHit, b: SegmentHit) -> bool:
    """Adjacent segments whose vectors agree are one shot seen twice (a static
    shot cut by --max-gap, a slow pan), not two moments."""
    import numpy as np

    if a.modality != b.modality or a.end is None or b.start is None:
        return False
    if abs(a.end - b.start) > 1e-6:
        return False
    first = np.frombuffer(a.embedding, dtype=np.float32)
    second = np.frombuffer(b.embedding, dtype=np.float32)
    return float(np.dot(first, second)) >= SAME_SHOT_COSINE


@dataclass(frozen=True)
class _Scored:
    hit: SegmentHit
    score: float


def _moments(scored: Sequence[_Scored]) -> list[Moment]:
    """A file's matching segments as distinct moments, best first."""
    ordered = sorted(scored, key=lambda s: (s.hit.modality, s.hit.start or 0.0))
    runs: list[list[_Scored]] = []
    for item in ordered:
        if runs and _same_shot(runs[-1][-1].hit, item.hit):
            runs[-1].append(item)
        else:
            runs.append([item])
    moments = [
        Moment(
            start=run[0].hit.start,
            end=run[-1].hit.end,
            score=max(s.score for s in run),
            modality=run[0].hit.modality,
        )
        for run in runs
    ]
    moments.sort(key=lambda moment: moment.score, reverse=True)
    return moments


def _fused(moments: Sequence[Moment]) -> float:
    """The best score of a moment heard and seen at once (Stouffer's rule)."""
    best = -math.inf
    for seen in (m for m in moments if m.modality == "visual" and m.score > 0):
        for heard in (m for m in moments if m.modality == "audio" and m.score > 0):
            if None in (seen.start, seen.end, heard.start, heard.end):
                continue
            if seen.start < heard.end and heard.start < seen.end:  # type: ignore[operator]
                best = max(best, (seen.score + heard.score) / math.sqrt(2))
    return best


def _result(scored: Sequence[_Scored]) -> SearchResult:
    first = scored[0].hit
    moments = _moments(scored)
    best = moments[0]
    score = max(best.score, _fused(moments))
    if first.kind == "image":
        return SearchResult(first.path, "image", score, None, None, best.modality, [])
    return SearchResult(
        first.path,
        first.kind,
        score,
        best.start,
        best.end,
        best.modality,
        moments[:MAX_MOMENTS],
    )


class _Calibration:
    """Turns one space's cosines for one query into calibrated scores."""

    def __init__(self, store: Store, space: Space, query: np.ndarray) -> None:
        import numpy as np

        # Stored after each index run; computed here for an index that has none yet.
        stats = store.load_stats(space) or store.compute_stats(space)
        count, mean, covariance = stats if stats is not None else (0, None, None)
        if count < MIN_STATS_VECTORS:
            self.center, self.spread = 0.0, 1.0
        else:
            # In float64: the variance is small beside the covariance's entries.
            q = np.asarray(query, dtype=np.float64)
            self.center = float(q @ np.asarray(mean, dtype=np.float64))
            variance = float(q @ np.asarray(covariance, dtype=np.float64) @ q)
            self.spread = max(math.sqrt(max(variance, 0.0)), 1e-6)

    def __call__(self, cosine: float) -> float:
        return (cosine - self.center) / self.spread


def _nearest_files(
    store: Store,
    space: Space,
    vector: np.ndarray,
    limit: int,
    kinds: Sequence[str] | None,
    exclude: set[str],
    filters: Filters | None = None,
) -> list[SegmentHit]:
    """Nearest segments, widening until `limit` distinct files (not excluded) are in."""
    k = max(16, limit * 4)
    while True:
        found = store.nearest(space, vector, k, kinds, filters)
        hits = [hit for hit in found if hit.path not in exclude]
        if len({hit.file_id for hit in hits}) >= limit or len(found) < k or k >= KNN_MAX_K:
            return hits
        k = min(k * 4, KNN_MAX_K)


@dataclass(frozen=True)
class QueryPart:
    """One more part of a query (--and / --not): words, or a file as an example.
    Its weight is negative for --not."""

    weight: float
    text: str | None = None
    example: Example | None = None


_WEIGHTED = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*:(.*)$", re.DOTALL)


def parse_part(text: str, *, negative: bool = False) -> QueryPart:
    """[WEIGHT:]WORDS or [WEIGHT:]FILE, e.g. 'sunset', '0.5:people', '2:beach.jpg'."""
    weight, body = 1.0, text
    match = _WEIGHTED.match(text)
    if match:
        weight, body = float(match.group(1)), match.group(2)
    if not body.strip():
        raise UsageError(f"{'--not' if negative else '--and'} {text!r}: nothing after the weight")
    sign = -1.0 if negative else 1.0
    path = canonical_path(body)
    if os.path.isfile(path):
        return QueryPart(sign * weight, example=Example(path))
    return QueryPart(sign * weight, text=body)


def _query_vectors(
    query: str | None,
    like: Sequence[Example],
    like_weight: float,
    parts: Sequence[QueryPart],
    searchers: Searchers,
    modalities: Sequence[str],
) -> dict[str, np.ndarray]:
    """A query vector for each modality with something positive to search for.

    Words and examples are embedded as unit vectors and summed with their
    weights (--not parts subtract); --like examples share `like_weight` of
    the whole against the words' share.
    """
    import numpy as np

    vectors: dict[str, np.ndarray] = {}
    for modality in modalities:
        embedder = searchers.visual if modality == "visual" else searchers.audio
        if embedder is None:
            continue
        embed = embed_visual_example if modality == "visual" else embed_audio_example
        examples = [e for e in like if example_modality(e) == modality]
        words_share = 1.0 - like_weight if examples else 1.0
        terms: list[tuple[float, np.ndarray]] = []
        if examples:
            vectors_of = [embed(e, embedder) for e in examples]  # type: ignore[arg-type]
            share = like_weight if query is not None or any(p.text for p in parts) else 1.0
            terms.append((share, _unit(np.stack(vectors_of))))
        if query is not None:
            terms.append((words_share, embedder.embed_texts([query])[0]))
        for part in parts:
            if part.text is not None:
                terms.append((part.weight * words_share, embedder.embed_texts([part.text])[0]))
            elif part.example is not None and example_modality(part.example) == modality:
                terms.append((part.weight, embed(part.example, embedder)))  # type: ignore[arg-type]
        if not any(weight > 0 for weight, _ in terms):
            continue
        combined = sum(weight * term for weight, term in terms)
        vectors[modality] = np.asarray(
            combined / max(float(np.linalg.norm(combined)), 1e-12), dtype=np.float32
        )
    return vectors


def _check(store: Store, searchers: Searchers) -> dict[str, Space]:
    spaces: dict[str, Space] = {}
    for modality, embedder in (("visual", searchers.visual), ("audio", searchers.audio)):
        space = store.active_space(modality)
        if embedder is None or space is None or not store.has_vectors(space):
            continue
        if embedder.key != space.model_key:
            flag = "--model" if modality == "visual" else "--audio-model"
            if embedder.spec.text == space.model:
                raise ModelMismatchError(
                    f"the {modality} model {space.model} holds other weights than those that "
                    f"made the index {store.path} (its files were replaced); put the original "
                    "files back, or re-embed every file with the new ones: "
                    "mediafind index --reembed FOLDER..."
                )
            raise ModelMismatchError(
                f"the index {store.path} was built with {modality} model {space.model}, not "
                f"{embedder.spec.text}; search without {flag}, or re-embed with: "
                f"mediafind index {flag} {embedder.spec.text} --reembed FOLDER..."
            )
        spaces[modality] = space
    if not spaces:
        raise _empty(store)
    return spaces


def search(
    store: Store,
    query: str | None,
    searchers: Searchers | ClipEmbedder,
    *,
    like: Sequence[Example] = (),
    like_weight: float = 0.5,
    parts: Sequence[QueryPart] = (),
    min_score: float | None = None,
    limit: int = 20,
    kinds: Sequence[str] | None = None,
    modalities: Sequence[str] | None = None,
    filters: Filters | None = None,
) -> list[SearchResult]:
    """The `limit` files that best match `query` and/or the `like` examples, best first.

    With both, the text and the examples' mean are averaged, the examples
    weighing `like_weight`; `parts` add (--and) or subtract (--not) more
    words or examples. Example files are left out of the results, and so is
    anything scoring under `min_score` (calibrated, see the module docstring).
    """
    if isinstance(searchers, ClipEmbedder):
        searchers = Searchers(visual=searchers, audio=None)
    if query is not None and not query.strip():
        raise UsageError('the query is empty; try: mediafind search "a dog on a beach"')
    if query is None and not like and not any(part.weight > 0 for part in parts):
        raise UsageError("nothing to search for: give a QUERY, --like FILE, or both")
    if not 0.0 <= like_weight <= 1.0:
        raise UsageError("--like-weight must be between 0 and 1")
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    for kind in kinds or ():
        if kind not in KINDS:
            raise UsageError(f"--type {kind!r}: expected one of {', '.join(KINDS)}")
    for modality in modalities or ():
        if modality not in MODALITIES:
            raise UsageError(f"--modality {modality!r}: expected visual or audio")
    spaces = _check(store, searchers)
    wanted = [m for m in (modalities or MODALITIES) if m in spaces]
    vectors = _query_vectors(query, like, like_weight, parts, searchers, wanted)
    if not vectors:
        raise UsageError(
            "nothing in the index to compare with: the examples' kind of media "
            "(or --modality) matches no model in this index"
        )
    exclude = {example.path for example in like}
    exclude |= {p.example.path for p in parts if p.example is not None and p.weight > 0}
    by_file: dict[int, list[_Scored]] = {}
    for modality, vector in vectors.items():
        calibrate = _Calibration(store, spaces[modality], vector)
        nearest = _nearest_files(store, spaces[modality], vector, limit, kinds, exclude, filters)
        for hit in nearest:
            by_file.setdefault(hit.file_id, []).append(_Scored(hit, calibrate(1.0 - hit.distance)))
    results = [_result(sorted(s, key=lambda x: -x.score)) for s in by_file.values()]
    if min_score is not None:
        results = [_above(result, min_score) for result in results if result.score >= min_score]
    results.sort(key=lambda result: result.score, reverse=True)
    return results[:limit]


def _above(result: SearchResult, min_score: float) -> SearchResult:
    """The result with only the moments that reach `min_score` (its best always does)."""
    moments = [m for m in result.moments if m.score >= min_score]
    return SearchResult(
        result.path,
        result.kind,
        result.score,
        result.start,
        result.end,
        result.modality,
        moments or result.moments[:1],
    )
