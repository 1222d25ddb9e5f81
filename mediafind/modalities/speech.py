"""What is said: the words of videos' soundtracks and recordings, and subtitles.

A video with subtitles (files beside it, `clip.srt`, `clip.en.vtt`, or text
subtitle streams inside it) is not transcribed: its subtitles are read instead,
being exact and free. Everything else with sound is transcribed with Whisper
where voice activity detection hears speech, in pieces, so memory stays small
and a two-hour video with five minutes of talk costs five minutes of work.
Each phrase (a few words up to a sentence) is a segment with its words.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mediafind import config
from mediafind.db import NewSegment
from mediafind.errors import MediaError, UsageError
from mediafind.modalities.base import Decoded, DecodeOptions, Example, Progress, WordsModality

if TYPE_CHECKING:
    from mediafind.models.whisper import WhisperTranscriber

ENV_SPEECH_MODEL = "MEDIAFIND_SPEECH_MODEL"
# Audio is read in pieces of this many seconds: voice activity detection
# runs on each, then Whisper on the speech it finds (about 20 MB of samples).
PIECE_SECONDS = 300.0
# Whisper reads 30-second windows; longer speech is cut into pieces this long.
LONGEST_CHUNK = 28.0


class Speech(WordsModality):
    name = "speech"
    noun = "speech"
    kinds = ("video", "audio")
    option = "--speech-model"
    argument = "speech_model"
    env = ENV_SPEECH_MODEL
    model_help = "faster-whisper: a model name (base, small, ...), a repo id or a local folder."
    config_key = "speech_model"
    # Whisper base, multilingual: 5.0% / 12.4% word error on LibriSpeech
    # clean/other, about 20 times faster than real time on two cores here
    # in int8; small reads better (3.4% clean) at three times the cost. The
    # README's Speech section gives the reasoning and figures.
    default_model = "base"
    skip_option = "--no-speech"
    skip_help = "Do not transcribe what is said, nor read subtitles."
    example_kinds = ("audio", "video")
    detects_language = True
    unit = "phrase"
    # Reading words is slow: after pictures and sound, so that the library
    # can be searched meanwhile.
    after = ("visual", "audio")
    pass_label = "reading words"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> WhisperTranscriber:
        from mediafind.models.whisper import WhisperTranscriber

        return WhisperTranscriber(choice, device=device, precision=precision)

    def decode(
        self,
        path: str,
        kind: str,
        embedder: WhisperTranscriber,
        options: DecodeOptions,
        progress: Progress,
    ) -> Decoded:
        if kind == "video":
            subtitled = _subtitles(path)
            if subtitled is not None:
                return subtitled
        return _transcribed(path, embedder, options.language, progress)

    def example_words(self, example: Example, embedder: WhisperTranscriber) -> str:
        """What an example file says (all of it, or the phrase at its time)."""
        try:
            decoded = self.decode(example.path, "audio", embedder, DecodeOptions(), _quiet)
        except MediaError as error:
            raise UsageError(f"{{argument}} {example.path}: {error}", argument="like") from error
        texts = [
            text
            for segment, text in zip(decoded.segments, decoded.texts, strict=True)
            if example.time is None
            or (segment.start or 0.0) <= example.time < (segment.end or 0.0) + 1.0
        ]
        return " ".join(texts)


def _quiet(position: float, duration: float) -> None:
    pass


def _subtitles(path: str) -> Decoded | None:
    """The video's subtitles as segments, or None when it has none."""
    from mediafind.media.subtitles import read_sidecar, read_streams, sidecar_files

    found = []
    problems: list[str] = []
    for sidecar in sidecar_files(path):
        try:
            found.append(read_sidecar(sidecar))
        except MediaError as error:
            problems.append(f"{os.path.basename(sidecar)}: {error}")
    try:
        found += read_streams(path)
    except MediaError as error:
        problems.append(str(error))
    tracks = [track for track in found if track.cues]
    for track in found:
        problems += [f"{track.source}: {problem}" for problem in track.problems]
    if not tracks:
        return None
    decoded = Decoded(language=tracks[0].language)
    for track in tracks:
        for cue in track.cues:
            decoded.segments.append(NewSegment(Speech.name, cue.start, cue.end))
            decoded.texts.append(cue.text)
    if problems:
        decoded.partial = "subtitles: " + "; ".join(problems[:3])
    return decoded


def _transcribed(
    path: str, model: WhisperTranscriber, language: str | None, progress: Progress
) -> Decoded:
    from mediafind.media.audio import AudioReport, audio_pieces
    from mediafind.models.whisper import SAMPLE_RATE, phrase_text, phrases

    decoded = Decoded()
    report = AudioReport()
    for offset, piece in audio_pieces(
        path, rate=SAMPLE_RATE, piece_seconds=PIECE_SECONDS, report=report, progress=progress
    ):
        for start, end in model.speech_regions(piece):
            step = round(LONGEST_CHUNK * SAMPLE_RATE)
            for at in range(start, end, step):
                chunk = piece[at : min(end, at + step)]
                transcript = model.transcribe(chunk, offset + at / SAMPLE_RATE, language)
                # The language heard first is the file's: later pieces are read
                # in it (detection on a short stretch can waver).
                language = language or transcript.language
                for phrase in phrases(transcript.words):
                    decoded.segments.append(
                        NewSegment(Speech.name, phrase[0].start, phrase[-1].end)
                    )
                    decoded.texts.append(phrase_text(phrase))
    decoded.language = language if decoded.segments else None
    if report.problem:
        decoded.partial = f"speech: the sound is damaged ({report.problem})"
    return decoded
