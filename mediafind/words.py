"""Matching words: what is said (speech) and written (text) against a query.

Words are ranked, as a search engine ranks pages, not filtered: a phrase or a
block of text is found when it holds any of the query's meaningful words, and
scores by how unlikely it is to hold what it holds by chance.

Each word of the query found in a segment weighs -ln p, where p is the chance
that a segment of that length holds the word: from how common the word is in
the language (`mediafind.frequencies`) and in this index, as a Beta prior of
PRIOR_SEGMENTS segments worth of the language's estimate, updated by how many
of the index's other segments hold it. A small index thus leans on the
language and a large one on itself, and a rare word weighs more than a common
one (an IDF weight that a small library cannot flatten). Words found in the
query's order, side by side or near, weigh more: given that both are there,
the chance that the second follows the first within g words is about g/L in a
segment of L words, so the pair adds ln(L/g). The segment's chance is then
p = exp(-sum), and its score the normal quantile of 1 - p: the same z-score
scale as the pictures' and sounds' calibrated cosines (see `mediafind.query`).
A segment holding only part of the query's weight scores its z-score times
the square of that share (half the weight, a quarter of the score): the most
words first, the fewest last, and a phrase that shares one word with a
picture query ("the dog on the rug" for "a dog on the beach") stays below
the pictures that match it.

Words that carry no meaning alone (`the`, `to`, `on`, per language:
`frequencies.STOP_FREQUENCY`) weigh half, link no pair by themselves, and
never find a segment on their own unless the query has nothing else.

Forms other than the exact word are found too, each weighing less than the
word itself: English endings (`candles`, `recorded`), digits for number words
and back (`7` / `seven`, `2024` / `twenty twenty four`), hyphens, joined and
split words (`re-record`, `rerecord`, `re record`), part of a longer word
when long enough not to turn up by accident (four characters, three with a
digit, two in scripts written without spaces: `GATEB12DEPARTURES` holds
`gate` and `b12`), and one wrong, missing or extra letter in a word of
NEAR_SPELLING_FROM letters or more (what ASR and OCR most often get wrong).
A "quoted phrase" must appear as a phrase, and `--not` words not at all.
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from mediafind import frequencies
from mediafind.db import Filters, SegmentHit, Space, Store, fold

# Substrings shorter than this match too much by accident (`own` in `town`),
# except codes with a digit from three characters (`b12`) and scripts
# written without spaces from two (see `_substring`).
MIN_SUBSTRING = 4
# An example (a recording used with --like) is matched by its rarest words.
EXAMPLE_TERMS = 40
# Within one level of an example's match, bm25 moves a score by at most this much.
ORDER_NUDGE = 0.05
# How many segments' worth of evidence the language's frequencies count for
# against the index's own counts: below about this many segments the index
# cannot tell a rare word from a common one, above it it can.
PRIOR_SEGMENTS = 100
# A near spelling is looked for from this many letters: in shorter words one
# letter makes another common word (`cat`, `car`). Five letters still collide
# (`house`, `horse`) but scores below the word itself, and Whisper's slips
# are often there (`launch` for `lunch`, measured by bench/words_ranking.py).
NEAR_SPELLING_FROM = 5
# The share of its weight a word that carries no meaning alone keeps.
STOP_SHARE = 0.5
# The share of a word's weight each form of match keeps: the word itself,
# an English ending, another way of writing it (digits, hyphens, joined or
# split), a part of a longer word, a near spelling.
EXACT = 1.0
STEM = 0.9
VARIANT = 0.8
SUBSTRING = 0.7
NEAR = 0.6
# A snippet shows about this many characters around the matched words: a
# line of the table, not a whole invoice page.
SNIPPET_CHARS = 120
# Chances below this are all "certainly not by chance" (a z-score of 37).
_TINY = 1e-300

_TOKEN = re.compile(r'"([^"]+)"|(\S+)')
# A word, with its hyphens: `re-record` is one word of two parts.
_WORD = re.compile(r"\w+(?:[-\u2010\u2011]\w+)*")
_NORMAL = NormalDist()

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


@dataclass(frozen=True)
class Term:
    """A word of a query (folded, hyphens kept), a run of number words, or a
    quoted phrase."""

    text: str
    phrase: bool = False

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(_WORD.findall(self.text))

    @property
    def joined(self) -> str:
        """Its letters and digits without spaces or hyphens."""
        return _joined(self.text)

    @property
    def number(self) -> str | None:
        """The digits it says, for a number in digits or in words."""
        if self.phrase:
            return None
        if self.text.isdigit():
            return self.text
        return _spoken_digits(self.words)


@dataclass
class Matches:
    scored: list[tuple[SegmentHit, float]] = field(default_factory=list)
    # Whether there was anything to look for (words, or an example's).
    searched: bool = False
    # Where the query's words are in each scored segment's text: (start, end)
    # character spans.
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


def _joined(text: str) -> str:
    return "".join(char for char in text if char.isalnum())


def _spoken_digits(words: Sequence[str]) -> str | None:
    """The digits a run of number words says: `seven` 7, `twenty four` 24,
    `twenty twenty four` 2024 (years and codes are said in pairs)."""
    digits, at = "", 0
    while at < len(words):
        word = words[at]
        if word in _TENS:
            value = 20 + 10 * _TENS.index(word)
            if at + 1 < len(words) and words[at + 1] in _UNITS[1:10]:
                value += _UNITS.index(words[at + 1])
                at += 1
        elif word in _UNITS:
            value = _UNITS.index(word)
        else:
            return None
        digits += str(value)
        at += 1
    return digits or None


def _said(digits: str) -> str | None:
    """How digits are said, where that is cheap to know: 0 to 99, and four
    digits said as two pairs (`2024`: twenty twenty four)."""

    def pair(value: int) -> str:
        if value < 20:
            return _UNITS[value]
        tens, unit = divmod(value, 10)
        return _TENS[tens - 2] + (f" {_UNITS[unit]}" if unit else "")

    if len(digits) <= 2 and (digits == "0" or not digits.startswith("0")):
        return pair(int(digits))
    if len(digits) == 4 and digits[0] != "0" and digits[2] != "0":
        return f"{pair(int(digits[:2]))} {pair(int(digits[2:]))}"
    return None


def _strip(word: str) -> str:
    """A word without the punctuation around it ("grandma!" -> grandma)."""
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(word[end - 1]).startswith("P"):
        end -= 1
    return word[start:end]


def terms(text: str) -> list[Term]:
    """The words and "quoted phrases" of a query, in order, folded, without
    repeats; a run of number words is one term (`twenty twenty four`)."""
    found: dict[str, Term] = {}
    run: list[str] = []

    def add(term: Term) -> None:
        if term.text and term.text not in found:
            found[term.text] = term

    def end_run() -> None:
        if run:
            add(Term(" ".join(run)))
            run.clear()

    for phrase, word in _TOKEN.findall(text):
        if phrase:
            end_run()
            add(Term(" ".join(_WORD.findall(fold(phrase))), True))
            continue
        for token in _WORD.findall(fold(_strip(word))):
            if token in _UNITS or token in _TENS:
                run.append(token)
            else:
                end_run()
                add(Term(token))
    end_run()
    return list(found.values())


def _unspaced(text: str) -> bool:
    """Whether `text` is in a script written without spaces between words."""
    return any(
        unicodedata.name(char, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI"))
        for char in text
    )


def _fts(text: str) -> str:
    """An FTS5 query for words: quoted, so that its characters are words,
    never operators."""
    return '"' + text.replace('"', '""') + '"'


def _substring_ok(text: str) -> bool:
    """Whether `text` is long enough to look for inside longer words."""
    return (
        len(text) >= MIN_SUBSTRING
        or (len(text) >= 3 and any(char.isdigit() for char in text))
        or (_unspaced(text) and len(text) >= 2)
    )


def _substring(term: Term) -> str | None:
    """What to look for as a substring, if the term may be: folded, and for a
    phrase without its spaces (OCR often drops them)."""
    text = term.joined if term.phrase or "-" in term.text else term.text
    return text if _substring_ok(text) else None


def _stem(word: str) -> str:
    """A word without its English ending, for comparing (`recorded`, `recording`
    and `records` with `record`; `candles` with `candle`)."""
    if not word.isalpha() or len(word) < 4:
        return word
    for suffix, instead in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + instead
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _one_edit(a: str, b: str) -> bool:
    """Whether `b` is `a` with one letter changed, dropped or added."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    at = 0
    while at < len(a) and a[at] == b[at]:
        at += 1
    return a[at + 1 :] == b[at + 1 :] if len(a) == len(b) else a[at:] == b[at + 1 :]


# Finding candidates ----------------------------------------------------------


@dataclass
class _Found:
    """The segments a term was looked up in: those holding it as written
    (words, other spellings of it, as a part of a longer word), and those that
    may hold a near spelling (to be checked)."""

    held: set[int] = field(default_factory=set)
    # Segments the FTS5 index says hold the term as words (stemmed).
    as_words: set[int] = field(default_factory=set)
    maybe: set[int] = field(default_factory=set)


def _near_spelling_ok(term: Term) -> bool:
    return not term.phrase and term.joined.isalpha() and len(term.joined) >= NEAR_SPELLING_FROM


def _look_up(store: Store, space: Space, term: Term) -> _Found:
    found = _Found(as_words=set(store.with_words(space, _fts(term.text))))
    found.held |= found.as_words
    number = term.number
    if number is not None:
        for other in (number, _said(number)):
            if other is not None and other != term.text:
                found.held |= set(store.with_words(space, _fts(other)))
    if "-" in term.text:
        found.held |= set(store.with_words(space, _fts(term.joined)))
    substring = _substring(term)
    if substring is not None:
        found.held |= store.with_substring(space, substring)
    if _near_spelling_ok(term):
        # One edit leaves the first or the last half of a word intact, and
        # halves of three letters or more are what the trigram index finds
        # (in a word of five, three letters overlap the middle one: a slip
        # there is not found); of those segments, the ones holding the word
        # with a letter changed, dropped or added (LIKE's `_`: any one).
        word = term.joined
        half = max(3, len(word) // 2)
        patterns = {
            f"%{word[:at]}{middle}{word[at + skip :]}%"
            for at in range(len(word) + 1)
            for middle, skip in (("_", 1), ("", 1), ("_", 0))
            if at + skip <= len(word)
        }
        pieces = (word[:half], word[-half:])
        found.maybe = store.with_near_spelling(space, pieces, sorted(patterns))
    return found


def _candidates(
    store: Store,
    space: Space,
    required: Sequence[Term],
    excluded: Sequence[Term],
    langs: tuple[str, ...],
) -> tuple[set[int], dict[str, _Found]]:
    """Segments that may match: those holding a meaningful word of the query
    (any word, when it has none), and every quoted phrase, and no --not word."""
    meaningful = [t for t in required if t.phrase or not _is_stop(t, langs)]
    looked = {term.text: _look_up(store, space, term) for term in meaningful}
    if meaningful:
        candidates: set[int] = set()
        for term in meaningful:
            candidates |= looked[term.text].held | looked[term.text].maybe
    else:
        # Only words without meaning alone ("to be or not to be"): the
        # segments holding all of them, found by the index, not one by one.
        query = " AND ".join(_fts(term.text) for term in required)
        candidates = set(store.with_words(space, query)) if required else set()
    for term in meaningful:
        if term.phrase:
            candidates &= looked[term.text].held
    for term in excluded:
        found = _look_up(store, space, term)
        candidates -= found.held
    return candidates, looked


# Scoring a segment -------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    text: str  # folded, hyphens kept
    start: int  # where it is in the segment's text
    end: int

    @property
    def joined(self) -> str:
        return _joined(self.text)


@dataclass(frozen=True)
class _Option:
    """One place a term matches in a segment: tokens first..last (a part of
    `first` at `sub` when several terms share one written word)."""

    quality: float
    first: int
    last: int
    sub: int
    span: tuple[int, int]


def _tokens(text: str) -> list[_Token]:
    return [_Token(fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def _inner_span(token: _Token, needle: str) -> tuple[int, int]:
    """Where `needle` is inside the written word (the whole word when its
    folded form does not line up with the original letters)."""
    if len(token.text) == token.end - token.start:
        at = token.text.find(needle)
        if at >= 0:
            return token.start + at, token.start + at + len(needle)
    return token.start, token.end


def _options(term: Term, tokens: Sequence[_Token]) -> list[_Option]:
    """Every place `term` matches in the segment, with how well."""
    words = term.words
    found: list[_Option] = []
    width = len(words)
    for at in range(len(tokens) - width + 1):
        window = tokens[at : at + width]
        span = (window[0].start, window[-1].end)
        if all(t.text == w for t, w in zip(window, words, strict=True)):
            found.append(_Option(EXACT, at, at + width - 1, 0, span))
        elif all(_stem(t.text) == _stem(w) for t, w in zip(window, words, strict=True)):
            found.append(_Option(STEM, at, at + width - 1, 0, span))
    number = term.number
    if number is not None:
        found += _number_options(term, number, tokens)
    joined = term.joined
    for at, token in enumerate(tokens):
        whole = (token.start, token.end)
        if token.text == term.text:
            continue
        if not term.phrase and joined == token.joined:
            found.append(_Option(VARIANT, at, at, 0, whole))
        elif not term.phrase and "-" in token.text and term.text in token.text.split("-"):
            found.append(_Option(VARIANT, at, at, 0, _inner_span(token, term.text)))
        elif _substring_ok(joined) and joined in token.joined and len(token.joined) > len(joined):
            sub = token.joined.find(joined)
            found.append(_Option(SUBSTRING, at, at, sub, _inner_span(token, joined)))
        elif _near_spelling_ok(term) and _one_edit(joined, token.joined):
            found.append(_Option(NEAR, at, at, 0, whole))
        if (
            not term.phrase
            and at + 1 < len(tokens)
            and joined == token.joined + tokens[at + 1].joined
        ):
            found.append(_Option(VARIANT, at, at + 1, 0, (token.start, tokens[at + 1].end)))
    return found


def _number_options(term: Term, number: str, tokens: Sequence[_Token]) -> list[_Option]:
    """Where the number is written the other way: digits for words, words for digits."""
    found: list[_Option] = []
    for at, token in enumerate(tokens):
        if token.text == number and term.text != number:
            found.append(_Option(VARIANT, at, at, 0, (token.start, token.end)))
        end = at
        while end < len(tokens) and (tokens[end].text in _UNITS or tokens[end].text in _TENS):
            end += 1
        for last in range(at, end):
            run = [t.text for t in tokens[at : last + 1]]
            if _spoken_digits(run) == number and " ".join(run) != term.text:
                span = (token.start, tokens[last].end)
                found.append(_Option(VARIANT, at, last, 0, span))
    return found


def _joined_pairs(
    query: Sequence[Term], tokens: Sequence[_Token], options: list[list[_Option]]
) -> None:
    """Two words of the query written as one (`re record` for `rerecord`, a
    sign read without its spaces): each matches its part of that word."""
    for index in range(len(query) - 1):
        first, second = query[index], query[index + 1]
        if first.phrase or second.phrase:
            continue
        both = first.joined + second.joined
        for at, token in enumerate(tokens):
            if token.joined == both:
                whole = (token.start, token.end)
                options[index].append(_Option(VARIANT, at, at, 0, whole))
                options[index + 1].append(_Option(VARIANT, at, at, 1, whole))


def _gap(before: _Option, after: _Option) -> int | None:
    """How many words on `after` follows `before` (1: next to it), or None
    when it does not follow it."""
    if after.first == before.first and after.sub > before.sub:
        return 1
    if after.first > before.last:
        return after.first - before.last
    return None


def _choose(options: Sequence[Sequence[_Option]]) -> list[_Option | None]:
    """For each term, its best match in the segment: the best form, and of
    those the one that follows the previous term's most closely."""
    chosen: list[_Option | None] = []
    previous: _Option | None = None
    for choices in options:
        if not choices:
            chosen.append(None)
            continue

        def rank(option: _Option, previous: _Option | None = previous) -> tuple[float, float]:
            known = previous is not None and previous.first >= 0
            gap = _gap(previous, option) if known and previous is not None else None
            return (option.quality, -(gap if gap is not None else math.inf))

        best = max(choices, key=rank)
        chosen.append(best)
        previous = best
    return chosen


@dataclass
class _Reading:
    """Where a segment holds each term of the query (None: not at all)."""

    hit: SegmentHit
    length: int
    chosen: list[_Option | None]


def _read(hit: SegmentHit, query: Sequence[Term], looked: dict[str, _Found]) -> _Reading:
    tokens = _tokens(hit.text or "")
    options = [_options(term, tokens) for term in query]
    _joined_pairs(query, tokens, options)
    for index, term in enumerate(query):
        found = looked.get(term.text)
        if not options[index] and found is not None and hit.segment_id in found.as_words:
            # Held by an ending FTS5's stemmer knows and ours does not: where
            # in the segment is not known.
            options[index].append(_Option(STEM, -1, -1, 0, (0, 0)))
    return _Reading(hit, max(len(tokens), 2), _choose(options))


def _side_by_side(reading: _Reading, index: int) -> float | None:
    """How well the segment holds the query's terms `index` and `index + 1`
    side by side, in order (the lesser of the two forms), if it does."""
    before, after = reading.chosen[index], reading.chosen[index + 1]
    if before is None or after is None or before.first < 0 or _gap(before, after) != 1:
        return None
    return min(before.quality, after.quality)


class _Holders:
    """How many segments hold something as well as a given one or better."""

    def __init__(self, qualities: Iterable[float | None]) -> None:
        self._sorted = sorted(quality for quality in qualities if quality is not None)

    def at_least(self, quality: float) -> int:
        return len(self._sorted) - bisect.bisect_left(self._sorted, quality)


@dataclass(frozen=True)
class _Context:
    """What scoring a segment needs to know about the query and the index:
    for each term and each two neighbouring terms, the segments holding them
    (counted among the candidates, as exactly as the segment scored does:
    FTS5's stems count `called` as `call`)."""

    query: Sequence[Term]
    meaningful: Sequence[bool]
    terms: Sequence[_Holders | None]
    pairs: Sequence[_Holders]
    total: int
    langs: tuple[str, ...]

    def chance(self, holders: _Holders | None, quality: float, language: float) -> float:
        """The chance that a segment holds something, from the language's
        estimate and how many of the index's other segments hold it (see the
        module docstring); from the language alone for words without
        meaning alone, whose holders were not all looked at."""
        if holders is not None:
            others = max(holders.at_least(quality) - 1, 0)
            language = (others + PRIOR_SEGMENTS * language) / (self.total - 1 + PRIOR_SEGMENTS)
        return min(max(language, _TINY), 1.0 - 1e-12)


def _quality(option: _Option | None) -> float | None:
    return option.quality if option is not None else None


def _context(
    readings: Sequence[_Reading], query: Sequence[Term], total: int, langs: tuple[str, ...]
) -> _Context:
    meaningful = [not _is_stop(term, langs) for term in query]
    terms = [
        _Holders(_quality(r.chosen[i]) for r in readings) if means else None
        for i, means in enumerate(meaningful)
    ]
    pairs = [_Holders(_side_by_side(r, i) for r in readings) for i in range(len(query) - 1)]
    return _Context(query, meaningful, terms, pairs, total, langs)


def _is_stop(term: Term, langs: tuple[str, ...]) -> bool:
    return not term.phrase and frequencies.is_stop_word(term.text, langs)


def _language_chance(term: Term, length: int, langs: tuple[str, ...]) -> float:
    """The chance that a segment of `length` words holds the term, by the
    language's frequencies."""
    chance = 1.0
    for word in term.words if term.phrase else (term.text,):
        chance *= 1.0 - (1.0 - frequencies.frequency(word, langs)) ** length
    # A phrase's words side by side, in order.
    return chance / length ** (len(term.words) - 1) if term.phrase else chance


def _order_weight(
    reading: _Reading, at: int, index: int, chances: Sequence[float], context: _Context
) -> float:
    """What it adds that the term `index` follows the term `at` in the
    segment as in the query. Given both, the second is within g words after
    the first with a chance of about g/L; two neighbours in the query side by
    side are also weighed by how many of the index's segments hold them so."""
    before, after = reading.chosen[at], reading.chosen[index]
    assert before is not None and after is not None
    gap = _gap(before, after)
    if gap is None or gap >= reading.length:
        return 0.0
    weight = math.log(reading.length / gap)
    quality = min(before.quality, after.quality)
    if gap == 1 and at == index - 1:
        both = chances[at] * chances[index]
        together = context.chance(context.pairs[at], quality, both / reading.length)
        weight = max(weight, math.log(both / together))
    return quality * weight


def _score(reading: _Reading, context: _Context) -> float | None:
    """The segment's calibrated score, or None when it holds no meaningful
    word of the query (or misses a quoted phrase)."""
    chosen, meaningful, query = reading.chosen, context.meaningful, context.query
    if any(meaningful) and not any(c for c, m in zip(chosen, meaningful, strict=True) if m):
        return None
    if any(t.phrase and c is None for t, c in zip(query, chosen, strict=True)):
        return None
    chances = [
        context.chance(
            holders,
            option.quality if option else EXACT,
            _language_chance(term, reading.length, context.langs),
        )
        for term, holders, option in zip(query, context.terms, chosen, strict=True)
    ]
    weights = [
        -math.log(chance) * (1.0 if means else STOP_SHARE)
        for chance, means in zip(chances, meaningful, strict=True)
    ]
    evidence = sum(c.quality * w for c, w in zip(chosen, weights, strict=True) if c is not None)
    previous: int | None = None
    for index, option in enumerate(chosen):
        if option is None or option.first < 0:
            continue
        if previous is not None and (meaningful[index] or meaningful[previous]):
            evidence += _order_weight(reading, previous, index, chances, context)
        previous = index
    share = sum(w for c, w in zip(chosen, weights, strict=True) if c is not None) / sum(weights)
    z = -_NORMAL.inv_cdf(min(max(math.exp(-evidence), _TINY), 1.0 - 1e-12))
    return z * share**2


def _spans(reading: _Reading) -> list[tuple[int, int]]:
    return sorted(c.span for c in reading.chosen if c is not None and c.first >= 0)


# The old calibration, kept for examples: an example's words are many, and are
# matched by how many of its rarest a segment shares.


def _scores(candidates: dict[int, tuple[int, float]], total: int) -> dict[int, float]:
    """Calibrated scores for segments with (level, relevance): the z-score of
    the share of the index's segments that match as well or better."""
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


def _any_terms(store: Store, space: Space, example: str) -> dict[int, tuple[int, float]]:
    """Segments sharing words with an example's: (words shared, bm25 summed),
    from its rarest words, at least two shared (or its only one)."""
    found: list[tuple[int, dict[int, float], set[int]]] = []
    for term in terms(example.replace('"', " ")):
        if _substring(term) is None and len(term.text) < 3:
            continue  # "a", "of": shared by everything
        as_words = store.with_words(space, _fts(term.text))
        anywhere = set(as_words)
        substring = _substring(term)
        if substring is not None:
            anywhere |= store.with_substring(space, substring)
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
    """The segments of a words space that match the query's words (with the
    words of `more`, none of `excluded`) or share words with the examples',
    with calibrated scores, best first, passing `filters`."""
    required = _unique(
        term for text in ([query] if query else []) + list(more) for term in terms(text)
    )
    avoided = [term for text in excluded for term in terms(text)]
    matches = Matches(searched=bool(required or any(examples)))
    total = store.words_count(space)
    scores: dict[int, float] = {}
    found: dict[int, SegmentHit] = {}
    if required:
        langs = frequencies.languages(store.languages())
        candidates, looked = _candidates(store, space, required, avoided, langs)
        # Every candidate counts in how common each term is; only those
        # passing the filters are scored.
        readings = [_read(hit, required, looked) for hit in store.word_hits(candidates)]
        context = _context(readings, required, total, langs)
        passing = (
            {hit.segment_id for hit in store.word_hits(candidates, filters)}
            if filters.sql()[0]
            else None
        )
        for reading in readings:
            segment = reading.hit.segment_id
            score = _score(reading, context) if passing is None or segment in passing else None
            if score is not None:
                scores[segment], found[segment] = score, reading.hit
                matches.spans[segment] = _spans(reading)
    for example in examples:
        by_example = _scores(_any_terms(store, space, example), total)
        for segment, score in by_example.items():
            scores[segment] = max(score, scores.get(segment, score))
        for hit in store.word_hits([s for s in by_example if s not in found], filters):
            found[hit.segment_id] = hit
    matches.scored = sorted(
        ((hit, scores[segment]) for segment, hit in found.items()), key=lambda item: -item[1]
    )
    return matches


def _unique(found: Iterable[Term]) -> list[Term]:
    """The terms without repeats, in order (the query's and --and's)."""
    kept: dict[str, Term] = {}
    for term in found:
        kept.setdefault(term.text, term)
    return list(kept.values())


def highlight_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where the query's words appear in `text`, as (start, end) character
    spans, for a table that marks them: as words or substrings, ignoring case
    and diacritics (a folded copy keeps the same length for most scripts)."""
    folded = fold(text)
    if len(folded) != len(text):
        return []
    spans: list[tuple[int, int]] = []
    for term in terms(query):
        needle = term.text
        if not needle:
            continue
        at = folded.find(needle)
        while at != -1:
            spans.append((at, at + len(needle)))
            at = folded.find(needle, at + len(needle))
    return sorted(spans)


@dataclass(frozen=True)
class Snippet:
    """The words around where a segment matched, on one row (a block's lines
    joined with ` / `, as output shows them), and where the matched words are
    in it: (start, end) character spans."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()


def snippet(text: str, spans: Sequence[tuple[int, int]], width: int = SNIPPET_CHARS) -> Snippet:
    """A row of at most about `width` characters of `text` around the most of
    the matched `spans` (the whole text when short enough), cut at spaces,
    with "…" where it was cut."""
    row, marks = _one_row(text, spans)
    if len(row) <= width:
        return Snippet(row, tuple(marks))
    context = width // 5
    start = 0
    if marks:

        def covered(left: int) -> int:
            return sum(1 for s, e in marks if s >= left - context and e <= left - context + width)

        anchor = max((s for s, _ in marks), key=lambda s: (covered(s), -s))
        start = min(max(0, anchor - context), len(row) - width)
    end = min(len(row), start + width)
    if start > 0:
        space = row.find(" ", start, start + context)
        start = space + 1 if space >= 0 else start
    if end < len(row):
        space = row.rfind(" ", end - context, end)
        end = space if space > start else end
    head = "…" if start > 0 else ""
    tail = "…" if end < len(row) else ""
    shift = len(head) - start
    inside = tuple((s + shift, e + shift) for s, e in marks if s >= start and e <= end)
    return Snippet(head + row[start:end].strip() + tail, inside)


def _one_row(text: str, spans: Sequence[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """`text` with its lines joined by ` / `, and `spans` moved to match."""
    row = ""
    marks: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\r\n]+", text):
        content = line.group()
        lead = len(content) - len(content.lstrip())
        content = content.strip()
        if not content:
            continue
        if row:
            row += " / "
        begin = line.start() + lead
        shift = len(row) - begin
        for s, e in spans:
            if begin <= s < begin + len(content):
                marks.append((s + shift, min(e, begin + len(content)) + shift))
        row += content
    return row, sorted(marks)
