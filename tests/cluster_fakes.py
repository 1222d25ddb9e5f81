"""Modalities for the cluster's tests, importable by Ray's worker processes
(the test cluster puts this folder on their path): the fake visual modality,
made slow, or made to kill the worker that reads a chosen file, once.

They travel to the workers inside each job, instance attributes and all, as
every run's modalities do.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fake_modality import FakeAudio, FakeVisual

from mediafind.modalities.base import Decoded, DecodeOptions, Progress


class SlowVisual(FakeVisual):
    """Takes `seconds` to decode each file: a run long enough to interrupt."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        time.sleep(self.seconds)
        return super().decode(path, kind, embedder, options, progress)


class KillingVisual(FakeVisual):
    """Kills (SIGKILL) the process that first decodes a file named `victim`,
    leaving `marker` behind to say it did; later attempts decode it."""

    def __init__(self, victim: str, marker: Path) -> None:
        self.victim = victim
        self.marker = marker

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        if os.path.basename(path) == self.victim and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().decode(path, kind, embedder, options, progress)


# `mediafind ARGS` in a subprocess with the slow picture modality registered.
SLOW_CLI = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    "from cluster_fakes import slow_modalities; from mediafind import modalities; "
    "modalities._REGISTRY.clear(); [modalities.register(m) for m in slow_modalities()]; "
    "from mediafind.cli import main; sys.argv[0] = 'mediafind'; main()"
)


def slow_modalities() -> list[Any]:
    return [SlowVisual(0.05), FakeAudio()]


def slow_cli(*args: str) -> list[str]:
    return [sys.executable, "-c", SLOW_CLI, *args]
