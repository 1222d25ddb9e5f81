"""Query -> a vector per space -> nearest segments -> calibrated, one result per file.

A text query is embedded by every model in the index (each modality's: CLIP's
text tower for photos and frames, CLAP's for sound). Their cosine similarities
live on different scales (CLIP's text-image scores cluster around 0.2, CLAP's
spread wider), so each is calibrated before they meet in one list:

    score = (cosine - mean) / standard deviation

where the mean and standard deviation are those of this query's cosines over
all the segments of that space. Both follow from the space's mean vector m and
covariance C (stored after each index run): mean = q.m, variance = q.C.q.
A score is thus "how many standard deviations above the typical segment",
comparable across modalities and across queries. A moment matched by several
modalities at once (a video moment seen and heard) scores by Stouffer's rule,
the sum of the z-scores over the square root of their number, for the set of
modalities that gives the highest score (a single one included).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mediafind import config
from mediafind import modalities as registry
from mediafind.db import KNN_MAX_K, Filters, SegmentHit, Space, Store
from mediafind.errors import IndexEmptyError, ModelMismatchError, UsageError
from mediafind.modalities import Example, Modality, Model, VectorModality, WordsModality
from mediafind.modalities.base import mean_direction
from mediafind.scan import canonical_path, kind_by_extension, kind_named
from mediafind.timecodes import parse_time
from mediafind.words import Snippet, snippet, word_matches

if TYPE_CHECKING:
    import numpy as np

# Moments further down than this many per file are noise for a person.
MAX_MOMENTS = 5
# With words and --like examples, the examples' share.
DEFAULT_LIKE_WEIGHT = 0.5
# Two adjacent segments whose vectors agree this well show the same shot.
# Frames that differ only by a small camera move or compression agree above
# 0.99; different shots in the tests' videos agree at most 0.96, and clearly
# less with real weights. To revisit with measurements on real weights.
SAME_SHOT_COSINE = 0.97
# Overlapping windows (sound) share a quarter of their samples, so their
# vectors agree more than adjacent frames do; they are one moment only when
# they hold the same sound (a steady tone, a hum), vectors all but equal.
SAME_SOUND_COSINE = 0.999
# Below this many vectors a space's spread is not known well enough to
# calibrate; its scores stay raw cosines until the index grows.
MIN_STATS_VECTORS = 2

__all__ = [
    "DEFAULT_LIKE_WEIGHT",
    "Example",
    "Moment",
    "QueryPart",
    "SearchResult",
    "indexed_folders",
    "make_filters",
    "parse_example",
    "parse_part",
    "readable_query",
    "search",
]


@dataclass(frozen=True)
class Moment:
    start: float | None
    end: float | None
    score: float
    modality: str
    # The words matched: what is said (speech) or written (text); None else.
    text: str | None = None
    # Those words around where they matched, for people (not in JSON).
    snippet: Snippet | None = field(default=None, compare=False)


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
    # The best moment's matched words (speech, text); None otherwise.
    text: str | None = None
    # Those words around where they matched, for people (not in JSON).
    snippet: Snippet | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: exactly these keys, in this order."""
        return {
            "path": self.path,
            "kind": self.kind,
            "score": self.score,
            "start": self.start,
            "end": self.end,
            "modality": self.modality,
            "moments": [
                {key: value for key, value in asdict(moment).items() if key != "snippet"}
                for moment in self.moments
            ],
            "text": self.text,
        }


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
                raise UsageError(f"{{argument}} {text}: {error}", argument="like") from None
    raise UsageError(f"{{argument}} {text}: no such file", argument="like")


def parse_date(text: str, *, argument: str, end: bool = False) -> float:
    """An ISO date or date-time in local time as Unix seconds. A bare date as the
    end of a range covers that whole day."""
    from datetime import datetime, timedelta

    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{{argument}} {text!r}: expected an ISO date such as 2024-07-14 or 2024-07-14T18:30",
            argument=argument,
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

    def duration(text: str | None, argument: str) -> float | None:
        if text is None:
            return None
        try:
            return parse_time(text)
        except UsageError as error:
            raise UsageError(f"{{argument}}: {error}", argument=argument) from None

    low = duration(min_duration, "min_duration")
    high = duration(max_duration, "max_duration")
    if low is not None and high is not None and low > high:
        raise UsageError(
            "{min_duration} is longer than {max_duration}",
            arguments=("min_duration", "max_duration"),
        )
    start = parse_date(since, argument="since") if since else None
    stop = parse_date(until, argument="until", end=True) if until else None
    if start is not None and stop is not None and start >= stop:
        raise UsageError("{since} is not before {until}", arguments=("since", "until"))
    return Filters(
        folders=[canonical_path(folder) for folder in folders],
        since=start,
        until=stop,
        min_duration=low,
        max_duration=high,
    )


def indexed_folders(store: Store, folders: Sequence[str]) -> list[str]:
    """Folders named as the results page names them: absolute (or from `~`),
    or relative to any folder the index remembers, since a person at a
    browser has no current folder to start from. A relative name may match
    under several remembered folders: all of them are kept. Raises
    UsageError for a folder under which nothing is indexed, listing the
    folders that are."""
    roots = [root.path for root in store.roots()]
    found: list[str] = []
    for text in folders:
        expanded = os.path.expanduser(text)
        if os.path.isabs(expanded):
            candidates = [canonical_path(expanded)]
        else:
            candidates = [canonical_path(os.path.join(root, expanded)) for root in roots]
        held = [folder for folder in candidates if store.count_files(Filters(folders=[folder]))]
        if not held:
            where = (
                f"the indexed folders are {', '.join(roots)} (give one of them, "
                "or a folder inside one by its path from there)"
                if roots
                else "the index is empty: run mediafind index FOLDER first"
            )
            raise UsageError(
                f"{{argument}} {text!r}: nothing is indexed there; {where}", argument="folders"
            )
        found.extend(folder for folder in held if folder not in found)
    return found


def _same_shot(a: SegmentHit, b: SegmentHit) -> bool:
    """Segments that are one moment seen twice, not two moments (`b` starts no
    earlier than `a`): adjacent ones whose vectors agree (a static shot cut by
    --max-gap, a slow pan), or overlapping ones whose vectors are the same (a
    steady sound heard by overlapping windows scores alike in each)."""
    import numpy as np

    if a.modality != b.modality or a.end is None or b.start is None or not a.embedding:
        return False
    if b.start > a.end + 1e-6:
        return False
    overlapping = b.start < a.end - 1e-6
    first = np.frombuffer(a.embedding, dtype=np.float32)
    second = np.frombuffer(b.embedding, dtype=np.float32)
    agreement = float(np.dot(first, second))
    return agreement >= (SAME_SOUND_COSINE if overlapping else SAME_SHOT_COSINE)


@dataclass(frozen=True)
class _Scored:
    hit: SegmentHit
    score: float
    # Where the query's words are in the hit's text (words modalities).
    spans: tuple[tuple[int, int], ...] = ()


def _moments(scored: Sequence[_Scored]) -> list[Moment]:
    """A file's matching segments as distinct moments, best first."""
    ordered = sorted(scored, key=lambda s: (s.hit.modality, s.hit.start or 0.0))
    runs: list[list[_Scored]] = []
    for item in ordered:
        if runs and _same_shot(runs[-1][-1].hit, item.hit):
            runs[-1].append(item)
        else:
            runs.append([item])
    moments = [_moment(run) for run in runs]
    moments.sort(key=lambda moment: moment.score, reverse=True)
    return moments


def _moment(run: Sequence[_Scored]) -> Moment:
    best = max(run, key=lambda s: s.score)
    text = best.hit.text
    return Moment(
        start=run[0].hit.start,
        end=max(s.hit.end or 0.0 for s in run) if run[-1].hit.end is not None else None,
        score=best.score,
        modality=run[0].hit.modality,
        text=text,
        snippet=snippet(text, best.spans) if text is not None else None,
    )


def _overlap(a: Moment, b: Moment) -> bool:
    """Whether two moments of one file are at the same time; a photo's are all
    the whole picture (what it shows and what is written on it)."""
    if a.start is None and b.start is None:
        return True
    if None in (a.start, a.end, b.start, b.end):
        return False
    return a.start < b.end and b.start < a.end  # type: ignore[operator]


def _words_at(best: Moment, moments: Sequence[Moment]) -> Moment | None:
    """The moment whose words were matched at the best moment: itself, else
    the best words moment at the same time (a photo that matches by both its
    picture and its text shows the text)."""
    if best.text is not None:
        return best
    return next((m for m in moments if m.text is not None and _overlap(best, m)), None)


def combined_score(scores: Sequence[float]) -> float:
    """Stouffer's rule for independent evidence: the best of sum(z)/sqrt(n) over
    the strongest n of `scores` (one alone included)."""
    best, total = -math.inf, 0.0
    for count, score in enumerate(sorted(scores, reverse=True), start=1):
        total += score
        best = max(best, total / math.sqrt(count))
    return best


def _fused(moments: Sequence[Moment]) -> float:
    """The best score of a moment together with what other modalities found at
    the same time (each other modality's best positive overlapping moment)."""
    best = -math.inf
    for anchor in moments:
        evidence = [anchor.score]
        for modality in {m.modality for m in moments} - {anchor.modality}:
            overlapping = [
                m.score
                for m in moments
                if m.modality == modality and m.score > 0 and _overlap(anchor, m)
            ]
            if overlapping and anchor.score > 0:
                evidence.append(max(overlapping))
        best = max(best, combined_score(evidence))
    return best


def _result(scored: Sequence[_Scored]) -> SearchResult:
    first = scored[0].hit
    moments = _moments(scored)
    best = moments[0]
    score = max(best.score, _fused(moments))
    words = _words_at(best, moments)
    text, shown = (words.text, words.snippet) if words is not None else (None, None)
    if first.kind == "image":
        moments = [m for m in moments if m.text is not None][:MAX_MOMENTS]
        return SearchResult(
            first.path, "image", score, None, None, best.modality, moments, text, shown
        )
    return SearchResult(
        first.path,
        first.kind,
        score,
        best.start,
        best.end,
        best.modality,
        moments[:MAX_MOMENTS],
        text,
        shown,
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


# A command line that is not valid UTF-8 reaches Python with each byte it
# could not decode as a lone surrogate, U+DC80 to U+DCFF (PEP 383), which no
# tokenizer takes. Such bytes are nearly always Latin-1 (an old script, a
# Latin-1 terminal: caf\xe9 is café), so each becomes its Latin-1 letter; any
# other lone surrogate becomes U+FFFD.
_AS_LATIN_1 = {
    code: code - 0xDC00 if 0xDC80 <= code <= 0xDCFF else 0xFFFD for code in range(0xD800, 0xE000)
}


def readable_query(text: str) -> str:
    """The words of a query as text every model and the words search take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.translate(_AS_LATIN_1)
    return text


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
    argument = "not_" if negative else "and_"
    if not body.strip():
        raise UsageError(f"{{argument}} {text!r}: nothing after the weight", argument=argument)
    sign = -1.0 if negative else 1.0
    path = canonical_path(body)
    if os.path.isfile(path):
        return QueryPart(sign * weight, example=Example(path))
    return QueryPart(sign * weight, text=body)


def _takes(modality: Modality, example: Example) -> bool:
    """Whether `modality` compares with this example file."""
    kind = kind_by_extension().get(os.path.splitext(example.path)[1].lower())
    return kind in modality.example_kinds


def _stored_example(store: Store, space: Space, example: Example) -> np.ndarray | None:
    """An indexed example's vectors, as the index holds them (the mean of its
    segments, or the one at `example.time`): looking them up takes
    milliseconds where decoding and embedding a long video takes seconds.
    None when the file is not indexed or changed since."""
    try:
        info = os.stat(example.path)
    except OSError:
        return None
    blobs = store.stored_vectors(space, example.path, info.st_size, info.st_mtime_ns, example.time)
    if not blobs:
        return None
    import numpy as np

    return mean_direction(np.stack([np.frombuffer(blob, dtype=np.float32) for blob in blobs]))


def _example_vector(
    store: Store, modality: VectorModality, space: Space, example: Example, embedder: Any
) -> np.ndarray:
    stored = _stored_example(store, space, example)
    if stored is None:
        return modality.embed_example(example, embedder)
    embedder.notes.append(
        f"{example.path}: its {modality.noun} vectors were looked up in the index "
        "(indexed and unchanged), not computed again"
    )
    return stored


def _query_vectors(
    store: Store,
    spaces: Mapping[str, Space],
    query: str | None,
    like: Sequence[Example],
    like_weight: float,
    parts: Sequence[QueryPart],
    models: Mapping[str, Any],
) -> dict[str, np.ndarray]:
    """A query vector for each modality with something positive to search for.

    Words and examples are embedded as unit vectors and summed with their
    weights (--not parts subtract); --like examples share `like_weight` of
    the whole against the words' share. An indexed, unchanged example is
    looked up, not embedded again.
    """
    import numpy as np

    vectors: dict[str, np.ndarray] = {}
    for name, space in spaces.items():
        modality, embedder = registry.get(name), models[name]
        if not isinstance(modality, VectorModality):
            continue
        examples = [e for e in like if _takes(modality, e)]
        words_share = 1.0 - like_weight if examples else 1.0
        terms: list[tuple[float, np.ndarray]] = []
        if examples:
            found = [_example_vector(store, modality, space, e, embedder) for e in examples]
            share = like_weight if query is not None or any(p.text for p in parts) else 1.0
            terms.append((share, mean_direction(np.stack(found))))
        if query is not None:
            terms.append((words_share, embedder.embed_texts([query])[0]))
        for part in parts:
            if part.text is not None:
                terms.append((part.weight * words_share, embedder.embed_texts([part.text])[0]))
            elif part.example is not None and _takes(modality, part.example):
                vector = _example_vector(store, modality, space, part.example, embedder)
                terms.append((part.weight, vector))
        if not any(weight > 0 for weight, _ in terms):
            continue
        combined = sum(weight * term for weight, term in terms)
        vectors[name] = np.asarray(
            combined / max(float(np.linalg.norm(combined)), 1e-12), dtype=np.float32
        )
    return vectors


def _searched_spaces(store: Store, models: Mapping[str, Model]) -> dict[str, Space]:
    """The index's spaces the models can search; refuses a model that did not
    make the vectors (or words)."""
    spaces: dict[str, Space] = {}
    for name, model in models.items():
        space = store.active_space(name)
        if space is None or not store.has_vectors(space):
            continue
        # Words are words, whichever model read them; a query needs no model
        # to match them (only an example that is not indexed does).
        if not space.words and model.key != space.model_key:
            raise _mismatch(store, registry.get(name), model, space)
        spaces[name] = space
    if not spaces:
        raise IndexEmptyError(
            f"the index {store.path} is empty; add media with: mediafind index FOLDER"
        )
    return spaces


def _mismatch(
    store: Store, modality: Modality, embedder: Model, space: Space
) -> ModelMismatchError:
    if embedder.name == space.model:
        return ModelMismatchError(
            f"the {modality.name} model {space.model} holds other weights than those that "
            f"made the index {store.path} (its files were replaced); put the original files "
            "back, or re-embed every file with the new ones: mediafind index {reembed} FOLDER...",
            arguments=("reembed",),
        )
    return ModelMismatchError(
        f"the index {store.path} was built with {modality.name} model {space.model}, not "
        f"{embedder.name}; search without {{argument}}, or re-embed with: "
        f"mediafind index {{argument}} {embedder.name} {{reembed}} FOLDER...",
        argument=modality.argument,
        arguments=("reembed",),
    )


def _check_arguments(
    query: str | None,
    like: Sequence[Example],
    like_weight: float,
    parts: Sequence[QueryPart],
    limit: int,
    kinds: Sequence[str] | None,
    modalities: Sequence[str] | None,
) -> None:
    if query is not None and not query.strip():
        raise UsageError('the query is empty; try: mediafind search "a dog on a beach"')
    if query is None and not like and not any(part.weight > 0 for part in parts):
        raise UsageError(
            "nothing to search for: give {query}, {like}, or both", arguments=("query", "like")
        )
    if not 0.0 <= like_weight <= 1.0:
        raise UsageError(
            f"{{argument}} must be between 0 and 1, got {like_weight}", argument="like_weight"
        )
    if limit < 1:
        raise UsageError(f"{{argument}} must be at least 1, got {limit}", argument="limit")
    known = registry.kinds()
    for kind in kinds or ():
        if kind not in known:
            raise UsageError(
                f"{{argument}} {kind!r}: expected one of {', '.join(known)} (photo is image, "
                "recording is audio)",
                argument="kinds",
            )
    for name in modalities or ():
        registry.get(name)  # refuses an unknown name


def search(
    store: Store,
    query: str | None = None,
    models: Mapping[str, Model] | None = None,
    *,
    like: Sequence[Example] = (),
    like_weight: float = DEFAULT_LIKE_WEIGHT,
    parts: Sequence[QueryPart] = (),
    min_score: float | None = None,
    limit: int = config.DEFAULT_LIMIT,
    kinds: Sequence[str] | None = None,
    modalities: Sequence[str] | None = None,
    filters: Filters | None = None,
) -> list[SearchResult]:
    """The `limit` files that best match `query` and/or the `like` examples, best first.

    `models` maps modality names to query models (by default the index's own,
    `modalities.models_for_index(store, searching=True)`). With words and
    examples, the text and the examples' mean are averaged, the examples
    weighing `like_weight`; `parts` add (--and) or subtract (--not) more words
    or examples. Words modalities (speech, text) match the words themselves
    (see `mediafind.words`). Example files are left out of the results, and
    so is anything scoring under `min_score` (calibrated, see the module
    docstring). `modalities` restricts the match to some modalities. Words
    that are not valid UTF-8 are read as Latin-1 (`readable_query`).
    """
    if query is not None:
        query = readable_query(query)
    kinds = [kind_named(kind) for kind in kinds] if kinds is not None else None
    parts = [replace(p, text=readable_query(p.text)) if p.text is not None else p for p in parts]
    _check_arguments(query, like, like_weight, parts, limit, kinds, modalities)
    for example in [*like, *(p.example for p in parts if p.example is not None)]:
        if not any(_takes(modality, example) for modality in registry.modalities()):
            raise UsageError(
                f"{{argument}} {example.path}: not a photo, video or recording "
                "(by its name's extension)",
                argument="like",
            )
    if models is None:
        models = registry.models_for_index(store, searching=True)
    spaces = _searched_spaces(store, models)
    wanted = {name: space for name, space in spaces.items() if name in (modalities or spaces)}
    vectors = _query_vectors(store, wanted, query, like, like_weight, parts, models)
    exclude = {example.path for example in like}
    exclude |= {p.example.path for p in parts if p.example is not None and p.weight > 0}
    by_file: dict[int, list[_Scored]] = {}
    for name, vector in vectors.items():
        calibrate = _Calibration(store, spaces[name], vector)
        nearest = _nearest_files(store, spaces[name], vector, limit, kinds, exclude, filters)
        for hit in nearest:
            by_file.setdefault(hit.file_id, []).append(_Scored(hit, calibrate(1.0 - hit.distance)))
    searched_words = False
    for name, space in wanted.items():
        modality = registry.get(name)
        if not isinstance(modality, WordsModality):
            continue
        examples = [
            _example_words(store, modality, space, example, models[name])
            for example in like
            if _takes(modality, example)
        ]
        matches = word_matches(
            store,
            space,
            query,
            [p.text for p in parts if p.text is not None and p.weight > 0],
            [p.text for p in parts if p.text is not None and p.weight < 0],
            examples,
            replace(filters or Filters(), kinds=list(kinds or ())),
        )
        searched_words = searched_words or matches.searched
        for hit, score in matches.scored:
            if hit.path not in exclude:
                spans = tuple(matches.spans.get(hit.segment_id, ()))
                by_file.setdefault(hit.file_id, []).append(_Scored(hit, score, spans))
    if not vectors and not searched_words:
        raise UsageError(
            "nothing in the index to compare with: the examples' kind of media "
            "(or {modalities}) matches no model in this index",
            arguments=("modalities",),
        )
    results = [_result(sorted(s, key=lambda x: -x.score)) for s in by_file.values()]
    if min_score is not None:
        results = [_above(result, min_score) for result in results if result.score >= min_score]
    results.sort(key=lambda result: result.score, reverse=True)
    return results[:limit]


def _example_words(
    store: Store, modality: WordsModality, space: Space, example: Example, model: Model
) -> str:
    """What an example says: looked up when it is indexed and unchanged."""
    try:
        info = os.stat(example.path)
        stored = store.stored_words(
            space, example.path, info.st_size, info.st_mtime_ns, example.time
        )
    except OSError:
        stored = None
    if stored is not None:
        return stored
    return modality.example_words(example, model)


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
        result.text,
        result.snippet,
    )


@dataclass(frozen=True)
class Phrase:
    start: float | None
    end: float | None
    text: str


def transcript(store: Store, path: str) -> list[Phrase]:
    """What is said in an indexed file, phrase by phrase, as the index holds it
    (transcribed, or read from its subtitles). Raises UsageError for a file the
    index does not hold, or holds no speech of."""
    canonical = canonical_path(path)
    held = store.files_under([canonical])
    if not held and not os.path.lexists(canonical):
        raise UsageError(f"{path}: no such file")
    if not held:
        raise UsageError(f"{path}: not in the index; index it first: mediafind index {path}")
    if canonical in held and held[canonical].kind == "image":
        raise UsageError(f"{path}: a photo: nothing is said in it")
    phrases = [Phrase(*row) for row in store.words_of(canonical, "speech")]
    if not phrases and not store.words_indexed(canonical, "speech"):
        raise UsageError(
            f"{path}: its speech is not indexed yet (run mediafind index, without {{no_speech}})",
            arguments=("no_speech",),
        )
    return phrases
