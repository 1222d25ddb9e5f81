"""How things sound: recordings and videos' soundtracks, embedded with a CLAP model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediafind import config
from mediafind.db import NewSegment
from mediafind.errors import MediaError, UsageError
from mediafind.modalities.base import (
    Decoded,
    DecodeOptions,
    Example,
    Progress,
    VectorModality,
    mean_direction,
)

if TYPE_CHECKING:
    import numpy as np

    from mediafind.models.clap import ClapEmbedder


class Audio(VectorModality):
    name = "audio"
    noun = "sound"
    kinds = ("audio", "video")
    essential_for = ("audio",)
    option = "--audio-model"
    argument = "audio_model"
    env = "MEDIAFIND_AUDIO_MODEL"
    model_help = "CLAP: a Hugging Face repo id or a local folder."
    config_key = "audio_model"
    # LAION's CLAP trained on general sounds, music and speech together (its
    # checkpoint reports 89.98% zero-shot accuracy on ESC-50); the README
    # explains the choice.
    default_model = "laion/larger_clap_general"
    skip_option = "--no-audio"
    skip_help = "Leave out how things sound (what is said has --no-speech)."
    example_kinds = ("audio",)

    def embedder(self, choice: config.Choice, device: str, precision: str) -> ClapEmbedder:
        from mediafind.models.clap import ClapEmbedder

        return ClapEmbedder(choice, device=device, precision=precision)

    def decode(
        self,
        path: str,
        kind: str,
        embedder: ClapEmbedder,
        options: DecodeOptions,
        progress: Progress,
    ) -> Decoded:
        from mediafind.media.audio import AudioReport, audio_windows

        decoded = Decoded()
        report = AudioReport()
        for window in audio_windows(
            path,
            rate=embedder.rate,
            window_seconds=embedder.window_seconds,
            report=report,
            progress=progress,
        ):
            decoded.inputs.append(embedder.features(window.samples))
            decoded.segments.append(NewSegment(self.name, window.start, window.end))
        if kind == "audio":
            if report.duration == 0 and report.problem is None:
                raise MediaError("no sound in the file (no audio stream, or 0 samples)")
            decoded.duration = report.duration
            decoded.captured_at = report.captured_at
        if report.problem:
            decoded.partial = f"sound: {report.problem}"
        return decoded

    def embed_example(self, example: Example, embedder: ClapEmbedder) -> np.ndarray:
        """A recording (mean of its sounding windows), or its window starting at a time."""
        from mediafind.media.audio import audio_windows

        try:
            windows = list(
                audio_windows(
                    example.path, rate=embedder.rate, window_seconds=embedder.window_seconds
                )
            )
        except MediaError as error:
            raise UsageError(f"{{argument}} {example.path}: {error}", argument="like") from error
        if example.time is not None:
            windows = [w for w in windows if w.start <= example.time < w.end][:1]
        if not windows:
            raise UsageError(
                f"{{argument}} {example.path}: no sound there to compare with (silence?)",
                argument="like",
            )
        return mean_direction(embedder.embed_audio([w.samples for w in windows]))
