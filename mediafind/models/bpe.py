"""CLIP's byte-pair tokenizer, for text queries without importing torch or open_clip.

It turns text into exactly the token ids open_clip's SimpleTokenizer gives
(same cleaning, same pattern, same merges): the fast path's conversion
checks that on varied texts before it is used. Only the merges are stored;
the vocabulary follows from them the way open_clip builds it.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SPECIAL_TOKENS = ("<start_of_text>", "<end_of_text>")
_PLAIN = re.compile(r"[ -%'-~\t\n]*")  # printable ASCII but "&", tabs, newlines


@lru_cache(maxsize=1)
def _byte_symbols() -> dict[int, str]:
    """Each byte as a printable character: the alphabet BPE merges work on."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols = dict(zip(printable, printable, strict=True))
    extra = 0
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = 256 + extra
            extra += 1
    return {byte: chr(code) for byte, code in symbols.items()}


class ClipBpe:
    """Text to CLIP token ids, padded to the context length."""

    def __init__(self, merges: Sequence[str], context_length: int) -> None:
        """`merges`: "first second" pairs, most frequent first (the symbols of
        the byte alphabet never contain a space)."""
        import regex

        alphabet = list(_byte_symbols().values())
        vocab = alphabet + [symbol + "</w>" for symbol in alphabet]
        vocab += [pair.replace(" ", "") for pair in merges]
        vocab += SPECIAL_TOKENS
        self.ids = {token: index for index, token in enumerate(vocab)}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.sot, self.eot = (self.ids[token] for token in SPECIAL_TOKENS)
        self.context_length = context_length
        # The special tokens stand for themselves, as in open_clip.
        self._cache: dict[str, list[str]] = {token: [token] for token in SPECIAL_TOKENS}
        self._pattern = regex.compile(
            "|".join(SPECIAL_TOKENS)
            + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )

    @classmethod
    def from_file(cls, path: Path, context_length: int) -> ClipBpe:
        return cls(path.read_text(encoding="utf-8").splitlines(), context_length)

    def _merge(self, word: str) -> list[str]:
        """The BPE pieces of one pre-token (lowest-ranked pair merged first)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            ranked = [
                (rank, index)
                for index, (first, second) in enumerate(itertools.pairwise(parts))
                if (rank := self.ranks.get(f"{first} {second}")) is not None
            ]
            if not ranked:
                break
            at = min(ranked)[1]
            pair = (parts[at], parts[at + 1])
            merged: list[str] = []
            index = 0
            while index < len(parts):
                if index + 1 < len(parts) and (parts[index], parts[index + 1]) == pair:
                    merged.append(parts[index] + parts[index + 1])
                    index += 2
                else:
                    merged.append(parts[index])
                    index += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        if not _PLAIN.fullmatch(text):
            # ftfy repairs mojibake, odd quotes and control characters, none
            # of which plain printable ASCII without HTML entities can hold:
            # skipping it there saves a tenth of a second of start-up.
            import ftfy

            text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        text = " ".join(text.split()).lower()
        symbols = _byte_symbols()
        ids: list[int] = []
        for token in self._pattern.findall(text):
            word = "".join(symbols[byte] for byte in token.encode("utf-8"))
            ids.extend(self.ids[piece] for piece in self._merge(word))
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        rows = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot
            rows[row, : len(ids)] = ids
        return rows
