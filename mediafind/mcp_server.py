"""`mediafind mcp`: the library, searched by an assistant through the Model
Context Protocol.

A desktop assistant (Claude Desktop, an IDE agent, a local LLM app) starts
`mediafind mcp` as a subprocess and speaks JSON-RPC on its stdin and stdout
(MCP's stdio transport), through the protocol's official SDK (`mcp`). It is
given four tools: `search`, `similar`, `transcript` and `status`.

What an assistant can reach, and what it cannot:
- the index, opened read-only (as `search` opens it), and the thumbnail
  cache; nothing else is written, no file of the library is changed;
- only files the index holds: a path the assistant names is looked up in the
  index first, and one it does not hold is an error, never opened;
- no network: the model hub is set offline before it is imported, so a model
  that is not in the cache is one tool error, never a download;
- answers of bounded size: at most MAX_RESULTS results, texts cut at
  MAX_TEXT characters, MAX_THUMBNAILS pictures of at most 256 px per answer,
  MAX_PHRASES phrases of a transcript per call.

A tool that cannot answer returns an MCP error result whose text is
mediafind's own one-line error; the server goes on. The index is opened at
the first call that needs it (a missing index is an error for that call, and
a later call finds it once `mediafind index` has made it), and its models are
loaded once, then kept warm for every later call, as `serve` keeps them.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server import MCPServer
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field

from mediafind import __version__
from mediafind import modalities as registry
from mediafind.errors import MediaError, MediafindError, UsageError
from mediafind.jsontext import escape_surrogates, json_text
from mediafind.library import Library, NotServed
from mediafind.timecodes import format_time, parse_time

if TYPE_CHECKING:
    from mediafind.db import FileRecord
    from mediafind.query import SearchResult

# Results per answer at most: an assistant reads every one of them.
MAX_RESULTS = 50
DEFAULT_RESULTS = 10
# Pictures per answer at most: each is 3-13 KB of JPEG (bench/README.md) and
# costs an assistant's model far more to look at than a line of text.
MAX_THUMBNAILS = 10
# Characters of one text (what is said or written at a moment) at most.
MAX_TEXT = 1000
# Phrases of a transcript per call: about an hour of talk; `start` goes on.
MAX_PHRASES = 1000
# Failed or partly indexed files listed by `status` at most.
MAX_LISTED = 20

INSTRUCTIONS = (
    "mediafind searches the user's own photos, videos and recordings on this machine, "
    "by meaning (what is seen or heard) and by words (what is said, or written in "
    "pictures). Use search with a short description in natural language; a result is "
    "a file, and for a video or recording the moment (start and end, in seconds) that "
    "matches best. Use similar for more like one result, transcript for what is said "
    "in a video or recording, status for what the index holds. Paths must be ones these "
    "tools returned. Nothing can be changed or deleted through these tools."
)

# The tools' argument names, for the library's errors (`{kinds}` -> kind).
ARGUMENT_NAMES = {
    "query": "query",
    "like": "path",
    "kinds": "kind",
    "modalities": "modality",
    "folders": "folder",
    "since": "since",
    "until": "until",
    "min_duration": "min_duration",
    "max_duration": "max_duration",
    "min_score": "min_score",
    "limit": "limit",
    "no_speech": "--no-speech",
    # The command's own options, in the configuration the assistant starts it with.
    "db": "--db",
    "device": "--device",
    # A model error names the option that chooses another (`mcp --model ...`).
    **{m.argument: m.option for m in registry.modalities()},
}


def offline() -> None:
    """No network from this process: huggingface_hub (and transformers, which
    asks it) read HF_HUB_OFFLINE once, when first imported; one imported
    already is told directly."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


class Opener:
    """The library, opened at the first call that needs it and kept open;
    an index that cannot be opened is tried again at the next call."""

    def __init__(self, open_library: Callable[[], Library]) -> None:
        self._open = open_library
        self._library: Library | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Library:
        with self._lock:
            if self._library is None:
                self._library = self._open()
            return self._library

    def warm_up(self) -> None:
        """Open the index and load its models now, so the first call is quick."""
        with contextlib.suppress(MediafindError):
            self().warm_up()


# Tool arguments, as an assistant sees them (the descriptions are its manual).
Query = Annotated[
    str,
    Field(
        description="What to look for, described in plain words, e.g. 'singing happy birthday "
        "to grandma', 'a red bicycle on a beach', 'the whiteboard with the sprint goal'."
    ),
]
IndexedPath = Annotated[
    str,
    Field(description="The path of an indexed file, exactly as search or similar returned it."),
]
Kinds = Annotated[
    list[str] | None,
    Field(
        description="Only these kinds of file: image (photos), video, audio (recordings).",
        json_schema_extra={"items": {"type": "string", "enum": registry.kinds()}},
    ),
]
Modalities = Annotated[
    list[str] | None,
    Field(
        description="Only match by these: visual (what is seen), audio (how it sounds), "
        "speech (what is said), text (what is written in the picture). Default: all.",
        json_schema_extra={"items": {"type": "string", "enum": registry.names()}},
    ),
]
Folders = Annotated[
    list[str] | None,
    Field(description="Only files under these folders (absolute paths; status lists them)."),
]
Since = Annotated[
    str | None,
    Field(description="Taken or recorded on or after this date (ISO: 2024-07-14)."),
]
Until = Annotated[
    str | None,
    Field(description="Taken or recorded on or before this date (ISO: 2024-07-14)."),
]
MinDuration = Annotated[
    float | str | None,
    Field(description="Videos and recordings at least this long: seconds (90) or m:ss (1:30)."),
]
MaxDuration = Annotated[
    float | str | None,
    Field(description="Videos and recordings at most this long: seconds (90) or m:ss (1:30)."),
]
Limit = Annotated[
    int,
    Field(
        description=f"How many results at most (1 to {MAX_RESULTS}).",
        json_schema_extra={"minimum": 1, "maximum": MAX_RESULTS},
    ),
]
MinScore = Annotated[
    float | None,
    Field(
        description="Leave out results scoring under this. Scores are standard deviations "
        "above a typical file: 2 or more is a good match, under 1 a weak one."
    ),
]
Thumbnails = Annotated[
    bool,
    Field(
        description=f"Add a small picture (at most 256 px) of each photo and video moment "
        f"among the first {MAX_THUMBNAILS} results, to look at what was found. False: text only."
    ),
]
Moment = Annotated[
    float | str | None,
    Field(
        description="For a video or recording: the moment to match, in seconds (83) or "
        "m:ss (1:23), e.g. a result's start. Default: the whole file."
    ),
]
Start = Annotated[
    float | None,
    Field(description="Only what is said from this second on (to read a long one in parts)."),
]

_RESULTS = (
    " Answers a JSON array (the contract of `mediafind search --json`): each result has "
    "path, kind (image, video, audio), score, start and end (seconds of the best moment; "
    "null for a photo), modality (what matched: visual, audio, speech, text), moments "
    "(up to five, best first) and text (the words that matched, when words did)."
)
SEARCH_HELP = (
    "Find the user's photos, video moments and recordings that match a description: by "
    "what is seen, how it sounds, what is said and what is written in them. Best first." + _RESULTS
)
SIMILAR_HELP = (
    "Find what looks, sounds, speaks or reads like an indexed file, or like one moment "
    "of a video or recording (a result's path and start). The file itself is left out." + _RESULTS
)
TRANSCRIPT_HELP = (
    "What is said in an indexed video or recording, phrase by phrase, as a JSON array "
    "of {start, end, text} (seconds), as transcribed when it was indexed."
)
STATUS_HELP = (
    "What the index holds: its folders, how many photos, videos and recordings, the "
    "models, the languages spoken, files that failed, and when it was last indexed."
)


def create_server(library: Callable[[], Library]) -> MCPServer:
    """The MCP server with mediafind's four tools over `library()`."""
    server: MCPServer = MCPServer(
        "mediafind",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="ERROR",
    )
    looks_only = ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )

    @server.tool(annotations=looks_only, description=SEARCH_HELP)
    def search(
        query: Query,
        kind: Kinds = None,
        modality: Modalities = None,
        folder: Folders = None,
        since: Since = None,
        until: Until = None,
        min_duration: MinDuration = None,
        max_duration: MaxDuration = None,
        limit: Limit = DEFAULT_RESULTS,
        min_score: MinScore = None,
        thumbnails: Thumbnails = True,
    ) -> CallToolResult:
        def answer() -> list[Any]:
            opened = library()
            found = opened.search(
                query,
                kinds=kind or (),
                modalities=modality or (),
                filters=_filters(folder, since, until, min_duration, max_duration),
                limit=_limit(limit),
                min_score=min_score,
            )
            return _results(opened, *found, thumbnails)

        return _answer(answer)

    @server.tool(annotations=looks_only, description=SIMILAR_HELP)
    def similar(
        path: IndexedPath,
        at: Moment = None,
        kind: Kinds = None,
        modality: Modalities = None,
        folder: Folders = None,
        since: Since = None,
        until: Until = None,
        min_duration: MinDuration = None,
        max_duration: MaxDuration = None,
        limit: Limit = DEFAULT_RESULTS,
        thumbnails: Thumbnails = True,
    ) -> CallToolResult:
        def answer() -> list[Any]:
            opened = library()
            example = opened.example(_indexed(opened, path), _moment(at))
            found = opened.search(
                None,
                like=[example],
                kinds=kind or (),
                modalities=modality or (),
                filters=_filters(folder, since, until, min_duration, max_duration),
                limit=_limit(limit),
            )
            return _results(opened, *found, thumbnails)

        return _answer(answer)

    @server.tool(annotations=looks_only, description=TRANSCRIPT_HELP)
    def transcript(path: IndexedPath, start: Start = None) -> CallToolResult:
        def answer() -> list[Any]:
            opened = library()
            record = _indexed(opened, path)
            return _transcript(opened, record, start)

        return _answer(answer)

    @server.tool(annotations=looks_only, description=STATUS_HELP)
    def status() -> CallToolResult:
        return _answer(lambda: _status(library()))

    return server


def run(open_library: Callable[[], Library]) -> None:
    """Answer an assistant on stdin and stdout until it closes them."""
    offline()
    opener = Opener(open_library)
    threading.Thread(target=opener.warm_up, daemon=True).start()
    create_server(opener).run("stdio")


def _answer(work: Callable[[], list[Any]]) -> CallToolResult:
    """The tool's content, or an error result in mediafind's words."""
    try:
        return CallToolResult(content=work())
    except MediafindError as error:
        message = f"mediafind: error: {error.worded(ARGUMENT_NAMES)}"
        return CallToolResult(
            content=[TextContent(type="text", text=escape_surrogates(message))], is_error=True
        )


def _text(text: str) -> TextContent:
    return TextContent(type="text", text=text)


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_RESULTS:
        raise UsageError(
            f"{{argument}} must be from 1 to {MAX_RESULTS}, got {limit}", argument="limit"
        )
    return limit


def _moment(at: float | str | None) -> float | None:
    """A moment as seconds (83.5) or as people write it (1:23)."""
    if at is None:
        return None
    try:
        seconds = parse_time(at) if isinstance(at, str) else float(at)
    except UsageError as error:
        raise UsageError(f"at: {error}") from None
    if not 0 <= seconds < math.inf:
        raise UsageError(f"at: {at} is not a time; use seconds (83.5) or m:ss (1:23)")
    return seconds


def _filters(
    folders: Sequence[str] | None,
    since: str | None,
    until: str | None,
    min_duration: float | str | None,
    max_duration: float | str | None,
) -> Any:
    from mediafind.query import make_filters

    def duration(value: float | str | None) -> str | None:
        return None if value is None else str(value)

    return make_filters(
        folders=list(folders or ()),
        since=since,
        until=until,
        min_duration=duration(min_duration),
        max_duration=duration(max_duration),
    )


def _indexed(library: Library, path: str) -> FileRecord:
    """The indexed file at `path`; an error for any other path, which is never opened."""
    try:
        return library.file_at(path)
    except NotServed:
        raise UsageError(
            f"{{argument}} {path}: not a file in the index; give a path that search returned",
            argument="like",
        ) from None


def _results(
    library: Library,
    results: Sequence[SearchResult],
    records: Sequence[FileRecord | None],
    thumbnails: bool,
) -> list[Any]:
    """The results as `search --json` prints them (texts cut at MAX_TEXT), then
    each photo's or video moment's thumbnail, labelled with its result."""
    rows = [_bounded(result.to_dict()) for result in results]
    content: list[Any] = [_text(json_text(rows, indent=2))]
    if thumbnails:
        for rank, (result, record) in enumerate(zip(results, records, strict=True), start=1):
            if rank > MAX_THUMBNAILS:
                break
            picture = _picture(library, result, record)
            if picture is not None:
                at = f" at {format_time(result.start)}" if result.kind == "video" else ""
                content += [_text(f"Result {rank}: {json_text(result.path)}{at}"), picture]
    return content


def _bounded(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "text": _cut(row["text"]),
        "moments": [{**moment, "text": _cut(moment["text"])} for moment in row["moments"]],
    }


def _cut(text: str | None) -> str | None:
    """At most MAX_TEXT characters, "..." marking a text cut short."""
    return text if text is None or len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _picture(
    library: Library, result: SearchResult, record: FileRecord | None
) -> ImageContent | None:
    """A result's thumbnail as MCP image content; None for a recording, or a
    file changed or gone since it was indexed."""
    if record is None or record.kind not in ("image", "video"):
        return None
    try:
        data = library.thumbnail(record, result.start)
    except MediaError:
        return None
    return ImageContent(
        type="image", data=base64.b64encode(data).decode("ascii"), mime_type="image/jpeg"
    )


def _transcript(library: Library, record: FileRecord, start: float | None) -> list[Any]:
    from mediafind.query import transcript

    with library.lock:
        phrases = transcript(library.store, record.path)
    if start is not None:
        phrases = [p for p in phrases if (p.end if p.end is not None else p.start or 0) > start]
    shown = phrases[:MAX_PHRASES]
    rows = [{"start": p.start, "end": p.end, "text": _cut(p.text)} for p in shown]
    content: list[Any] = [_text(json_text(rows, indent=2))]
    if len(phrases) > len(shown):
        after = shown[-1].end or shown[-1].start or 0.0
        content.append(
            _text(f"{len(phrases) - len(shown)} more phrases: call again with start={after}")
        )
    elif not phrases:
        content.append(_text("Nothing is said in it (no speech was heard)."))
    return content


def _status(library: Library) -> list[Any]:
    from mediafind.status import index_status

    with library.lock:
        info = index_status(library.store).to_dict()
    more = []
    for key in ("failed", "partial"):
        if len(info[key]) > MAX_LISTED:
            more.append(f"{len(info[key]) - MAX_LISTED} more {key} files not listed")
            info[key] = info[key][:MAX_LISTED]
    return [_text(json_text(info, indent=2)), *map(_text, more)]
