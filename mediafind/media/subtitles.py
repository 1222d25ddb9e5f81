"""Subtitles: what is said in a video, read from text instead of heard by a model.

Two places hold them: files beside the video (`clip.srt`, `clip.en.vtt`) and
text subtitle streams inside its container (mov_text in MP4, SubRip, ASS and
WebVTT in Matroska). Both come out the same way: cues with times in seconds
from the start of the video and plain text, markup removed.

Subtitle files are written by every kind of tool, by hand, in every encoding,
and are often damaged. Reading one never fails on its content: what cannot be
read is skipped and named in `problems`, and the rest is kept. The work is
linear in the size of the file, whatever it holds.
"""

from __future__ import annotations

import codecs
import html
import os
import re
from dataclasses import dataclass
from typing import Any

from mediafind.errors import MediaError, one_line
from mediafind.hashing import open_regular
from mediafind.media.container import open_media

SIDECAR_EXTENSIONS = (".srt", ".vtt")
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Times past this are clamped: no video runs for two days, and a cue claiming
# to is a typo (an hour field of 99999) that should not stretch the timeline.
MAX_SECONDS = 48 * 3600.0
# A cue from a stream that does not say when it ends is shown until the next
# one starts, but no longer than this (a player would clear it too).
UNKNOWN_END_SECONDS = 5.0

# LANG in name.LANG.srt: an ISO 639 code, maybe with a script or region
# (en, fra, en-US, pt_BR, zh-Hans, es-419), maybe followed by a flag that
# media servers add (name.en.forced.srt, name.en.sdh.srt).
_LANGUAGE = r"[A-Za-z]{2,3}(?:[-_](?:[A-Za-z]{4}|[A-Za-z]{2}|\d{3}))?"
_FLAGS = r"(?:forced|sdh|cc|hi)"
_SIDECAR_TAIL = re.compile(
    rf"(?:\.(?P<language>{_LANGUAGE}))?(?:\.{_FLAGS})?\.(?:srt|vtt)", re.IGNORECASE
)
_TAG_LANGUAGE = re.compile(_LANGUAGE)
# Tags that mean "no language": undetermined, no linguistic content, multiple.
_NO_LANGUAGE = {"und", "zxx", "mul", "mis"}

# hh:mm:ss,ttt with hours optional (WebVTT), either decimal separator, any
# number of fraction digits, spaces around the parts. Digit counts are bounded
# so that a line of a million digits costs nothing to reject.
_TIME = re.compile(
    r"(?P<minus>-)?\s*(?:(?P<h>\d{1,9})\s*:\s*)?(?P<m>\d{1,9})\s*:\s*(?P<s>\d{1,9})"
    r"(?:\s*[,.]\s*(?P<f>\d{1,9}))?"
)
_ARROW = "-->"
# Blocks of a WebVTT file that are not cues.
_NOT_CUE_BLOCK = re.compile(r"(?:WEBVTT|NOTE|STYLE|REGION)(?:\s|$)")
_LOOKS_LIKE_TIME = re.compile(r"\d\s*:\s*\d")

# Markup. Each pattern stops at the next opening bracket, so that text full
# of unclosed brackets still costs linear time.
_ASS_DRAWING = re.compile(r"\{[^{}]*\\p[1-9][^{}]*\}[^{]*")
_ASS_OVERRIDE = re.compile(r"\{[^{}\\]*\\[^{}]*\}")
_ASS_BREAK = re.compile(r"\\[Nnh]")
_RUBY_TEXT = re.compile(r"<rt>[^<]*</rt>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<\d+:\d+(?::\d+)?[.,]\d+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds from the start of the video
    end: float
    text: str  # plain text on one line


@dataclass
class Subtitles:
    cues: list[Cue]
    source: str  # "sidecar:/path/name.en.srt" or "stream:2 (subrip)"
    language: str | None  # ISO 639-1 or 639-2 code, lower case, when known
    problems: list[str]  # what was skipped and why, one short phrase each


class _Problems:
    """Problems counted by kind: a damaged file can hold a million bad cues,
    and a person needs one line for each kind, with where it first happened."""

    def __init__(self) -> None:
        self._kinds: dict[str, tuple[int, str | None]] = {}

    def add(self, kind: str, where: str | None = None) -> None:
        count, first = self._kinds.get(kind, (0, where))
        self._kinds[kind] = (count + 1, first)

    def phrases(self) -> list[str]:
        out = []
        for kind, (count, where) in self._kinds.items():
            if count == 1:
                out.append(f"{kind} at {where}" if where else kind)
            else:
                out.append(
                    f"{kind} ({count} places, first at {where})"
                    if where
                    else f"{kind} ({count} places)"
                )
        return out


def _language(tag: str | None) -> str | None:
    """The ISO 639 code of a language tag ('pt_BR' -> 'pt'), None when it names none."""
    if not tag or not _TAG_LANGUAGE.fullmatch(tag.strip()):
        return None
    code = re.split(r"[-_]", tag.strip())[0].lower()
    return None if code in _NO_LANGUAGE else code


def sidecar_files(video_path: str) -> list[str]:
    """Subtitle files beside a video: name.srt, name.vtt, name.LANG.srt, name.LANG.vtt.

    LANG is a language code such as en, en-US, fra or pt_BR; the extension may
    be in any case. Sorted, the plain name first. Only regular files count.
    """
    folder, name = os.path.split(video_path)
    stem = os.path.splitext(name)[0]
    try:
        entries = list(os.scandir(folder or "."))
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(stem + "."):
            continue
        match = _SIDECAR_TAIL.fullmatch(entry.name, len(stem))
        if match is None:
            continue
        try:
            if not entry.is_file():
                continue
        except OSError:
            continue
        found.append((match.group("language") is not None, entry.name.casefold(), entry.name))
    return [os.path.join(folder, name) for _, _, name in sorted(found)]


def read_sidecar(path: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Subtitles:
    """The cues of an .srt or .vtt file, and what in it could not be read.

    Raises MediaError only when the file cannot be read at all, or is larger
    than `max_bytes` (no subtitle file is: it is something else by that name).
    """
    data = _read_bounded(path, max_bytes)
    problems = _Problems()
    text = _file_text(data, problems)
    cues = _parsed(text, problems)
    if not cues:
        problems.add("no cues found")
    return Subtitles(cues, f"sidecar:{path}", _sidecar_language(path), problems.phrases())


def _read_bounded(path: str, max_bytes: int) -> bytes:
    too_large = (
        f"too large for a subtitle file (over {max_bytes:,} bytes); "
        "rename it if it is not subtitles"
    )
    with open_regular(path) as file:
        if os.fstat(file.fileno()).st_size > max_bytes:
            raise MediaError(too_large)
        try:
            data = file.read(max_bytes + 1)
        except OSError as error:
            raise MediaError(f"cannot read ({one_line(error)})") from error
    # The file may have grown since it was measured.
    if len(data) > max_bytes:
        raise MediaError(too_large)
    return data


def _sidecar_language(path: str) -> str | None:
    """LANG of name.LANG.srt. The name alone cannot tell a language from a
    video named like `the.end.mp4`; a two- or three-letter word there is read
    as a language code."""
    name = os.path.basename(path)
    dot = name.find(".")
    while dot >= 0:
        match = _SIDECAR_TAIL.fullmatch(name, dot)
        if match is not None:
            return _language(match.group("language"))
        dot = name.find(".", dot + 1)
    return None


def _file_text(data: bytes, problems: _Problems) -> str:
    """The text of a subtitle file: UTF-8 or UTF-16 with a byte order mark,
    UTF-8, else Windows-1252 (the legacy encoding of most Western subtitles;
    it reads Latin-1 text the same, printable characters being shared)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _lenient(data, "utf-16", problems)
    if data.startswith(codecs.BOM_UTF8):
        return _lenient(data[len(codecs.BOM_UTF8) :], "utf-8", problems)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # UTF-8 with a few damaged bytes: more characters read well than badly.
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    if non_ascii - bad > bad:
        problems.add(_replaced(bad, "UTF-8"))
        return text
    return data.decode("cp1252", errors="replace")


def _lenient(data: bytes, encoding: str, problems: _Problems) -> str:
    text = data.decode(encoding, errors="replace")
    bad = text.count("\ufffd") - data.decode(encoding, errors="ignore").count("\ufffd")
    if bad:
        problems.add(_replaced(bad, encoding.upper()))
    return text


def _replaced(count: int, encoding: str) -> str:
    return f"{count} byte{'s' if count != 1 else ''} not in {encoding} replaced"


@dataclass
class _RawCue:
    start: float
    end: float
    lines: list[str]
    where: str


def _parsed(text: str, problems: _Problems) -> list[Cue]:
    """The cues of SubRip or WebVTT text, sorted by start.

    Read line by line, tolerantly: a line with `-->` starts a cue (so missing
    blank lines and missing cue numbers do not matter), the cue's text runs to
    the next blank line or the next cue, and blocks that are not cues (the
    WebVTT header, NOTE, STYLE, REGION) are skipped. Text separated from its
    cue by a stray blank line is kept with that cue.
    """
    raws: list[_RawCue] = []
    cue_lines: list[str] | None = None  # the text of the cue being read
    last_lines: list[str] | None = None  # the text of the cue read last
    block: list[tuple[int, str]] = []  # lines of a block that has no times yet
    skipping = False

    def orphan(lines: list[tuple[int, str]]) -> None:
        texts = [line for _, line in lines]
        where = f"line {lines[0][0]}"
        if any(_LOOKS_LIKE_TIME.search(line) for line in texts):
            problems.add("cue without a readable '-->' line", where)
        elif all(line.strip().isdigit() for line in texts):
            return  # a cue number whose cue is elsewhere
        elif last_lines is not None:
            last_lines.extend(texts)
        else:
            problems.add("text outside any cue", where)

    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip():
            cue_lines, skipping = None, False
            if block:
                orphan(block)
                block = []
        elif _ARROW in line:
            if cue_lines and cue_lines[-1].strip().isdigit():
                cue_lines.pop()  # the next cue's number, no blank line between
            if len(block) > 1:
                orphan(block[:-1])  # the last line is this cue's number or name
            block, skipping = [], False
            times = _cue_times(line, f"line {number}", problems)
            cue_lines = []
            if times is not None:
                raws.append(_RawCue(*times, cue_lines, f"line {number}"))
            last_lines = cue_lines
        elif cue_lines is not None:
            cue_lines.append(line)
        elif skipping or (not block and _NOT_CUE_BLOCK.match(line)):
            skipping = True
        else:
            block.append((number, line))
    if block:
        orphan(block)
    return _cues(raws, problems)


def _cue_times(line: str, where: str, problems: _Problems) -> tuple[float, float] | None:
    """Start and end of a `start --> end [settings]` line; None (and a problem) if unusable."""
    left, _, right = line.partition(_ARROW)
    start_match = _TIME.fullmatch(left.strip())
    end_match = _TIME.match(right.strip())
    if start_match is None or end_match is None:
        problems.add("unreadable times", where)
        return None
    if start_match.group("minus") or end_match.group("minus"):
        problems.add("negative time", where)
        return None
    start, end = _seconds(start_match), _seconds(end_match)
    if end < start:
        problems.add("cue ends before it starts", where)
        return None
    if end > MAX_SECONDS:
        problems.add(f"time past {MAX_SECONDS / 3600:.0f} hours, clamped", where)
        start, end = min(start, MAX_SECONDS), MAX_SECONDS
    return start, end


def _seconds(match: re.Match[str]) -> float:
    fraction = match.group("f") or ""
    seconds = int(match.group("h") or 0) * 3600 + int(match.group("m")) * 60 + int(match.group("s"))
    # Digits after the separator are a decimal fraction: ",5" is half a second.
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _cues(raws: list[_RawCue], problems: _Problems) -> list[Cue]:
    cues = []
    for raw in raws:
        text = _plain_text("\n".join(raw.lines))
        if text:
            cues.append(Cue(raw.start, raw.end, text))
        else:
            problems.add("empty cue", raw.where)
    cues.sort(key=lambda cue: cue.start)
    return cues


def _plain_text(marked: str) -> str:
    """Subtitle text without markup, on one line: SubRip and WebVTT tags
    (<i>, <font>, <v Name>, <c.yellow>, timestamps, ruby readings), ASS
    override codes ({\\an8}, {\\i1}) and drawings, ASS line breaks, entities."""
    text = _ASS_DRAWING.sub(" ", marked)
    text = _ASS_OVERRIDE.sub("", text)
    text = _ASS_BREAK.sub(" ", text)
    text = _RUBY_TEXT.sub("", text)
    text = _HTML_TAG.sub("", text)
    text = _CONTROL.sub("", html.unescape(text))
    return " ".join(text.split())


def read_streams(video_path: str) -> list[Subtitles]:
    """The text subtitle streams inside a video, each with its cues and language.

    Bitmap subtitles (DVD, Blu-ray, DVB) hold pictures, not text, and are
    left out, as are streams no decoder reads. Times count from the start of
    the file. A damaged stream gives what could be read, with a problem.
    Raises MediaError only when the file cannot be opened at all.
    """
    container = open_media(video_path, "video")
    try:
        tracks = [
            _StreamReader(stream) for stream in container.streams.subtitles if _is_text(stream)
        ]
        if not tracks:
            return []
        _read_packets(container, tracks)
        return [track.subtitles() for track in tracks]
    finally:
        container.close()


def _is_text(stream: Any) -> bool:
    import av

    context = stream.codec_context
    if context is None:
        return False  # no decoder for the codec (TTML in MP4)
    return bool(context.codec.properties & av.codec.codec.Properties.TEXT_SUB.value)


def _read_packets(container: Any, tracks: list[_StreamReader]) -> None:
    """Every subtitle packet of `tracks`, in one pass over the file."""
    # A file's times count from its first timestamp (what a player shows as
    # 0:00), not from each stream's own first one: a subtitle stream often
    # starts with its first cue, or with an empty cue at 0 before the video's
    # shifted start.
    origin = container.start_time / 1_000_000 if container.start_time is not None else 0.0
    by_index = {track.stream.index: track for track in tracks}
    try:
        for packet in container.demux([track.stream for track in tracks]):
            track = by_index.get(packet.stream.index)
            if track is not None and packet.size:
                track.read(packet, origin)
    except Exception as error:
        # Damage past this point: keep what was read, say where it stopped.
        for track in tracks:
            track.problems.add(f"reading stopped early ({one_line(error)})")


class _StreamReader:
    """Cues of one subtitle stream, decoded packet by packet."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.codec = stream.codec_context.codec.canonical_name
        self.tick = float(stream.time_base) if stream.time_base is not None else 0.0
        self.problems = _Problems()
        self.timed: list[tuple[float, float | None, str]] = []

    def read(self, packet: Any, origin: float) -> None:
        ticks = packet.pts if packet.pts is not None else packet.dts
        if ticks is None or not self.tick:
            self.problems.add("cue without a time")
            return
        start = ticks * self.tick - origin
        text, shown_for = self._packet_text(packet, f"{start:.2f} s")
        if not text:
            return  # an empty cue clears the screen (mov_text writes them in gaps)
        end = None
        if packet.duration is not None and packet.duration > 0:
            end = (ticks + packet.duration) * self.tick - origin
        elif shown_for is not None:
            end = start + shown_for
        # A cue before the file's first timestamp is shown from its start.
        start = min(max(0.0, start), MAX_SECONDS)
        if end is not None:
            end = min(max(start, end), MAX_SECONDS)
        self.timed.append((start, end, text))

    def _packet_text(self, packet: Any, where: str) -> tuple[str, float | None]:
        """The packet's plain text and how long the decoder says it shows."""
        import av

        try:
            subtitle_set = self.stream.codec_context.decode2(packet)
        except (av.error.FFmpegError, ValueError):
            # FFmpeg refuses text that is not UTF-8 (legacy SubRip copied into
            # Matroska); the text itself is in the packet for most codecs.
            raw = _payload_text(self.codec, bytes(packet))
            if raw is None:
                self.problems.add("undecodable cue", where)
                return "", None
            return _plain_text(_file_text(raw, _Problems())), None
        if subtitle_set is None:
            return "", None
        texts = [_rect_text(rect) for rect in subtitle_set]
        shown = subtitle_set.end_display_time - subtitle_set.start_display_time
        # 0 and the largest 32-bit value both mean "until the next cue".
        shown_for = shown / 1000 if 0 < shown < 0xFFFFFFFF else None
        return " ".join(text for text in texts if text), shown_for

    def subtitles(self) -> Subtitles:
        self.timed.sort(key=lambda timed: timed[0])
        cues = []
        for at, (start, end, text) in enumerate(self.timed):
            if end is None:
                following = self.timed[at + 1][0] if at + 1 < len(self.timed) else None
                end = start + UNKNOWN_END_SECONDS
                if following is not None and following > start:
                    end = min(end, following)
            cues.append(Cue(start, end, text))
        source = f"stream:{self.stream.index} ({self.codec})"
        language = _language(self.stream.metadata.get("language"))
        return Subtitles(cues, source, language, self.problems.phrases())


def _rect_text(rect: Any) -> str:
    """Plain text of one decoded subtitle rectangle; '' for a picture."""
    if rect.type == b"ass":
        # "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text":
        # the text is everything after the eighth comma.
        fields = rect.ass.decode("utf-8", errors="replace").split(",", 8)
        return _plain_text(fields[8]) if len(fields) == 9 else ""
    if rect.type == b"text":
        return _plain_text(rect.text.decode("utf-8", errors="replace"))
    return ""


def _payload_text(codec: str, payload: bytes) -> bytes | None:
    """The text bytes inside a packet of a text subtitle codec, undecoded."""
    if codec in ("subrip", "text", "webvtt"):
        return payload
    if codec == "ass":
        fields = payload.split(b",", 8)
        return fields[8] if len(fields) == 9 else None
    if codec == "mov_text" and len(payload) >= 2:
        # A 16-bit big-endian length, the text, then style boxes.
        return payload[2 : 2 + int.from_bytes(payload[:2], "big")]
    return None
