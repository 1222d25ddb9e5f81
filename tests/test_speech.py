"""Speech: what is said in recordings and videos, found by its words and moment.

The transcriber is a tiny Whisper with random weights (it says nonsense, but
through the real faster-whisper and CTranslate2 code, from a local folder
like a user's); voice activity detection is the real Silero model that ships
in faster-whisper; the speech is espeak-ng's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, draw_photo
from media_factory import make_audio, sound, write_audio

from mediafind.db import Store
from mediafind.models.whisper import WhisperTranscriber

RATE = 16_000


def speech(text: str, path: Path) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz mono samples."""
    subprocess.run(["espeak-ng", "-w", str(path), "-s", "150", text], check=True)
    with wave.open(str(path)) as spoken:
        rate = spoken.getframerate()
        samples = np.frombuffer(spoken.readframes(spoken.getnframes()), dtype=np.int16)
    samples = samples.astype(np.float32) / 32768.0
    positions = np.arange(0, len(samples), rate / RATE)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def recording(path: Path, pieces: list[tuple[str, float | str]], work: Path) -> dict[str, float]:
    """A recording of silence, noise, tones and spoken sentences back to back;
    returns where each sentence starts and ends."""
    parts, at, spans = [], 0.0, {}
    for kind, value in pieces:
        if kind == "say":
            samples = speech(str(value), work / f"say-{len(spans)}.wav")
            spans[str(value)] = (at, at + len(samples) / RATE)
        else:
            samples = sound(kind, float(value), RATE, 300.0)
        parts.append(samples)
        at += len(samples) / RATE
    write_audio(path, np.concatenate(parts), rate=RATE)
    return spans


@pytest.fixture
def spoken(tmp_path: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    root = tmp_path / "memos"
    spans = recording(
        root / "memo.wav",
        [
            ("silence", 3.0),
            ("say", "Happy birthday grandma, we parked the car on level three."),
            ("silence", 1.0),
            ("noise", 4.0),
            ("silence", 1.0),
            ("say", "Remember to bring the orange notebook on Thursday."),
            ("silence", 3.0),
        ],
        tmp_path,
    )
    return root, spans


def speech_segments(db_path: Path) -> list[tuple[str, float, float, str]]:
    with Store.open(db_path, create=False) as store:
        rows = store.conn.execute(
            "SELECT f.path, s.start, s.end, w.text FROM segments s "
            "JOIN files f ON f.id = s.file_id JOIN segment_words w ON w.segment_id = s.id "
            "WHERE s.modality = 'speech' ORDER BY f.path, s.start"
        ).fetchall()
    return [(Path(row[0]).name, row[1], row[2], row[3]) for row in rows]


class Counting:
    """Counts the transcriber's work, through the real method."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = WhisperTranscriber.transcribe

        def transcribe(model, samples, offset, language):  # type: ignore[no-untyped-def]
            self.calls += 1
            return real(model, samples, offset, language)

        monkeypatch.setattr(WhisperTranscriber, "transcribe", transcribe)


def test_only_the_speech_is_transcribed_and_its_moments_lie_in_it(
    cli, spoken, db_path: Path, monkeypatch
):
    root, spans = spoken
    counting = Counting(monkeypatch)
    result = cli("index", root)
    assert result.exit_code == 0, result.stderr
    assert "words read in 1 file" in result.stderr
    found = speech_segments(db_path)
    assert found, "the speech became segments"
    sentences = list(spans.values())
    for _, start, end, text in found:
        assert text.strip()
        # Every phrase lies in one of the sentences (voice activity detection
        # pads its regions by 0.3 s).
        assert any(s - 0.35 <= start and end <= e + 0.35 for s, e in sentences), (start, end)
    # Two sentences, each a stretch of speech under Whisper's 30 s: two calls;
    # the noise and silence between them cost none.
    assert counting.calls == 2
    status = json.loads(cli("status", "--json").stdout)
    assert status["languages"] == {"en": 1}  # the tiny model speaks English only


def test_sound_without_speech_is_never_transcribed(cli, tmp_path: Path, db_path, monkeypatch):
    root = tmp_path / "no-speech"
    make_audio(root / "music.wav", [("tone", 20.0, 440.0), ("chirp", 20.0)], rate=RATE)
    make_audio(root / "rain.wav", [("noise", 30.0)], rate=RATE)
    make_audio(root / "quiet.wav", [("silence", 30.0)], rate=RATE)
    counting = Counting(monkeypatch)
    result = cli("index", root)
    assert result.exit_code == 0, result.stderr
    assert counting.calls == 0
    assert speech_segments(db_path) == []
    # Read, found to hold no speech, and not read again.
    again = cli("index", root)
    assert "words read" not in again.stderr and counting.calls == 0


# Indexes, saying each file whose speech it reads; with "stall", reading the
# last file's never ends, as a long transcription would not.
STALLING = """
import sys, time
from mediafind.modalities.speech import Speech
real = Speech.decode
mode = sys.argv[1]
def decode(self, path, kind, embedder, options, progress):
    sys.stdout.write("reading words\\n")
    sys.stdout.flush()
    if mode == "stall" and path.endswith("c.wav"):
        time.sleep(600)
    return real(self, path, kind, embedder, options, progress)
Speech.decode = decode
from mediafind.cli import main
sys.argv = ["mediafind", "index", sys.argv[2], "--no-text"]
main()
"""


def speech_done(db_path: Path) -> int:
    """How many files have had their speech read (with words found or not)."""
    try:
        with Store.open(db_path, create=False) as store:
            row = store.conn.execute(
                "SELECT count(*) FROM file_spaces fs JOIN spaces s ON s.id = fs.space_id "
                "WHERE s.modality = 'speech'"
            ).fetchone()
    except Exception:
        return 0  # not created yet, or being migrated by the run
    return int(row[0])


def test_the_words_pass_comes_after_sight_and_sound_and_resumes(cli, tmp_path: Path, db_path: Path):
    import os
    import signal
    import sys
    import time

    root = tmp_path / "memos"
    for name in ("a", "b", "c"):
        say = [("say", f"Note {name}, call the plumber."), ("silence", 1.0)]
        recording(root / f"{name}.wav", say, tmp_path)  # type: ignore[arg-type]
    draw_photo(root / "photo.jpg", COLORS["red"])
    run = subprocess.Popen(
        [sys.executable, "-c", STALLING, "stall", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 120
    while speech_done(db_path) < 2:
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    # Sight and sound are all in: the library is searchable while words come.
    found = cli("search", "anything", "--paths", "--limit", "10").stdout.split()
    assert sorted(Path(p).name for p in found) == ["a.wav", "b.wav", "c.wav", "photo.jpg"]
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=30) == 130
    assert speech_done(db_path) == 2
    again = subprocess.run(
        [sys.executable, "-c", STALLING, "go", str(root)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    # Only the recording the first run did not finish is read again.
    assert again.stdout.count("reading words") == 1
    assert "words read in 1 file" in again.stderr
    assert speech_done(db_path) == 3
    third = subprocess.run(
        [sys.executable, "-c", STALLING, "go", str(root)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert third.stdout.count("reading words") == 0  # never read twice


def test_a_moved_recording_keeps_its_transcript(cli, spoken, db_path: Path, monkeypatch):
    root, _ = spoken
    cli("index", root)
    before = speech_segments(db_path)
    counting = Counting(monkeypatch)
    (root / "moved").mkdir()
    shutil.move(root / "memo.wav", root / "moved" / "memo.wav")
    result = cli("index", root)
    assert "1 moved" in result.stderr
    assert counting.calls == 0
    assert [row[1:] for row in speech_segments(db_path)] == [row[1:] for row in before]


SRT = """1
00:00:01,000 --> 00:00:02,500
Welcome to the Café Crème,
<i>the best in town</i>

2
00:00:04,000 --> 00:00:05,800
Happy birthday grandma!

3
00:00:07,000 --> 00:00:08,900
東京の夜景がとても綺麗です
"""


@pytest.fixture
def subtitled(tmp_path: Path) -> Path:
    from media_factory import Shot, make_video

    root = tmp_path / "videos"
    shots = [Shot(3.0, COLORS["red"]), Shot(3.0, COLORS["blue"]), Shot(4.0, COLORS["green"])]
    make_video(root / "party.mp4", shots)
    (root / "party.srt").write_text(SRT, encoding="utf-8")
    make_video(root / "other.mp4", [Shot(4.0, COLORS["yellow"])])
    return root


def search_json(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    result = cli("search", *args, "--json")
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_subtitles_are_searched_by_their_words_at_their_moment(cli, subtitled: Path, monkeypatch):
    counting = Counting(monkeypatch)
    assert cli("index", subtitled).exit_code == 0
    assert counting.calls == 0  # subtitles are read, not transcribed
    found = search_json(cli, "happy birthday grandma", "--modality", "speech")
    assert [Path(r["path"]).name for r in found] == ["party.mp4"]
    top = found[0]
    assert (top["start"], top["end"]) == (4.0, 5.8)
    assert top["modality"] == "speech" and top["text"] == "Happy birthday grandma!"
    assert top["moments"][0]["text"] == "Happy birthday grandma!"
    # Diacritics folded: cafe finds Café; markup gone; stems: "towns" finds town.
    cafe = search_json(cli, "cafe creme towns", "--modality", "speech")
    assert cafe[0]["text"] == "Welcome to the Café Crème, the best in town"
    # Written without spaces: a word inside the phrase is found as a substring.
    night = search_json(cli, "夜景", "--modality", "speech")
    assert night and night[0]["start"] == 7.0
    # A quoted phrase must appear as written.
    assert search_json(cli, '"grandma happy"', "--modality", "speech") == []
    # Short words never match inside others ("to" is no part of "town").
    assert [r["text"] for r in search_json(cli, "own", "--modality", "speech")] == []


def test_an_embedded_subtitle_stream_is_read(cli, subtitled: Path, tmp_path: Path):
    from media_factory import SubtitleTrack, mux_subtitles

    srt = subtitled / "party.srt"
    inner = tmp_path / "inner"
    inner.mkdir()
    mux_subtitles(
        subtitled / "party.mp4",
        inner / "holiday.mkv",
        [SubtitleTrack(srt, "srt", "fra")],
    )
    assert cli("index", inner).exit_code == 0
    found = search_json(cli, "birthday", "--modality", "speech")
    assert [(Path(r["path"]).name, r["start"], r["end"]) for r in found] == [
        ("holiday.mkv", 4.0, 5.8)
    ]
    status = json.loads(cli("status", "--json").stdout)
    assert status["languages"] == {"fra": 1}


def test_words_in_the_table_format_and_transcript(cli, subtitled: Path):
    cli("index", subtitled)
    table = cli("search", "birthday", "--modality", "speech").stdout
    assert "“Happy birthday grandma!”" in table
    line = cli("search", "birthday", "--format", "{name}|{start}|{text}", "--limit", "1").stdout
    assert line == "party.mp4|4.0|Happy birthday grandma!\n"
    plain = cli("transcript", subtitled / "party.mp4").stdout
    assert plain.splitlines()[1] == "[0:04] Happy birthday grandma!"
    srt = cli("transcript", subtitled / "party.mp4", "--srt").stdout
    assert "2\n00:00:04,000 --> 00:00:05,800\nHappy birthday grandma!\n" in srt
    rows = json.loads(cli("transcript", subtitled / "party.mp4", "--json").stdout)
    assert rows[2] == {"start": 7.0, "end": 8.9, "text": "東京の夜景がとても綺麗です"}
    missing = cli("transcript", subtitled / "nowhere.mp4")
    assert missing.exit_code == 2 and "nowhere.mp4: no such file" in missing.stderr
    (subtitled / "unindexed.mp4").write_bytes((subtitled / "party.mp4").read_bytes())
    unindexed = cli("transcript", subtitled / "unindexed.mp4")
    assert unindexed.exit_code == 2 and "not in the index" in unindexed.stderr


def test_a_moment_both_seen_and_said_combines(cli, subtitled: Path, db_path: Path):
    cli("index", subtitled)
    found = search_json(cli, "happy birthday grandma")
    party = next(r for r in found if Path(r["path"]).name == "party.mp4")
    said = next(m for m in party["moments"] if m["modality"] == "speech")
    # The file scores at least as its words alone (fused when a frame of the
    # same moment matches the words too).
    assert party["score"] >= said["score"]
    assert {m["modality"] for m in party["moments"]} >= {"speech", "visual"}


def test_a_recording_given_as_an_example_finds_what_says_the_same(
    cli, tmp_path: Path, db_path: Path
):
    root = tmp_path / "memos"
    recording(
        root / "parking.wav",
        [("say", "We parked the car on level three."), ("silence", 1.0)],
        tmp_path,
    )
    recording(
        root / "shopping.wav", [("say", "Buy milk, eggs and bread."), ("silence", 1.0)], tmp_path
    )
    cli("index", root)
    excerpt = tmp_path / "excerpt.wav"
    shutil.copy(root / "parking.wav", excerpt)  # the same speech, elsewhere
    found = search_json(cli, "--like", str(excerpt), "--modality", "speech")
    assert Path(found[0]["path"]).name == "parking.wav"


def test_damaged_speech_keeps_the_files_sight_and_sound(cli, spoken, db_path: Path, monkeypatch):
    import mediafind.modalities.speech as speech_module
    from mediafind.errors import MediaError

    root, _ = spoken

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise MediaError("cannot decode audio (Invalid data found when processing input)")

    monkeypatch.setattr(speech_module, "_transcribed", broken)
    result = cli("index", root)
    assert result.exit_code == 0
    assert "memo.wav: partly indexed: speech: cannot decode audio" in result.stderr
    with Store.open(db_path, create=False) as store:
        status, kinds = store.conn.execute(
            "SELECT f.status, group_concat(DISTINCT s.modality) FROM files f "
            "JOIN segments s ON s.file_id = f.id"
        ).fetchone()
    assert status == "partial" and kinds == "audio"


def test_a_model_folder_without_its_tokenizer_is_refused(
    cli, spoken, tmp_path: Path, tiny_whisper: str, monkeypatch
):
    root, _ = spoken
    folder = tmp_path / "whisper"
    shutil.copytree(tiny_whisper, folder)
    (folder / "tokenizer.json").unlink()
    monkeypatch.setenv("MEDIAFIND_SPEECH_MODEL", str(folder))
    result = cli("index", root)
    assert result.exit_code == 2
    assert f"MEDIAFIND_SPEECH_MODEL={folder}: the folder {folder} lacks tokenizer.json" in (
        result.stderr
    )


def test_the_language_can_be_given(cli, spoken, monkeypatch):
    root, _ = spoken
    seen: list[str | None] = []
    real = WhisperTranscriber.transcribe

    def recording_language(model, samples, offset, language):  # type: ignore[no-untyped-def]
        seen.append(language)
        return real(model, samples, offset, language)

    monkeypatch.setattr(WhisperTranscriber, "transcribe", recording_language)
    cli("index", root, "--language", "en")
    assert seen and set(seen) == {"en"}
    assert json.loads(cli("status", "--json").stdout)["languages"] == {"en": 1}
