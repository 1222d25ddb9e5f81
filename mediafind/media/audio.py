"""Sound: decode any audio (or a video's soundtrack) with PyAV into model-sized windows.

The audio is resampled to the model's rate, in mono, by PyAV's resampler and
cut into windows of the model's native length that overlap, so that a sound at
a window's edge is still heard whole by the next one. Windows that are silent
are not embedded: a two-hour recording of a quiet room costs almost nothing.
Decoding streams: memory holds one window, not the whole recording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediafind.errors import MediaError, one_line
from mediafind.media.capture import container_capture_time
from mediafind.media.container import open_media

if TYPE_CHECKING:
    import numpy as np

# A window whose loudness stays under this is silence (-50 dBFS: a quiet room
# through a phone microphone is about -60, speech at a distance about -35).
SILENCE_DBFS = -50.0
# Windows overlap by a quarter: the default model needs about a quarter of a
# second per 10-second window on two cores, so 7.5 s steps keep continuous
# audio above 20 times real time (bench/README.md).
OVERLAP = 0.25


@dataclass
class AudioWindow:
    start: float  # seconds from the start of the file
    end: float
    samples: np.ndarray  # mono float32 at the requested rate


@dataclass
class AudioReport:
    """Filled in while windows are read: what the whole file held."""

    duration: float = 0.0
    windows: int = 0
    silent: int = 0
    problem: str | None = None
    captured_at: float | None = None


def default_audio_stream(container: Any) -> Any | None:
    """The stream a player plays: flagged default, else the first; None if there is none."""
    import av

    streams = list(container.streams.audio)
    if not streams:
        return None
    for stream in streams:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    return streams[0]


def _loudness_dbfs(samples: np.ndarray) -> float:
    import numpy as np

    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def _decoded_chunks(
    container: Any, stream: Any, rate: int, report: AudioReport
) -> Iterator[np.ndarray]:
    """Mono float32 chunks at `rate`, in order; stops early (with `report.problem`) on damage."""
    import av
    import numpy as np

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    stream.thread_type = "AUTO"
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                yield np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1)
        for out in resampler.resample(None):
            yield np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1)
    except av.error.FFmpegError as error:
        report.problem = one_line(error)


def _declared_seconds(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1_000_000 if container.duration else 0.0


def audio_windows(
    path: str,
    *,
    rate: int,
    window_seconds: float,
    report: AudioReport | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> Iterator[AudioWindow]:
    """Non-silent windows of `path`'s sound, `window_seconds` long, overlapping.

    A file shorter than a window is one window of its whole length; the last
    window ends where the sound ends. `report` (optional) receives the
    duration, counts, and any problem; `progress` (optional) hears how far
    decoding has come, in seconds, and the duration the file declares (0 when
    it declares none: a claim, shown, never trusted). Raises MediaError when
    the file cannot be opened at all; a file without sound yields nothing.
    """
    import numpy as np

    report = report if report is not None else AudioReport()
    window = round(window_seconds * rate)
    hop = max(1, round(window * (1.0 - OVERLAP)))
    container = open_media(path, "audio file")
    try:
        report.captured_at = container_capture_time(container)
        stream = default_audio_stream(container)
        if stream is None:
            return
        declared = _declared_seconds(container, stream)
        buffer = np.zeros(0, dtype=np.float32)
        offset = 0  # sample index of buffer[0]
        next_start = 0
        total = 0

        def emit(start: int, samples: np.ndarray) -> Iterator[AudioWindow]:
            report.windows += 1
            if _loudness_dbfs(samples) < SILENCE_DBFS:
                report.silent += 1
                return
            yield AudioWindow(start / rate, (start + len(samples)) / rate, samples)

        for chunk in _decoded_chunks(container, stream, rate, report):
            buffer = np.concatenate([buffer, chunk])
            total += len(chunk)
            if progress is not None:
                progress(total / rate, declared)
            while next_start + window <= offset + len(buffer):
                begin = next_start - offset
                yield from emit(next_start, buffer[begin : begin + window].copy())
                next_start += hop
            # Keep what later windows need, and always the last full window's
            # worth, for the tail window at the end.
            keep_from = min(next_start, offset + len(buffer) - window)
            drop = max(0, keep_from - offset)
            buffer, offset = buffer[drop:], offset + drop
        report.duration = total / rate
        if total == 0:
            if report.problem:
                raise MediaError(f"no sound could be decoded ({report.problem})")
            return
        covered_to = next_start - hop + window if report.windows else 0
        # A sliver past the last window (codec padding) is not worth a window.
        if total - covered_to > (rate if report.windows else 0):
            # The sound after the last full window: one more window that ends
            # where the sound ends (the whole clip when it is shorter).
            last_start = max(0, total - window)
            yield from emit(last_start, buffer[last_start - offset :].copy())
    except MediaError:
        raise
    except Exception as error:
        raise MediaError(f"cannot decode audio ({one_line(error)})") from error
    finally:
        container.close()


def audio_pieces(
    path: str,
    *,
    rate: int,
    piece_seconds: float,
    report: AudioReport | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """`path`'s sound in consecutive pieces of `piece_seconds` (the last one
    shorter), mono float32 at `rate`, with each piece's start in seconds:
    memory holds one piece, whatever the recording's length. Same `report`,
    `progress` and errors as `audio_windows`."""
    import numpy as np

    report = report if report is not None else AudioReport()
    size = max(1, round(piece_seconds * rate))
    container = open_media(path, "audio file")
    try:
        report.captured_at = container_capture_time(container)
        stream = default_audio_stream(container)
        if stream is None:
            return
        declared = _declared_seconds(container, stream)
        pending: list[np.ndarray] = []
        held = 0
        start = 0
        for chunk in _decoded_chunks(container, stream, rate, report):
            pending.append(chunk)
            held += len(chunk)
            while held >= size:
                joined = np.concatenate(pending)
                yield start / rate, joined[:size]
                start += size
                rest = joined[size:]
                pending, held = [rest], len(rest)
                if progress is not None:
                    progress(start / rate, declared)
        report.duration = (start + held) / rate
        if held:
            yield start / rate, np.concatenate(pending)
        if start + held == 0 and report.problem:
            raise MediaError(f"no sound could be decoded ({report.problem})")
    except MediaError:
        raise
    except Exception as error:
        raise MediaError(f"cannot decode audio ({one_line(error)})") from error
    finally:
        container.close()
