"""Words are ranked like a search engine ranks pages, and their scores sit on
the pictures' scale. Each expected order below is worked out by hand from
the phrases (which words each holds, in which order, in which form); the
libraries are written straight into an index (the words as a transcript or
OCR would give them, the pictures as vectors), since the subject is ranking,
not models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_modality import FakePictures, text_vector

from mediafind import config, query
from mediafind import modalities as registry
from mediafind.db import FileFacts, Filters, NewSegment, Part, Store
from mediafind.words import word_matches

DIM = 48


def said(db: Path, phrases: list[str], modality: str = "speech") -> None:
    """An index of recordings, one phrase each (`modality`: speech or text)."""
    with Store.open(db, create=True) as store:
        space = store.create_space(modality, "m", f"{modality}:m", 0, active=True)
        for number, phrase in enumerate(phrases):
            facts = FileFacts(f"/memos/{number:04d}.wav", "audio", 1, 1, f"h{number}", "ok")
            segment = NewSegment(modality, 0.0, 2.0)
            store.write_file(facts, [Part(space, [segment], texts=[phrase])])


def ranked(db: Path, words: str, *, excluded: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """(phrase, score) of the phrases matching `words`, best first."""
    with Store.open(db, create=False) as store:
        space = store.active_space("speech") or store.active_space("text")
        assert space is not None
        found = word_matches(store, space, words, [], list(excluded), [], Filters())
    return [(hit.text or "", score) for hit, score in found.scored]


def order(db: Path, words: str) -> list[str]:
    return [text for text, _ in ranked(db, words)]


def test_words_together_and_in_order_beat_the_same_words_apart(db_path: Path):
    phrases = [
        "press one to your temporary record greeting now",
        "press three to re-record your message",
        "press one to record your temporary greeting now",
        "nothing about it",
    ]
    said(db_path, phrases)
    found = order(db_path, "record your")
    # The same eight words as the first phrase, but "record your" side by
    # side and in order: first. Then, in either order, the same words apart
    # and reversed, and the two side by side with the first a part of
    # "re-record" (tied under the old rule, every word held either way).
    assert found[0] == phrases[2]
    assert set(found[1:]) == {phrases[0], phrases[1]}
    # Quoted, the words must be side by side; --not words must be absent.
    assert phrases[0] not in order(db_path, '"record your"')
    without = [text for text, _ in ranked(db_path, "record your", excluded=("message",))]
    assert without == [phrases[2], phrases[0]]


def test_a_phrase_holding_most_of_the_words_is_found_below_those_holding_all(db_path: Path):
    phrases = [
        "a blue kayak left the harbour at dawn",
        "we hired a blue kayak",
        "blue skies all day",
        "the ferry was late",
    ]
    said(db_path, phrases)
    # All three words; two of three; one of three; none.
    assert order(db_path, "blue kayak harbour") == phrases[:3]


def test_rare_words_weigh_more_than_common_ones(db_path: Path):
    phrases = ["the orchid was in the kitchen", "the house was in the kitchen"]
    said(db_path, phrases)
    # Each holds one of the two words; "orchid" is far rarer in English than
    # "house", and the two are equally common in this index.
    assert order(db_path, "orchid house") == phrases


def test_words_without_meaning_alone_never_make_a_strong_match(db_path: Path):
    # A library of 200 phrases, so that under the old rule (how few phrases
    # match) holding "on the" looked as rare as a strong picture match.
    filler = [f"number {n} is filler" for n in range(196)]
    phrases = ["we sat on the bench", "the cat on the mat", "meet me at the harbour", *filler]
    phrases.append("the boat came into the harbour")
    said(db_path, phrases)
    # Only those words: found (the query has nothing else), but weak, under
    # what the best of 200 random pictures scores by chance (about 2.6).
    weak = ranked(db_path, "on the")
    assert {text for text, _ in weak} == {phrases[0], phrases[1]}
    assert all(score < 1.5 for _, score in weak)
    # Beside a word that means something, they find nothing alone: "at the"
    # without "bank" is no match, "harbour" without "at the" is one.
    assert order(db_path, "at the harbour") == [phrases[2], phrases[-1]]


def test_numbers_in_digits_and_in_words_find_each_other(db_path: Path):
    phrases = [
        "press seven to change folders",
        "press 7 to change folders",
        "in twenty twenty four we moved",
        "in 2024 we moved",
        "press eleven for more",
    ]
    said(db_path, phrases)
    # The form asked for first, the other form below it; nothing else.
    assert order(db_path, "seven") == [phrases[0], phrases[1]]
    assert order(db_path, "7") == [phrases[1], phrases[0]]
    assert order(db_path, "2024") == [phrases[3], phrases[2]]
    assert order(db_path, "twenty twenty four") == [phrases[2], phrases[3]]


def test_hyphens_joined_and_split_words_find_each_other(db_path: Path):
    phrases = ["please re-record it", "please rerecord it", "please re record it", "record it"]
    said(db_path, phrases)
    found = ranked(db_path, "re-record")
    # As written first; joined and split below it, level with each other;
    # "record" alone is not "re-record".
    assert next(text for text, _ in found) == phrases[0]
    assert {text for text, _ in found[1:]} == {phrases[1], phrases[2]}
    assert found[0][1] > found[1][1] == pytest.approx(found[2][1], abs=0.3)


def test_words_a_sign_was_read_without_spaces(db_path: Path):
    phrases = [
        "GATEB12DEPARTURES",
        "GATE B12 DEPARTURES 14:35",
        "GATEB12 ARRIVALS",
        "B1 DEPARTURES",
    ]
    said(db_path, phrases, modality="text")
    # All three as words; all three inside the joined word; two of three
    # inside it, "b12" the rarest; only "departures" ("B1" is not "B12").
    assert order(db_path, "gate b12 departures") == [phrases[1], phrases[0], phrases[2], phrases[3]]


def test_one_letter_misheard_still_finds_the_phrase_below_the_exact_one(db_path: Path):
    phrases = [
        "turn the volum control down",  # one letter missing
        "turn the volume control down",
        "turn the valume control down",  # one letter wrong
        "turn the vol control down",  # three missing: another word
    ]
    said(db_path, phrases)
    found = ranked(db_path, "volume")
    assert found[0][0] == phrases[1]
    assert {text for text, _ in found[1:]} == {phrases[0], phrases[2]}
    assert found[0][1] > found[1][1]


def test_a_five_letter_word_misheard_is_found(db_path: Path):
    # What Whisper tiny.en wrote for "a packed lunch" in the words bench.
    phrases = ["bring a packed launch", "bring a packed lunch", "bring a packed bag"]
    said(db_path, phrases)
    # Both words; both, one with a letter added; one of the two.
    found = ranked(db_path, "packed lunch")
    assert [text for text, _ in found] == [phrases[1], phrases[0], phrases[2]]
    assert found[0][1] > found[1][1] > found[2][1] + 1.0


# Words beside pictures: the default search -----------------------------------


def library(
    db: Path, files: int, phrases: dict[int, str], pictures: dict[int, np.ndarray]
) -> np.ndarray:
    """`files` videos, each a picture (random, or as given) and maybe a phrase;
    the pictures' vectors."""
    rng = np.random.default_rng(21)
    vectors = []
    with Store.open(db, create=True) as store:
        visual = store.create_space(
            "visual", "thumbnail-4x4", "fake:visual:thumbnail-4x4", DIM, active=True
        )
        speech = store.create_space("speech", "base", "whisper:base", 0, active=True)
        for number in range(files):
            vector = pictures.get(number, rng.standard_normal(DIM))
            vector = (vector / np.linalg.norm(vector)).astype(np.float32)
            vectors.append(vector)
            parts = [Part(visual, [NewSegment("visual", 0.0, 2.0)], vector[None])]
            if number in phrases:
                parts.append(
                    Part(speech, [NewSegment("speech", 0.0, 2.0)], texts=[phrases[number]])
                )
            facts = FileFacts(f"/videos/{number:04d}.mp4", "video", 1, 1, f"h{number}", "ok")
            store.write_file(facts, parts)
    return np.stack(vectors)


def searched(db: Path, words: str, limit: int = 5) -> list[query.SearchResult]:
    models = {
        "visual": FakePictures("visual", config.Choice("thumbnail-4x4", "index"), DIM, "fp32"),
        "speech": registry.get("speech").embedder(config.Choice("base", "index"), "cpu", "fp32"),
    }
    with Store.open(db, create=False) as store:
        return query.search(store, words, models, limit=limit)  # type: ignore[arg-type]


REMEMBERED = {
    "for calling": "thank you for calling the help desk",
    "change folders": "press seven to change folders",
    "volume 7": "turn it up to volume 7 please",
    "call the": "please call the office after lunch",
}
# Phrases that hold a remembered phrase's words apart, or reversed.
DECOYS = [
    "calling him was not for me",
    "the folders will change",
    "seven folders and a change of plan",
    "the volume went from 7 to 9",
    "the office will call",
    "the call went on",
]


def bulk_phrases(count: int) -> list[str]:
    """Ordinary talk: eight of English's 3,000 most common words at a time,
    never a remembered phrase."""
    from wordfreq import top_n_list

    common = [word for word in top_n_list("en", 3000) if word.isalpha()]
    rng = np.random.default_rng(7)
    phrases = list(DECOYS)
    while len(phrases) < count:
        phrase = " ".join(rng.choice(common, size=8))
        if not any(f" {words} " in f" {phrase} " for words in REMEMBERED):
            phrases.append(phrase)
    return phrases


@pytest.mark.parametrize("files", [10, 1000])
def test_a_remembered_phrase_comes_first_in_the_default_search(db_path: Path, files: int):
    targets = {number: phrase for number, phrase in enumerate(REMEMBERED.values())}
    talk = dict(enumerate(bulk_phrases(files // 2), start=len(targets)))
    library(db_path, files, {**targets, **talk}, {})
    for number, words in enumerate(REMEMBERED):
        found = searched(db_path, words)
        # The one file where the words are said side by side, in order.
        assert found[0].path == f"/videos/{number:04d}.mp4", (words, found[0])
        assert found[0].modality == "speech"


@pytest.mark.parametrize("files", [10, 1000])
def test_a_picture_query_is_not_taken_over_by_words_that_mean_nothing_alone(
    db_path: Path, files: int
):
    words = "a dog on the beach"
    toward = text_vector(words, DIM)
    rng = np.random.default_rng(3)
    # Three pictures fairly close to the query (cosines 0.6, 0.5, 0.4: about
    # as strong as the best of a thousand random ones), the rest random; a
    # third of the files say "on the" in a phrase, and one says "the beach"
    # without a dog.
    dogs = {}
    for number, cosine in [(0, 0.6), (1, 0.5), (2, 0.4)]:
        other = rng.standard_normal(DIM)
        other -= (other @ toward) * toward
        dogs[number] = cosine * toward + np.sqrt(1 - cosine**2) * other / np.linalg.norm(other)
    phrases = {n: "we sat on the bench by the sea" for n in range(3, files, 3)}
    vectors = library(db_path, files, phrases, dogs)
    # What the pictures alone put first, by numpy: the words must not change it.
    cosines = vectors @ toward
    expected = [f"/videos/{n:04d}.mp4" for n in np.argsort(-cosines)[:3]]
    found = searched(db_path, words)
    assert [result.path for result in found[:3]] == expected
    assert all(result.modality == "visual" for result in found[:3])
