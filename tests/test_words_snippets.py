"""Results show their words where they matched: a line around the matched
words (not a whole page read off an invoice), those words marked in the
table, the `{text}` field and the results page; JSON keeps the whole text."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from mediafind import config, query
from mediafind import modalities as registry
from mediafind.db import FileFacts, NewSegment, Part, Store
from mediafind.output import print_results, print_results_table

INVOICE = "\n".join(
    [
        "ACME Supplies Ltd",
        "12 Harbour Road, Portsmouth",
        "INVOICE No 4411",
        *[f"Widget, blue, large  {n} x 12.00 = {12 * n}.00" for n in range(1, 13)],
        "Total due: 412.50 EUR",
        "Payment within 30 days to account 1234 5678",
    ]
)


def invoice_index(db: Path) -> None:
    with Store.open(db, create=True) as store:
        space = store.create_space("text", "PP-OCRv4", "ocr:PP-OCRv4", 0, active=True)
        facts = FileFacts("/scans/invoice.jpg", "image", 1, 1, "h1", "ok")
        store.write_file(facts, [Part(space, [NewSegment("text", None, None)], texts=[INVOICE])])
        other = FileFacts("/scans/menu.jpg", "image", 1, 1, "h2", "ok")
        segment = [NewSegment("text", None, None)]
        store.write_file(other, [Part(space, segment, texts=["Soup of the day 4.50"])])


def found(db: Path, words: str) -> list[query.SearchResult]:
    text = registry.get("text").embedder(config.Choice("PP-OCRv4", "index"), "cpu", "fp32")
    with Store.open(db, create=False) as store:
        return query.search(store, words, {"text": text})


def test_a_long_text_shows_the_line_around_the_matched_words(db_path: Path):
    invoice_index(db_path)
    top = found(db_path, "total due")[0]
    assert top.path == "/scans/invoice.jpg"
    assert top.snippet is not None
    shown = top.snippet.text
    # The invoice is 16 lines and over 500 characters; the snippet is a line
    # around "Total due", cut at spaces, with "…" where it was cut.
    assert len(INVOICE) > 500 and len(shown) <= 125
    assert "Total due: 412.50 EUR" in shown
    assert shown.startswith("…") and "ACME" not in shown
    assert [shown[start:end] for start, end in top.snippet.marks] == ["Total", "due"]
    # JSON keeps the whole text (the contract does not change).
    assert json.loads(json.dumps(top.to_dict()))["text"] == INVOICE
    assert set(top.to_dict()) == {
        "path",
        "kind",
        "score",
        "start",
        "end",
        "modality",
        "moments",
        "text",
    }
    assert all("snippet" not in moment for moment in top.to_dict()["moments"])


def test_the_table_marks_the_matched_words_and_format_text_is_the_snippet(db_path: Path):
    invoice_index(db_path)
    results = found(db_path, "total due")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=200)
    print_results_table(results[:1], console=console, query="total due")
    # Bold (1) on top of the quote's italics (3): exactly the matched words.
    bold = re.findall(r"\x1b\[1;3m([^\x1b]*)\x1b\[0m", buffer.getvalue())
    assert bold == ["Total", "due"]
    assert "Widget, blue, large  1 x" not in buffer.getvalue()
    line = io.StringIO()
    print_results(results[:1], "format", "{text}", stream=line)
    assert results[0].snippet is not None
    assert line.getvalue() == results[0].snippet.text + "\n"


def test_the_page_gets_each_results_snippet_with_marks_in_javascript_units():
    from mediafind.serve import _snippet
    from mediafind.words import Snippet

    text = "🎂 Happy birthday grandma!"
    result = query.SearchResult(
        "/v/party.mp4",
        "video",
        3.0,
        4.0,
        5.8,
        "speech",
        text=text,
        snippet=Snippet(text, ((8, 16),)),
    )
    assert text[8:16] == "birthday"
    # The cake is one character in Python and two UTF-16 units in JavaScript.
    assert _snippet(result) == {"text": text, "marks": [[9, 17]]}
    assert _snippet(query.SearchResult("/p/red.jpg", "image", 1.0, None, None, "visual")) is None
