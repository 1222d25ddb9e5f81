"""How common a word is in a language: the chance that it turns up by accident.

The frequencies are wordfreq's (Robyn Speer's merged counts from subtitles,
books, Wikipedia, the web and more, in 40+ languages). Its "small" lists are
read: they hold every word said at least about once in a million words (29,000
in English) and load in about 10 ms a language, where the large ones take
about 90 ms and differ only for rarer words, which score as rare either way.
A word the lists do not know (a name, a code, a misreading) counts as ten
times rarer than the rarest they hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

WORDLIST = "small"
# What a word the lists do not hold is taken to be: a tenth of the rarest
# they hold (1e-6).
UNSEEN_FREQUENCY = 1e-7
# A word at least this frequent carries no meaning alone: in English "the",
# "to", "of", "on", "your" and about 60 more; in French "de", "le", "sur";
# in German "der", "und", "auf". Chosen from the lists' top words: below it
# come "time", "people", "call", which a person does remember.
STOP_FREQUENCY = 2e-3
# Always consulted: queries are most often typed in English.
BASE_LANGUAGE = "en"


@cache
def _supported() -> frozenset[str]:
    from wordfreq import available_languages

    return frozenset(available_languages(WORDLIST))


@cache
def _language(code: str) -> str | None:
    """wordfreq's name for a stored language (`fra`, `en`, `pt-BR`), if it has one."""
    import langcodes

    try:
        tag = langcodes.standardize_tag(code)
    except (ValueError, LookupError):
        return None
    language = langcodes.Language.get(tag).language
    return language if language in _supported() else None


def languages(stored: Iterable[str]) -> tuple[str, ...]:
    """The languages to weigh words in: English, and the index's own."""
    found = [BASE_LANGUAGE] + [name for code in stored if (name := _language(code))]
    return tuple(dict.fromkeys(found))


@cache
def frequency(word: str, langs: tuple[str, ...]) -> float:
    """How often `word` is said or written, per word of running text, in the
    most frequent of `langs` (so a word common in any of them counts as
    common: "die" is German's "the")."""
    from wordfreq import word_frequency

    found = max(word_frequency(word, lang, wordlist=WORDLIST) for lang in langs)
    return max(found, UNSEEN_FREQUENCY)


def is_stop_word(word: str, langs: tuple[str, ...]) -> bool:
    """Whether `word` carries no meaning alone (see STOP_FREQUENCY)."""
    return frequency(word, langs) >= STOP_FREQUENCY
