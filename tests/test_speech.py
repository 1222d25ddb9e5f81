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
    assert "words read in 1" in result.stderr
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
sys.argv = ["mediafind", "index", sys.argv[2]]
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
    assert "words read in 1" in again.stderr
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
