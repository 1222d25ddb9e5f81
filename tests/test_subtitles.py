"""Subtitles: sidecar files in every encoding and state, and streams inside videos."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import av
import pytest
from media_factory import (
    Shot,
    SubtitleTrack,
    make_bitmap_subtitles,
    make_video,
    mux_subtitles,
)

from mediafind.errors import MediaError
from mediafind.media.subtitles import Cue, read_sidecar, read_streams, sidecar_files

SRT = """\
1
00:00:00,500 --> 00:00:01,200
<i>Hello</i> there,
<b>second</b> line

2
00:00:01,500 --> 00:00:02,250
{\\an8}<font color="#ffff00">café</font> crème

3
00:00:02,400 --> 00:00:02,900
こんにちは、世界

"""
SRT_CUES = [
    Cue(0.5, 1.2, "Hello there, second line"),
    Cue(1.5, 2.25, "café crème"),
    Cue(2.4, 2.9, "こんにちは、世界"),
]


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> str:
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return str(path)


def problem_about(problems: list[str], words: str) -> bool:
    return any(words in problem for problem in problems)


# Sidecar files: markup, encodings, line endings.


def test_srt_cues_are_exact(tmp_path: Path) -> None:
    subtitles = read_sidecar(write(tmp_path / "clip.srt", SRT))
    assert subtitles.cues == SRT_CUES
    assert subtitles.problems == []
    assert subtitles.source == f"sidecar:{tmp_path / 'clip.srt'}"
    assert subtitles.language is None


def test_crlf_and_byte_order_mark(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.srt", "\ufeff" + SRT.replace("\n", "\r\n"))
    subtitles = read_sidecar(path)
    assert subtitles.cues == SRT_CUES
    assert subtitles.problems == []


def test_legacy_single_byte_encoding(tmp_path: Path) -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\nUn café crème, s\u2019il vous plaît\n"
    subtitles = read_sidecar(write(tmp_path / "clip.srt", text, "cp1252"))
    assert subtitles.cues == [Cue(1.0, 2.0, "Un café crème, s\u2019il vous plaît")]
    assert subtitles.problems == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_with_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    content = ("\ufeff" if encoding == "utf-16-be" else "") + SRT
    subtitles = read_sidecar(write(tmp_path / "clip.srt", content, encoding))
    assert subtitles.cues == SRT_CUES
    assert subtitles.problems == []


def test_damaged_utf8_keeps_the_rest(tmp_path: Path) -> None:
    content = SRT.encode().replace("crème".encode(), b"cr\xffme")
    subtitles = read_sidecar(write(tmp_path / "clip.srt", content))
    assert subtitles.cues[1] == Cue(1.5, 2.25, "café cr\ufffdme")
    assert subtitles.cues[2] == SRT_CUES[2]
    assert subtitles.problems == ["1 byte not in UTF-8 replaced"]


def test_vtt_with_header_notes_styles_and_settings(tmp_path: Path) -> None:
    vtt = """\
WEBVTT - a title
X-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:0

STYLE
::cue(.yellow) { color: yellow; }

REGION
id:fred width:40% lines:3

NOTE a comment
that runs over two lines

intro
00:01.000 --> 00:02.500 align:start position:10% region:fred
<v Roger Bingham>We are in New York City</v>

00:00:03.000 --> 00:00:04.000 line:0
<c.yellow>Tom &amp; Jerry</c> <00:00:03.500>again

NOTE another

3
00:01:05.250-->00:01:06.000
<ruby>漢字<rt>かんじ</rt></ruby>です
"""
    subtitles = read_sidecar(write(tmp_path / "clip.vtt", vtt))
    assert subtitles.cues == [
        Cue(1.0, 2.5, "We are in New York City"),
        Cue(3.0, 4.0, "Tom & Jerry again"),
        Cue(65.25, 66.0, "漢字です"),
    ]
    assert subtitles.problems == []


def test_untidy_srt_is_read_whole(tmp_path: Path) -> None:
    # No blank lines, missing cue numbers, dots, one-digit fractions, spaces,
    # ASS codes, and text cut off from its cue by a stray blank line.
    srt = (
        "1\n"
        "  00:00:01.000   -->   00:00:02.5  \n"
        "first {\\i1}cue{\\i0}\n"
        "2\n"
        "00:00:03,000 --> 00:00:04,000\n"
        "second\\Ncue\n"
        "00:00:05,000 --> 00:00:06,000 X1:100 X2:200\n"
        "third cue\n"
        "\n"
        "still the third\n"
        "\n"
        "\n"
        "4\n"
        "0:0:7,000 --> 0:0:8,000\n"
        "fourth   cue\t here\n"
    )
    subtitles = read_sidecar(write(tmp_path / "clip.srt", srt))
    assert subtitles.cues == [
        Cue(1.0, 2.5, "first cue"),
        Cue(3.0, 4.0, "second cue"),
        Cue(5.0, 6.0, "third cue still the third"),
        Cue(7.0, 8.0, "fourth cue here"),
    ]
    assert subtitles.problems == []


def test_ass_codes_drawings_and_order(tmp_path: Path) -> None:
    srt = (
        "2\n00:00:05,000 --> 00:00:06,000\nlater\n\n"
        "1\n00:00:01,000 --> 00:00:02,000\n"
        "{\\pos(10,10)\\c&H00FF00&}Sign{\\p1}m 0 0 l 10 0 10 10{\\p0} text\\hhere\n"
    )
    subtitles = read_sidecar(write(tmp_path / "clip.srt", srt))
    assert subtitles.cues == [Cue(1.0, 2.0, "Sign text here"), Cue(5.0, 6.0, "later")]


def test_malformed_cues_are_skipped_and_named(tmp_path: Path) -> None:
    srt = """\
1
00:00:01,000 --> 00:00:02,000
good one

2
00:00:xx,000 --> 00:00:04,000
broken time

3
00:00:06,000 --> 00:00:05,000
inverted

4
00:00:07,000 --> 00:00:08,000
<i> </i>

5
00:00:09,000 00:00:10,000
no arrow

6
-00:00:01,000 --> 00:00:11,000
negative

7
00:00:12,000 --> 00:00:13,000
good two

8
999999:00:00,000 --> 999999:00:01,000
far future
"""
    subtitles = read_sidecar(write(tmp_path / "clip.srt", srt))
    assert subtitles.cues == [
        Cue(1.0, 2.0, "good one"),
        Cue(12.0, 13.0, "good two"),
        Cue(48 * 3600.0, 48 * 3600.0, "far future"),
    ]
    problems = subtitles.problems
    assert problem_about(problems, "unreadable times at line 6")
    assert problem_about(problems, "ends before it starts at line 10")
    assert problem_about(problems, "empty cue at line 14")
    assert problem_about(problems, "without a readable '-->' line at line 17")
    assert problem_about(problems, "negative time at line 22")
    assert problem_about(problems, "clamped at line 30")
    assert len(problems) == 6


def test_random_bytes_never_raise(tmp_path: Path) -> None:
    noise = random.Random(7).randbytes(200_000)
    subtitles = read_sidecar(write(tmp_path / "noise.srt", noise))
    assert subtitles.cues == []
    assert subtitles.problems


def test_good_cue_among_random_bytes(tmp_path: Path) -> None:
    noise = random.Random(8).randbytes(5_000).replace(b"-->", b"")
    cues = b"1\n00:00:01,000 --> 00:00:02,000\nfound\n\n2\n00:00:03,000 --> 00:00:04,000\nme\n"
    subtitles = read_sidecar(write(tmp_path / "noisy.srt", noise + b"\n\n" + cues))
    assert subtitles.cues[-2:] == [Cue(1.0, 2.0, "found"), Cue(3.0, 4.0, "me")]
    assert subtitles.problems


def test_empty_file(tmp_path: Path) -> None:
    subtitles = read_sidecar(write(tmp_path / "empty.srt", b""))
    assert subtitles.cues == []
    assert subtitles.problems == ["no cues found"]


def test_hostile_content_costs_linear_time(tmp_path: Path) -> None:
    # Unclosed markup and a flood of bad cues: seconds of work would mean a
    # quadratic pattern; a million problem lines would drown the user.
    cue = "00:00:01,000 --> 00:00:02,000\n" + "{\\i1 <i <rt>" * 100_000 + "\n\n"
    flood = "00:00:zz --> 00:00:02,000\n" * 100_000
    path = write(tmp_path / "hostile.srt", cue + flood)
    began = time.perf_counter()
    subtitles = read_sidecar(path)
    assert time.perf_counter() - began < 5.0
    assert len(subtitles.cues) == 1
    assert subtitles.problems == ["unreadable times (100000 places, first at line 4)"]


def test_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.srt"
    with path.open("wb") as file:
        file.truncate(4 * 1024**3)  # sparse: reading it would take seconds
    began = time.perf_counter()
    with pytest.raises(MediaError, match="too large"):
        read_sidecar(str(path))
    assert time.perf_counter() - began < 1.0
    small = write(tmp_path / "small.srt", SRT)
    with pytest.raises(MediaError, match="too large"):
        read_sidecar(small, max_bytes=100)


def test_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "clip.srt"
    os.mkfifo(fifo)
    with pytest.raises(MediaError, match="not a regular file"):
        read_sidecar(str(fifo))


# Finding sidecar files.


def test_sidecar_files_beside_a_video(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    wanted = ["clip.srt", "clip.VTT", "clip.en.srt", "clip.pt-BR.vtt", "clip.fra.SRT"]
    wanted += ["clip.pt_BR.srt", "clip.en.forced.srt"]
    unwanted = ["clip2.srt", "other.srt", "clip.txt", "clip.english.srt", "clip.en.srt.bak"]
    unwanted += ["clip.mp4.srt", "Clip.srt", "clipsrt", "clip.en.US.x.srt"]
    for name in wanted + unwanted:
        (tmp_path / name).write_text(SRT)
    (tmp_path / "clip.de.srt").mkdir()
    found = [os.path.basename(path) for path in sidecar_files(str(video))]
    assert found == [
        "clip.srt",
        "clip.VTT",
        "clip.en.forced.srt",
        "clip.en.srt",
        "clip.fra.SRT",
        "clip.pt-BR.vtt",
        "clip.pt_BR.srt",
    ]
    assert sidecar_files(str(tmp_path / "missing" / "clip.mp4")) == []


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("clip.srt", None),
        ("clip.en.srt", "en"),
        ("clip.en-US.srt", "en"),
        ("clip.pt_BR.vtt", "pt"),
        ("clip.FRA.srt", "fra"),
        ("clip.ja.forced.srt", "ja"),
        ("clip.und.srt", None),
    ],
)
def test_sidecar_language_from_name(tmp_path: Path, name: str, language: str | None) -> None:
    assert read_sidecar(write(tmp_path / name, SRT)).language == language


# Streams inside videos, muxed by the ffmpeg command line.


@pytest.fixture(scope="module")
def plain_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("subtitled")
    shots = [Shot(1.0, (200, 40, 40)), Shot(1.0, (40, 200, 40)), Shot(1.0, (40, 40, 200))]
    return make_video(folder / "plain.mp4", shots)


@pytest.fixture(scope="module")
def source_srt(plain_video: Path) -> Path:
    path = plain_video.parent / "source.srt"
    path.write_text(SRT, encoding="utf-8")
    return path


def assert_same_cues(got: list[Cue], expected: list[Cue]) -> None:
    assert [cue.text for cue in got] == [cue.text for cue in expected]
    for cue, want in zip(got, expected, strict=True):
        assert cue.start == pytest.approx(want.start, abs=0.05)
        assert cue.end == pytest.approx(want.end, abs=0.05)


@pytest.mark.parametrize(
    ("codec", "suffix", "name"),
    [
        ("mov_text", ".mp4", "mov_text"),
        ("srt", ".mkv", "subrip"),
        ("ass", ".mkv", "ass"),
        ("webvtt", ".mkv", "webvtt"),
    ],
)
def test_text_stream(
    plain_video: Path, source_srt: Path, tmp_path: Path, codec: str, suffix: str, name: str
) -> None:
    out = mux_subtitles(
        plain_video, tmp_path / f"out{suffix}", [SubtitleTrack(source_srt, codec, "fra")]
    )
    [subtitles] = read_streams(str(out))
    assert_same_cues(subtitles.cues, SRT_CUES)
    assert subtitles.language == "fra"
    assert subtitles.source == f"stream:1 ({name})"
    assert subtitles.problems == []


@pytest.mark.parametrize(("codec", "suffix"), [("mov_text", ".mp4"), ("srt", ".mkv")])
def test_file_that_does_not_start_at_zero(
    plain_video: Path, source_srt: Path, tmp_path: Path, codec: str, suffix: str
) -> None:
    out = mux_subtitles(
        plain_video, tmp_path / f"late{suffix}", [SubtitleTrack(source_srt, codec)], offset=10.0
    )
    with av.open(str(out)) as container:
        assert container.start_time == pytest.approx(10_000_000, abs=100_000)
    [subtitles] = read_streams(str(out))
    assert_same_cues(subtitles.cues, SRT_CUES)
    assert subtitles.language is None


def test_two_streams_and_a_bitmap_one(plain_video: Path, source_srt: Path, tmp_path: Path) -> None:
    english = tmp_path / "english.srt"
    english.write_text("1\n00:00:00,250 --> 00:00:02,750\nHello, world\n", encoding="utf-8")
    bitmap = make_bitmap_subtitles(tmp_path / "bitmap.mkv")
    tracks = [
        SubtitleTrack(english, "srt", "eng"),
        SubtitleTrack(bitmap, "copy", "deu"),
        SubtitleTrack(source_srt, "ass", "jpn"),
    ]
    out = mux_subtitles(plain_video, tmp_path / "two.mkv", tracks)
    with av.open(str(out)) as container:
        assert [s.codec_context.name for s in container.streams.subtitles][1] == "dvdsub"
    first, second = read_streams(str(out))
    assert (first.source, first.language) == ("stream:1 (subrip)", "eng")
    assert_same_cues(first.cues, [Cue(0.25, 2.75, "Hello, world")])
    assert (second.source, second.language) == ("stream:3 (ass)", "jpn")
    assert_same_cues(second.cues, SRT_CUES)


def test_legacy_encoding_inside_a_stream(plain_video: Path, tmp_path: Path) -> None:
    # ffmpeg copies a Windows-1252 SubRip file into Matroska as it is; FFmpeg's
    # decoder then refuses the text as not UTF-8.
    legacy = tmp_path / "legacy.srt"
    write(legacy, "1\n00:00:01,000 --> 00:00:02,000\n<i>café</i> crème\n", "cp1252")
    out = mux_subtitles(plain_video, tmp_path / "legacy.mkv", [SubtitleTrack(legacy, "copy")])
    [subtitles] = read_streams(str(out))
    assert_same_cues(subtitles.cues, [Cue(1.0, 2.0, "café crème")])


def test_truncated_file_gives_what_it_holds(
    plain_video: Path, source_srt: Path, tmp_path: Path
) -> None:
    out = mux_subtitles(plain_video, tmp_path / "whole.mkv", [SubtitleTrack(source_srt, "srt")])
    data = out.read_bytes()
    # Cut between the first cue and the second: the rest of the file is gone.
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: (data.index(b"</b> line") + data.index("café".encode())) // 2])
    [subtitles] = read_streams(str(cut))
    assert_same_cues(subtitles.cues, SRT_CUES[:1])


def test_damaged_videos_give_cues_or_media_error(
    plain_video: Path, source_srt: Path, tmp_path: Path
) -> None:
    whole = [
        mux_subtitles(plain_video, tmp_path / "a.mp4", [SubtitleTrack(source_srt, "mov_text")]),
        mux_subtitles(plain_video, tmp_path / "a.mkv", [SubtitleTrack(source_srt, "ass")]),
    ]
    rng = random.Random(11)
    damaged = tmp_path / "damaged.bin"
    for path in whole:
        data = path.read_bytes()
        for _ in range(15):
            spoilt = bytearray(data)
            at = rng.randrange(len(data))
            spoilt[at : at + 32] = rng.randbytes(32)
            damaged.write_bytes(spoilt[: rng.randrange(len(data) // 2, len(data) + 1)])
            try:
                tracks = read_streams(str(damaged))
            except MediaError:
                continue
            for track in tracks:
                assert all(0.0 <= cue.start <= cue.end and cue.text for cue in track.cues)


def test_video_without_subtitles(plain_video: Path) -> None:
    assert read_streams(str(plain_video)) == []


def test_unreadable_video_raises_media_error(tmp_path: Path) -> None:
    path = write(tmp_path / "noise.mkv", random.Random(3).randbytes(4_000))
    with pytest.raises(MediaError, match="not a readable video"):
        read_streams(path)
