"""Videos: choose the frames worth embedding, cheaply, with PyAV.

Embedding every frame would cost a CPU thousands of forward passes per
minute; embedding one frame per N seconds misses short shots and wastes work
on static ones. Instead:

1. Decode keyframes only (the decoder never touches the frames between them)
   and compare small thumbnails of consecutive candidates.
2. Where two keyframes more than a second apart differ, a shot may start, or
   hide entirely, between them: decode from the first keyframe and look at
   frames spaced at most a second apart. Any shot of a second or more then
   contains a candidate. Where keyframes are further apart than the maximum
   gap, look at frames spaced at most that gap apart.
3. Keep a candidate when it differs from the last kept frame (a cut, or a
   slow change that has added up), or when skipping it would leave more than
   `max_gap` seconds between kept frames.

A static tripod shot of five minutes is thus one frame per `max_gap`, and a
video cut every few seconds gets a frame per shot.

The one shot this can miss: one that starts and ends between two keyframes
that look alike (a cutaway and back within one group of pictures). Editing
software and phones place a keyframe at most cuts, which makes that rare.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediafind.errors import MediaError
from mediafind.media.capture import container_capture_time
from mediafind.media.container import open_media, reason

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

DEFAULT_MAX_GAP = 10.0
# A shot this long or longer always gets a candidate frame.
SHORTEST_SHOT = 1.0
# Difference of two thumbnails (see `_thumb`, `_difference`), on a 0-1 scale,
# above which two frames show different content. Measured on the reference
# clip of bench/video_speed.py: keyframes 2 s apart within a panning shot
# differ by at most 0.042, keyframes across a cut by at least 0.155.
CHANGE_THRESHOLD = 0.08
# Keyframes closer than this to the previous candidate add nothing (all-intra
# codecs such as MJPEG flag every frame as a keyframe).
MIN_CANDIDATE_SPACING = 0.25
_THUMB = 24
_SHIFT = 2


@dataclass
class KeptFrame:
    time: float  # seconds from the start of the video
    image: Image  # upright RGB, short side about `min_side`


@dataclass
class SampledVideo:
    frames: list[KeptFrame]
    duration: float
    width: int
    height: int
    problem: str | None = None  # set when only part of the file could be decoded
    keyframes_decoded: int = 0
    probes_decoded: int = 0
    captured_at: float | None = None


@dataclass
class _Candidate:
    time: float
    thumb: np.ndarray
    frame: Any  # av.VideoFrame, converted to an image only when kept


def _thumb(frame: Any) -> np.ndarray:
    """A 24x24 RGB summary of the frame, softened by a 3x3 box blur so that a
    shift of a fraction of a thumbnail pixel (a pan) barely changes it."""
    import numpy as np

    small = frame.reformat(width=_THUMB, height=_THUMB, format="rgb24", interpolation="AREA")
    pixels = small.to_ndarray().astype(np.float32) / 255.0
    padded = np.pad(pixels, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blurred = np.zeros_like(pixels)
    for y in range(3):
        for x in range(3):
            blurred += padded[y : y + _THUMB, x : x + _THUMB]
    return blurred / 9.0


def _match(
    a: np.ndarray, b: np.ndarray, around: tuple[int, int] = (0, 0)
) -> tuple[float, tuple[int, int]]:
    """How different two thumbnails look (0 to 1) once `b` is moved back by the
    best shift within `_SHIFT` thumbnail pixels of `around`, and that shift.

    A pan or a shaky hand shifts the picture: matched this way, the same shot
    stays the same; a cut or a dissolve does not.
    """
    import numpy as np

    size = a.shape[0]
    best, best_shift = math.inf, around
    for dy in range(around[1] - _SHIFT, around[1] + _SHIFT + 1):
        for dx in range(around[0] - _SHIFT, around[0] + _SHIFT + 1):
            if abs(dx) > size // 2 or abs(dy) > size // 2:
                continue  # less than half of the picture would overlap
            ya, yb = max(0, dy), max(0, -dy)
            xa, xb = max(0, dx), max(0, -dx)
            h, w = size - abs(dy), size - abs(dx)
            diff = float(np.mean(np.abs(a[ya : ya + h, xa : xa + w] - b[yb : yb + h, xb : xb + w])))
            if diff < best:
                best, best_shift = diff, (dx, dy)
    return best, best_shift


def _upright_image(frame: Any, min_side: int) -> Image:
    width, height = frame.width, frame.height
    scale = min_side / min(width, height)
    if scale < 1.0:
        width = max(1, round(width * scale))
        height = max(1, round(height * scale))
    image = frame.to_image(width=width, height=height, interpolation="AREA")
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation % 360:
        # FFmpeg's display matrix angle is counter-clockwise, as is PIL's.
        image = image.rotate(rotation, expand=True)
    return image


def default_video_stream(container: Any) -> Any:
    """The stream a player shows: flagged default, else the first, never cover art."""
    import av

    streams = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not streams:
        raise MediaError("no video stream")
    for stream in streams:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    return streams[0]


class _Timeline:
    """Stream time in seconds, counted from the stream's first timestamp."""

    def __init__(self, stream: Any, container: Any) -> None:
        base = stream.time_base
        self.time_base = base
        self.origin = float(stream.start_time * base) if stream.start_time is not None else 0.0
        if stream.duration is not None:
            self.duration = float(stream.duration * base)
        elif container.duration is not None:
            self.duration = container.duration / 1_000_000
        else:
            self.duration = 0.0

    def of(self, frame: Any) -> float:
        # From pts and the stream's time base: frames flushed out of a
        # threaded decoder carry a pts but no time base of their own.
        if frame.pts is None:
            return 0.0
        return max(0.0, float(frame.pts * self.time_base) - self.origin)


class _Prober:
    """Decodes every frame from a keyframe on, to look between keyframes."""

    def __init__(self, container: Any, timeline: _Timeline) -> None:
        self.container = container
        self.stream = default_video_stream(container)
        self.stream.thread_type = "AUTO"
        self.timeline = timeline
        self.decoded = 0

    @classmethod
    def open(cls, path: str, timeline: _Timeline) -> _Prober:
        """A second handle on the file, so the keyframe pass keeps its place."""
        return cls(open_media(path, "video"), timeline)

    def frames_at(self, start: float, targets: list[float]) -> list[_Candidate]:
        """The first frame at or after each target time, decoding from `start`'s keyframe."""
        import av

        found: list[_Candidate] = []
        pending = list(targets)
        seek_to = int((start + self.timeline.origin) / self.stream.time_base)
        try:
            self.container.seek(seek_to, stream=self.stream, backward=True, any_frame=False)
            for frame in self.container.decode(self.stream):
                self.decoded += 1
                time = self.timeline.of(frame)
                while pending and time >= pending[0] - 1e-3:
                    pending.pop(0)
                    if not found or found[-1].time != time:
                        found.append(_Candidate(time, _thumb(frame), frame))
                if not pending:
                    break
        except (av.error.FFmpegError, ValueError):
            pass  # a damaged stretch: the keyframe pass reports what matters
        return found

    def close(self) -> None:
        self.container.close()


def _keyframes(
    container: Any, stream: Any, timeline: _Timeline, sampled: SampledVideo
) -> Iterator[_Candidate]:
    """Decode keyframe packets only; other packets are never handed to the decoder."""
    import av

    codec = stream.codec_context
    codec.skip_frame = "NONKEY"
    last = -math.inf
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if not packet.is_keyframe:
                continue
            if packet.pts is not None:
                time = float(packet.pts * packet.time_base) - timeline.origin
                if time - last < MIN_CANDIDATE_SPACING:
                    continue
            try:
                frames = codec.decode(packet)
            except av.error.InvalidDataError:
                continue  # one damaged keyframe: the next one will do
            for frame in frames:
                sampled.keyframes_decoded += 1
                last = timeline.of(frame)
                yield _Candidate(last, _thumb(frame), frame)
        for frame in codec.decode(None):
            sampled.keyframes_decoded += 1
            yield _Candidate(timeline.of(frame), _thumb(frame), frame)
    except av.error.FFmpegError as error:
        sampled.problem = reason(error)


def _probe_targets(gap_start: float, gap_end: float, changed: bool, max_gap: float) -> list[float]:
    """Times to look at strictly between two candidates."""
    span = gap_end - gap_start
    step = SHORTEST_SHOT if changed else max_gap
    if span <= step:
        return []
    pieces = math.ceil(span / step)
    return [gap_start + span * i / pieces for i in range(1, pieces)]


def _candidates(
    path: str,
    container: Any,
    stream: Any,
    timeline: _Timeline,
    max_gap: float,
    sampled: SampledVideo,
) -> Iterator[_Candidate]:
    """Keyframes, with probe frames inserted where a gap could hide a shot."""
    prober: _Prober | None = None
    previous: _Candidate | None = None
    try:
        for keyframe in _keyframes(container, stream, timeline, sampled):
            if previous is not None:
                changed = _match(previous.thumb, keyframe.thumb)[0] > CHANGE_THRESHOLD
                targets = _probe_targets(previous.time, keyframe.time, changed, max_gap)
                if targets:
                    prober = prober or _Prober.open(path, timeline)
                    yield from prober.frames_at(previous.time, targets)
            yield keyframe
            previous = keyframe
        if previous is not None and timeline.duration > previous.time:
            # After the last keyframe nothing says whether the picture changes.
            targets = _probe_targets(previous.time, timeline.duration, True, max_gap)
            if targets:
                prober = prober or _Prober.open(path, timeline)
                yield from prober.frames_at(previous.time, targets)
    finally:
        if prober is not None:
            sampled.probes_decoded = prober.decoded
            prober.close()


def sample_frames(path: str, *, min_side: int, max_gap: float = DEFAULT_MAX_GAP) -> SampledVideo:
    """The frames of `path` worth embedding, in time order, upright.

    Raises MediaError when nothing can be decoded; when only part of the file
    decodes, returns what did with `problem` set.
    """
    if max_gap <= 0:
        raise ValueError("max_gap must be positive")
    container = open_media(path, "video")
    try:
        stream = default_video_stream(container)
        stream.thread_type = "AUTO"
        timeline = _Timeline(stream, container)
        sampled = SampledVideo([], timeline.duration, stream.width, stream.height)
        sampled.captured_at = container_capture_time(container)
        selector = _Selector(max_gap, min_side)
        for candidate in _candidates(path, container, stream, timeline, max_gap, sampled):
            selector.add(candidate)
        selector.finish(timeline.duration)
    except MediaError:
        raise
    except Exception as error:
        raise MediaError(f"cannot decode video ({reason(error)})") from error
    finally:
        container.close()

    if not selector.kept:
        raise MediaError(f"no frame could be decoded ({sampled.problem or 'empty video'})")
    sampled.frames = selector.kept
    if selector.rotation % 180 == 90:
        sampled.width, sampled.height = sampled.height, sampled.width
    reached = selector.last_time
    if sampled.duration <= 0:
        sampled.duration = reached
    elif sampled.problem is None and reached < sampled.duration - 2 * SHORTEST_SHOT - 2.0:
        # Decoding stopped well before the duration the container declares.
        sampled.problem = "the file ends early"
    if sampled.problem:
        sampled.problem = (
            f"{sampled.problem}; indexed up to {_clock(reached)} of {_clock(sampled.duration)}"
        )
    return sampled


class _Selector:
    """Step 3 of the module docstring, one candidate at a time, in time order.

    Within a shot the camera may pan far over a few seconds; the selector
    follows the picture's drift from one candidate to the next, so a candidate
    is compared with the last kept frame where that content now sits, and a
    slow pan is one shot while a slow dissolve is not.
    """

    def __init__(self, max_gap: float, min_side: int) -> None:
        self.max_gap = max_gap
        self.min_side = min_side
        self.kept: list[KeptFrame] = []
        self.last_kept: _Candidate | None = None
        self.pending: _Candidate | None = None
        self.pending_novel = True
        # Shift of the picture since the last kept frame; None once lost.
        self.drift: tuple[int, int] | None = (0, 0)
        self.last_time = 0.0
        self.rotation = 0

    def _keep(self, candidate: _Candidate) -> None:
        if not self.kept:
            self.rotation = int(getattr(candidate.frame, "rotation", 0) or 0)
        self.kept.append(KeptFrame(candidate.time, _upright_image(candidate.frame, self.min_side)))
        self.last_kept = candidate

    def _novel(self, candidate: _Candidate) -> bool:
        if self.last_kept is None:
            return True
        around = self.drift if self.drift is not None else (0, 0)
        return _match(self.last_kept.thumb, candidate.thumb, around)[0] > CHANGE_THRESHOLD

    def add(self, candidate: _Candidate) -> None:
        self.last_time = max(self.last_time, candidate.time)
        pending = self.pending
        if pending is None:
            self.pending, self.pending_novel = candidate, True
            return
        if candidate.time <= pending.time:
            return  # a probe landed on a frame already seen
        step, shift = _match(pending.thumb, candidate.thumb)
        same_shot = step <= CHANGE_THRESHOLD
        last = self.last_kept
        if self.pending_novel or last is None or candidate.time - last.time > self.max_gap:
            self._keep(pending)
            self.drift = shift if same_shot else None
        elif self.drift is not None and same_shot:
            self.drift = (self.drift[0] + shift[0], self.drift[1] + shift[1])
        else:
            self.drift = None
        self.pending, self.pending_novel = candidate, self._novel(candidate)

    def finish(self, duration: float) -> None:
        pending = self.pending
        if pending is None:
            return
        last = self.last_kept
        if self.pending_novel or last is None or duration - last.time > self.max_gap:
            self._keep(pending)
        self.pending = None


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def frame_at(path: str, time: float, *, min_side: int) -> Image:
    """The upright frame shown at `time` seconds (for query by example)."""
    container = open_media(path, "video")
    try:
        stream = default_video_stream(container)
        timeline = _Timeline(stream, container)
        found = _Prober(container, timeline).frames_at(time, [time])
        if not found:
            raise MediaError(
                f"no frame at {_clock(time)} (the video is {_clock(timeline.duration)} long)"
            )
        return _upright_image(found[0].frame, min_side)
    finally:
        container.close()
