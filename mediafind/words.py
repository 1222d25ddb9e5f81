"""Matching words: what is said (speech) and written (text) against a query.

A segment matches when it holds every word of the query, each as a word
(stemmed, diacritics folded: `candles` finds `candle`, `cafe` finds `café`) or
as a substring, when the word is long enough not to turn up by accident:
four characters, or three with a digit (OCR drops spaces: `GATEB12DEPARTURES`
holds `gate` and `b12`), or two in scripts written without spaces (Chinese
and Japanese words are found inside phrases). A phrase in quotes must appear
as a phrase. Short words match only as words, so `own` never matches inside
`town`.

Scores are put on the scale of the other modalities' calibrated scores by
asking how unusual such a match is in this index: if a segment matches the
query's words (as many of them as words, not substrings, as it does) and m of
the space's n segments match as well or better, its score is the z-score of
that tail, Phi^-1(1 - m / (n + 1)). A query whose words few segments hold
scores 3 or more on a library of thousands of phrases, as a strong picture
match does; a word half the library says scores about 0. Within a level,
FTS5's bm25 orders the segments by a nudge of at most 0.05.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from mediafind.db import Filters, SegmentHit, Space, Store, fold

# Substrings shorter than this match too much by accident (`own` in `town`),
# except codes with a digit from three characters (`b12`) and scripts
# written without spaces from two (see `_substring`).
MIN_SUBSTRING = 4
# An example (a recording used with --like) is matched by its rarest words.
EXAMPLE_TERMS = 40
# Within one level of match, bm25 moves a score by at most this much.
ORDER_NUDGE = 0.05

_TOKEN = re.compile(r'"([^"]+)"|(\S+)')
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False


@dataclass
class Matches:
    scored: list[tuple[SegmentHit, float]] = field(default_factory=list)
    # Whether there was anything to look for (words, or an example's).
    searched: bool = False


def _strip(word: str) -> str:
    """A word without the punctuation around it ("grandma!" -> grandma)."""
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(word[end - 1]).startswith("P"):
        end -= 1
    return word[start:end]


def terms(text: str) -> list[Term]:
    """The words and "quoted phrases" of a query, in order, without repeats."""
    found: dict[str, Term] = {}
    for phrase, word in _TOKEN.findall(text):
        term = Term(" ".join(phrase.split()), True) if phrase else Term(_strip(word))
        if term.text and fold(term.text) not in found:
            found[fold(term.text)] = term
    return list(found.values())


def _unspaced(text: str) -> bool:
    """Whether `text` is in a script written without spaces between words."""
    return any(
        unicodedata.name(char, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI"))
        for char in text
    )


def _fts(term: Term) -> str:
    """An FTS5 query for the term: quoted, so that its characters are words,
    never operators."""
    return '"' + term.text.replace('"', '""') + '"'


def _substring(term: Term) -> str | None:
    """What to look for as a substring, if the term may be: folded, and for a
    phrase without its spaces (OCR often drops them)."""
    text = fold(term.text)
    if term.phrase:
        text = "".join(text.split())
    if (
        len(text) >= MIN_SUBSTRING
        or (len(text) >= 3 and any(char.isdigit() for char in text))
        or (_unspaced(text) and len(text) >= 2)
    ):
        return text
    return None


def _matching(store: Store, space: Space, term: Term) -> tuple[dict[int, float], set[int]]:
    """(segments holding the term as words -> bm25, all segments holding it)."""
    as_words = store.with_words(space, _fts(term))
    anywhere = set(as_words)
    substring = _substring(term)
    if substring is not None:
        anywhere |= store.with_substring(space, substring)
    return as_words, anywhere


def _scores(candidates: dict[int, tuple[int, float]], total: int) -> dict[int, float]:
    """Calibrated scores for segments with (level, relevance): see the module
    docstring."""
    scores: dict[int, float] = {}
    levels = sorted({level for level, _ in candidates.values()}, reverse=True)
    at_least = 0
    for level in levels:
        members = {i: r for i, (lv, r) in candidates.items() if lv == level}
        at_least += len(members)
        share = min(at_least / (total + 1), 1 - 1e-9)
        base = _NORMAL.inv_cdf(1 - share)
        top = max(members.values()) or 1.0
        for segment, relevance in members.items():
            scores[segment] = base + ORDER_NUDGE * max(relevance, 0.0) / top
    return scores


def _all_terms(
    store: Store, space: Space, required: Sequence[Term], excluded: Sequence[Term]
) -> dict[int, tuple[int, float]]:
    """Segments holding every required term: (terms matched as words, bm25)."""
    candidates: set[int] | None = None
    level: dict[int, int] = {}
    relevance: dict[int, float] = {}
    for term in required:
        as_words, anywhere = _matching(store, space, term)
        candidates = anywhere if candidates is None else candidates & anywhere
        for segment, bm25 in as_words.items():
            level[segment] = level.get(segment, 0) + 1
            relevance[segment] = relevance.get(segment, 0.0) + bm25
        if not candidates:
            return {}
    for term in excluded:
        candidates = (candidates or set()) - _matching(store, space, term)[1]
    return {i: (level.get(i, 0), relevance.get(i, 0.0)) for i in candidates or ()}


def _any_terms(store: Store, space: Space, example: str) -> dict[int, tuple[int, float]]:
    """Segments sharing words with an example's: (words shared, bm25 summed),
    from its rarest words, at least two shared (or its only one)."""
    found: list[tuple[int, dict[int, float], set[int]]] = []
    for term in terms(example.replace('"', " ")):
        if _substring(term) is None and len(term.text) < 3:
            continue  # "a", "of": shared by everything
        as_words, anywhere = _matching(store, space, term)
        if anywhere:
            found.append((len(anywhere), as_words, anywhere))
    found.sort(key=lambda item: item[0])
    shared: dict[int, tuple[int, float]] = {}
    for _, as_words, anywhere in found[:EXAMPLE_TERMS]:
        for segment in anywhere:
            count, total = shared.get(segment, (0, 0.0))
            shared[segment] = (count + 1, total + as_words.get(segment, 0.0))
    least = min(2, len(found))
    return {i: value for i, value in shared.items() if value[0] >= least}


def word_matches(
    store: Store,
    space: Space,
    query: str | None,
    more: Sequence[str],
    excluded: Sequence[str],
    examples: Sequence[str],
    filters: Filters,
) -> Matches:
    """The segments of a words space that match the query's words (and the
    words of `more`, none of `excluded`) or share words with the examples',
    with calibrated scores, best first, passing `filters`."""
    required = [term for text in ([query] if query else []) + list(more) for term in terms(text)]
    avoided = [term for text in excluded for term in terms(text)]
    matches = Matches(searched=bool(required or any(examples)))
    total = store.words_count(space)
    scores: dict[int, float] = {}
    if required:
        scores = _scores(_all_terms(store, space, required, avoided), total)
    for example in examples:
        for segment, score in _scores(_any_terms(store, space, example), total).items():
            scores[segment] = max(score, scores.get(segment, score))
    hits = store.word_hits(scores, filters)
    matches.scored = sorted(
        ((hit, scores[hit.segment_id]) for hit in hits), key=lambda item: -item[1]
    )
    return matches


def highlight_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where the query's words appear in `text`, as (start, end) character
    spans, for a table that marks them: as words or substrings, ignoring case
    and diacritics (a folded copy keeps the same length for most scripts)."""
    folded = fold(text)
    if len(folded) != len(text):
        return []
    spans: list[tuple[int, int]] = []
    for term in terms(query):
        needle = fold(term.text)
        if not needle:
            continue
        at = folded.find(needle)
        while at != -1:
            spans.append((at, at + len(needle)))
            at = folded.find(needle, at + len(needle))
    return sorted(spans)
