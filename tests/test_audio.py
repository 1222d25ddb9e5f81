"""Sound: windows, silence, formats, query by example, modalities and calibrated ranking."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, draw_photo
from media_factory import Shot, make_audio, pieces_samples, shot_picture, sound, write_audio
from test_fast import MEDIAFIND_IMPORTTIME, imported

from mediafind.db import Store
from mediafind.errors import MediaError
from mediafind.media.audio import AudioReport, audio_windows

RATE = 48_000


def windows(path: Path) -> tuple[list[tuple[float, float]], AudioReport]:
    report = AudioReport()
    found = [
        (w.start, w.end)
        for w in audio_windows(str(path), rate=RATE, window_seconds=10.0, report=report)
    ]
    return found, report


def test_windows_overlap_and_silence_is_skipped(tmp_path: Path):
    path = make_audio(tmp_path / "memo.wav", [("tone", 12), ("silence", 20), ("noise", 8)])
    found, report = windows(path)
    # 10 s windows every 7.5 s; the one at 15 s hears only silence.
    assert found == [(0.0, 10.0), (7.5, 17.5), (22.5, 32.5), (30.0, 40.0)]
    assert report.duration == pytest.approx(40.0)
    assert (report.windows, report.silent) == (5, 1)


def test_short_clip_is_one_window(tmp_path: Path):
    found, _ = windows(make_audio(tmp_path / "blip.wav", [("tone", 2)]))
    assert found == [(0.0, 2.0)]


def test_long_recording_is_many_windows_ending_at_the_end(tmp_path: Path):
    path = make_audio(
        tmp_path / "lecture.flac", [("chirp", 1200)], rate=8000, codec="flac", layout="mono"
    )
    found, _ = windows(path)
    assert len(found) == 160
    assert found[-1][1] == pytest.approx(1200.0)
    steps = [b[0] - a[0] for a, b in itertools.pairwise(found[:-1])]
    assert steps == pytest.approx([7.5] * len(steps))


def test_mostly_silent_recording_yields_few_windows(tmp_path: Path):
    path = make_audio(
        tmp_path / "night.wav",
        [("silence", 300), ("tone", 3), ("silence", 300)],
        rate=8000,
        layout="mono",
    )
    found, report = windows(path)
    assert 1 <= len(found) <= 2
    assert report.silent >= 75


@pytest.mark.parametrize(
    ("name", "codec", "rate"),
    [
        ("song.mp3", "libmp3lame", 44100),
        ("song.flac", "flac", 48000),
        ("song.ogg", "libopus", 48000),
        ("song.opus", "libopus", 48000),
        ("song.m4a", "aac", 44100),
        ("memo.wav", "pcm_s16le", 8000),
        ("take.aiff", "pcm_s16be", 22050),
    ],
)
def test_formats_and_sample_rates(tmp_path: Path, name: str, codec: str, rate: int):
    path = make_audio(
        tmp_path / name, [("tone", 12), ("silence", 20), ("noise", 8)], rate=rate, codec=codec
    )
    found, report = windows(path)
    assert [start for start, _ in found] == [0.0, 7.5, 22.5, 30.0]
    assert report.duration == pytest.approx(40.0, abs=0.05)


def test_resampled_audio_keeps_its_pitch(tmp_path: Path):
    path = make_audio(tmp_path / "a440.wav", [("tone", 3, 440.0)], rate=22050)
    samples = next(audio_windows(str(path), rate=RATE, window_seconds=10.0)).samples
    spectrum = np.abs(np.fft.rfft(samples))
    peak = np.argmax(spectrum) * RATE / len(samples)
    assert peak == pytest.approx(440.0, abs=2.0)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEjunk", b"ID3" + b"\x01" * 300])
def test_corrupt_audio_is_a_media_error(tmp_path: Path, content: bytes):
    path = tmp_path / "broken.mp3"
    path.write_bytes(content)
    with pytest.raises(MediaError):
        windows(path)


def make_video_with_sound(path: Path, scenes: list[tuple[Shot, str]], seconds: float) -> Path:
    """A video whose scenes each come with their own sound."""
    import av

    fps, rate, size = 10, 48000, (160, 96)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        frame_number = 0
        for shot, _ in scenes:
            for _ in range(round(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(shot_picture(shot, *size), format="rgb24")
                frame.pts, frame.time_base = frame_number, Fraction(1, fps)
                frame_number += 1
                for packet in video.encode(frame):
                    container.mux(packet)
        pts = 0
        samples = np.concatenate([sound(kind, seconds, rate, 300.0) for _, kind in scenes])
        for at in range(0, len(samples), 1024):
            chunk = np.ascontiguousarray(samples[None, at : at + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, pts
            pts += chunk.shape[1]
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return path


RECORDING = [("noise", 10.0, 7.0), ("tone", 15.0, 440.0), ("chirp", 12.0)]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    make_audio(root / "recording.flac", RECORDING, codec="flac", rate=RATE, layout="mono")
    make_audio(root / "memo.m4a", [("tone", 8, 660.0), ("silence", 4)], codec="aac", rate=44100)
    make_audio(root / "rain.flac", [("noise", 20)], codec="flac", rate=48000)
    make_video_with_sound(
        root / "party.mp4",
        [
            (Shot(1, (220, 30, 30), (250, 250, 250)), "noise"),
            (Shot(1, (30, 60, 220), (250, 220, 40)), "chirp"),
        ],
        seconds=12.0,
    )
    draw_photo(root / "cake.jpg", COLORS["yellow"])
    return root


def test_index_and_search_sound(cli, library: Path):
    result = cli("index", library)
    assert result.exit_code == 0, result.stderr
    assert "5 new" in result.stderr
    heard = json.loads(cli("search", "dog barking", "--json", "--modality", "audio").stdout)
    assert {Path(r["path"]).name for r in heard} == {
        "recording.flac",
        "memo.m4a",
        "rain.flac",
        "party.mp4",
    }
    for item in heard:
        assert item["modality"] == "audio"
        assert all(m["modality"] == "audio" for m in item["moments"])
        assert 0.0 <= item["start"] < item["end"]
    recordings = json.loads(cli("search", "rain", "--json", "--type", "audio").stdout)
    assert {r["kind"] for r in recordings} == {"audio"}
    seen = json.loads(cli("search", "cake", "--json", "--modality", "visual").stdout)
    assert {Path(r["path"]).name for r in seen} == {"party.mp4", "cake.jpg"}


def test_query_by_example_with_sound_finds_the_moment(cli, library: Path, tmp_path: Path):
    cli("index", library)
    # Someone kept ten seconds of the recording, from 0:15: the example finds
    # the recording at that moment.
    excerpt = pieces_samples(RECORDING, RATE)[15 * RATE : 25 * RATE]
    clip = write_audio(tmp_path / "clip.wav", excerpt, rate=RATE)
    result = cli("search", "--like", clip, "--json")
    assert result.exit_code == 0, result.stderr
    top = json.loads(result.stdout)[0]
    assert Path(top["path"]).name == "recording.flac"
    assert top["modality"] == "audio"
    assert (top["start"], top["end"]) == (15.0, 25.0)


def test_like_a_moment_of_a_recording_excludes_it(cli, library: Path):
    cli("index", library)
    result = cli("search", "--like", f"{library / 'rain.flac'}@0:05", "--json")
    names = [Path(r["path"]).name for r in json.loads(result.stdout)]
    assert "rain.flac" not in names and names


def stored_segments(db_path: Path, modality: str) -> list[tuple[str, tuple, np.ndarray]]:  # type: ignore[type-arg]
    """(path, (start, end), vector) of every segment of a modality, by SQL alone."""
    with Store.open(db_path, create=False) as store:
        (table,) = store.conn.execute(
            "SELECT 'vec_space_' || id FROM spaces WHERE modality = ? AND active = 1", (modality,)
        ).fetchone()
        rows = store.conn.execute(
            f"SELECT f.path, s.start, s.end, v.embedding FROM {table} v "
            "JOIN segments s ON s.id = v.segment_id JOIN files f ON f.id = s.file_id"
        ).fetchall()
    return [
        (path, (start, end), np.frombuffer(blob, dtype=np.float32))
        for path, start, end, blob in rows
    ]


@pytest.mark.usefixtures("fake_models")
def test_ranking_across_modalities_follows_the_calibration(cli, library: Path, db_path: Path):
    from fake_modality import text_vector

    cli("index", library)
    query = "birthday party with music"
    results = json.loads(cli("search", query, "--json").stdout)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert {"audio", "visual"} <= {r["modality"] for r in results}

    # The expected scores, from the stored vectors with numpy: each segment's
    # cosine to the query, less the query's mean cosine over all segments of
    # its modality, over their standard deviation (the README's rule).
    expected: dict[str, dict[tuple[str, tuple], float]] = {}  # type: ignore[type-arg]
    for modality in ("visual", "audio"):
        segments = stored_segments(db_path, modality)
        vectors = np.stack([vector for _, _, vector in segments])
        q = text_vector(query, vectors.shape[1]).astype(np.float64)
        center = float(q @ vectors.mean(axis=0))
        spread = math.sqrt(float(q @ np.cov(vectors, rowvar=False) @ q))
        expected[modality] = {
            (path, start): (float(vector @ q) - center) / spread for path, start, vector in segments
        }
    for item in results:
        for moment in item["moments"] or [None]:
            modality = moment["modality"] if moment else item["modality"]
            # A moment's score is its best segment's (alike ones may merge).
            inside = [
                score
                for (path, (start, end)), score in expected[modality].items()
                if path == item["path"]
                and (moment is None or (moment["start"] <= start and end <= moment["end"]))
            ]
            got = moment["score"] if moment else item["score"]
            assert got == pytest.approx(max(inside), rel=1e-3, abs=1e-3)
        # A file's score is its best moment, or the seen-and-heard fusion.
        if item["moments"]:
            seen = [m for m in item["moments"] if m["modality"] == "visual"]
            heard = [m for m in item["moments"] if m["modality"] == "audio"]
            fused = [
                (a["score"] + b["score"]) / math.sqrt(2)
                for a in seen
                for b in heard
                if a["score"] > 0
                and b["score"] > 0
                and a["start"] < b["end"]
                and b["start"] < a["end"]
            ]
            assert item["score"] == pytest.approx(max([item["moments"][0]["score"], *fused]))


def test_no_audio_leaves_sound_out_and_a_later_run_adds_it(cli, library: Path):
    first = cli("index", library, "--no-audio", "--no-speech")
    assert first.exit_code == 0
    assert "2 new" in first.stderr  # the video and the photo
    assert cli("search", "x", "--modality", "audio").exit_code == 2
    second = cli("index", library)
    assert "3 new" in second.stderr and "1 re-embedded" in second.stderr
    heard = json.loads(cli("search", "x", "--json", "--modality", "audio").stdout)
    assert "party.mp4" in {Path(r["path"]).name for r in heard}


def test_corrupt_recording_is_reported_and_the_run_goes_on(cli, library: Path):
    (library / "broken.mp3").write_bytes(b"ID3" + b"\x01" * 300)
    result = cli("index", library)
    assert result.exit_code == 0
    assert "broken.mp3" in result.stderr and "1 failed" in result.stderr


def test_photo_index_search_does_not_import_transformers(cli, tmp_path: Path, db_path: Path):
    draw_photo(tmp_path / "p" / "a.jpg", COLORS["red"])
    cli("index", tmp_path / "p")
    result = subprocess.run(
        [*MEDIAFIND_IMPORTTIME, "search", "a cat", "--db", str(db_path), "--paths"],
        capture_output=True,
        text=True,
    )
    assert "a.jpg" in result.stdout
    assert "transformers" not in imported(result.stderr)


def test_offline_sound_model_is_one_clear_line(cli, library: Path):
    result = cli("index", library, "--audio-model", "laion/clap-htsat-unfused")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "mediafind: error: --audio-model laion/clap-htsat-unfused: it is not in the cache"
    )
    assert "--no-audio" in result.stderr


def test_sound_models_are_never_mixed(cli, library: Path, other_clap: str, monkeypatch):
    assert cli("index", library).exit_code == 0
    refused = cli("index", library, "--audio-model", other_clap)
    assert refused.exit_code == 2
    assert "--audio-model" in refused.stderr and "--reembed" in refused.stderr
    switched = cli("index", library, "--audio-model", other_clap, "--reembed")
    assert switched.exit_code == 0, switched.stderr
    assert "4 re-embedded" in switched.stderr  # the recordings and the video's sound
    monkeypatch.delenv("MEDIAFIND_AUDIO_MODEL")
    status = json.loads(cli("status", "--json").stdout)
    assert [m["model"] for m in status["models"] if m["modality"] == "audio"] == [other_clap]
    assert cli("search", "rain", "--modality", "audio", "--paths").exit_code == 0
