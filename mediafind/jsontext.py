"""JSON text for scripts and assistants, always valid UTF-8 (no rich, no typer:
the CLI's output and the mcp server both write it)."""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """`text` with each undecodable byte of a file name (Python's surrogateescape)
    written as a `\\udcXX` escape, so it can be encoded as UTF-8."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_text(value: Any, *, indent: int | None = None) -> str:
    """JSON for scripts, always valid UTF-8: a name that is not UTF-8 carries
    each undecodable byte as a `\\udcXX` escape (Python's surrogateescape), so
    `os.fsencode(json.loads(line)["path"])` gives back the exact name."""
    return escape_surrogates(json.dumps(value, ensure_ascii=False, indent=indent))
