"""Videos: choose the frames worth embedding, cheaply, with PyAV.

Embedding every frame would cost a CPU thousands of forward passes per
minute; embedding one frame per N seconds misses short shots and wastes work
on static ones. Instead:

1. Decode keyframes only (the decoder never touches the frames between them)
   and compare small thumbnails of consecutive candidates. The other packets
   are read but not decoded: their sizes show where the encoder met a picture
   it could not predict from the frames before it (a cut), and their
   timestamps where the stream really ends, whatever its header claims.
2. Where two keyframes more than a second apart differ, or a cut shows between
   them, a shot may start, or hide entirely, between them: decode from the
   first keyframe and look at frames spaced at most a second apart. Any shot
   of a second or more then contains a candidate. Where keyframes are further
   apart than the maximum gap, look at frames spaced at most that gap apart.
3. Keep a candidate when it differs from the last kept frame (a cut, or a
   slow change that has added up), or when skipping it would leave more than
   `max_gap` seconds between kept frames.

A static tripod shot of five minutes is thus one frame per `max_gap`, and a
video cut every few seconds gets a frame per shot.

Keyframes alone would miss a cutaway and back within one group of pictures
(two keyframes that look alike around a whole other shot, as long as eight
seconds with the common 250-frame groups); the sizes of step 1 catch it. The
one shot this can still miss: a cutaway whose cuts both cost the encoder
little, because it predicted the pictures after them from frames kept since
before the cutaway.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mediafind.errors import MediaError, one_line
from mediafind.media.capture import container_capture_time
from mediafind.media.container import open_media
from mediafind.timecodes import format_time

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

DEFAULT_MAX_GAP = 10.0
# A shot this long or longer always gets a candidate frame.
SHORTEST_SHOT = 1.0
# Difference of two thumbnails (see `_thumb`, `_match`), on a 0-1 scale,
# above which two frames show different content. Measured on the reference
# clip of bench/video_speed.py: keyframes 2 s apart within a panning shot
# differ by at most 0.042, keyframes across a cut by at least 0.155.
CHANGE_THRESHOLD = 0.08
# Keyframes closer than this to the previous candidate add nothing (all-intra
# codecs such as MJPEG flag every frame as a keyframe).
MIN_CANDIDATE_SPACING = 0.25
# An inter frame at least this fraction of the size of the keyframes around it
# was coded mostly without reference to the frames before it: the picture
# changed there. Measured on clips made with x264, x265 and libvpx-vp9: the
# frame after a cut costs 0.87 to 1.1 of a keyframe; a pan, a shaky hand and
# sensor noise at most 0.32.
CUT_SIZE = 0.5
# How much less than its header declares a file may turn out to hold before it
# counts as ending early: the last frame looked at can lie a probe step before
# the end, and a container's duration also covers sound that runs on after the
# picture.
ENDS_EARLY_SLACK = 2 * SHORTEST_SHOT + 2.0
# A seek that lands after the keyframe it aimed at (see `_Prober._packets_from`)
# is tried again, aiming at least this many seconds further back, then twice as
# far each time, at most this many times in all: enough to step back over a
# group of pictures of a minute and a half.
SEEK_STEP = 0.1
SEEK_TRIES = 12
_THUMB = 24
_SHIFT = 2


@dataclass
class KeptFrame:
    time: float  # seconds from the start of the video
    image: Image  # upright RGB, short side about `min_side`


@dataclass
class SampledVideo:
    frames: list[KeptFrame]
    duration: float  # as declared, unless the stream holds far less
    width: int
    height: int
    problem: str | None = None  # set when only part of the file could be decoded
    keyframes_decoded: int = 0
    probes_decoded: int = 0
    captured_at: float | None = None
    # When each kept frame was (also when they were handed out, not held).
    times: list[float] = field(default_factory=list)


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
        # A float for the packet loop: exact fractions cost microseconds a packet.
        self.tick = float(base)
        self.origin = float(stream.start_time * base) if stream.start_time is not None else 0.0
        # What the header declares. Only reported and compared: a header can
        # claim anything (a 6 KB file declared 10^15 ms), so no amount of work
        # is ever sized by it.
        if stream.duration is not None:
            self.declared = float(stream.duration * base)
        elif container.duration is not None:
            self.declared = container.duration / 1_000_000
        else:
            self.declared = 0.0

    def of(self, frame: Any) -> float:
        # From pts and the stream's time base: frames flushed out of a
        # threaded decoder carry a pts but no time base of their own.
        if frame.pts is None:
            return 0.0
        return max(0.0, float(frame.pts * self.time_base) - self.origin)

    def of_packet(self, packet: Any) -> float | None:
        """When the packet's frame is shown, or else decoded; None if it does not say."""
        ticks = packet.pts if packet.pts is not None else packet.dts
        return None if ticks is None else ticks * self.tick - self.origin

    def lead(self, packet: Any) -> float:
        """How long before it is shown the packet's frame is decoded (0 if unknown)."""
        if packet.pts is None or packet.dts is None:
            return 0.0
        return (packet.pts - packet.dts) * self.tick

    def ticks(self, seconds: float) -> int:
        # Rounded: a keyframe's time turned back into ticks can land a hair
        # below its timestamp, and a seek there decodes the whole group before.
        return round((seconds + self.origin) / self.time_base)


class _Prober:
    """Decodes every frame from a keyframe on, to look between keyframes."""

    def __init__(self, container: Any, timeline: _Timeline) -> None:
        self.container = container
        self.stream = default_video_stream(container)
        self.stream.thread_type = "AUTO"
        self.timeline = timeline
        self.decoded = 0
        self.reached = 0.0  # time of the last frame decoded
        # How long before a keyframe's time a seek must aim to land on it (see
        # `_packets_from`): 0 where the container seeks by presentation time.
        self.seek_back = 0.0

    @classmethod
    def open(cls, path: str, timeline: _Timeline) -> _Prober:
        """A second handle on the file, so the keyframe pass keeps its place."""
        return cls(open_media(path, "video"), timeline)

    def _decode_from(self, start: float) -> Iterator[tuple[float, Any]]:
        """Frames and their times, from the keyframe at or before `start` on."""
        import av

        try:
            for packet in self._packets_from(start):
                for frame in packet.decode():
                    self.decoded += 1
                    self.reached = self.timeline.of(frame)
                    yield self.reached, frame
        except (av.error.FFmpegError, ValueError, OverflowError):
            return  # a damaged stretch (the keyframe pass reports what matters), or no such time

    def _packets_from(self, start: float) -> Iterator[Any]:
        """The packets from the last keyframe at or before `start` on.

        Where a container has an index (MP4, Matroska), FFmpeg seeks by
        presentation time and lands on that keyframe. MPEG transport and
        program streams (.mts, .m2ts, .ts, .mpg) have none: FFmpeg bisects the
        file by decoding time and stops at whatever packet lies there, often
        not a keyframe. The decoder would drop the pictures up to the next
        keyframe, and a keyframe's own time lands just after it whenever
        frames are reordered (a keyframe is decoded a few frames before it is
        shown): probing would start a whole group of pictures late.

        So the packets before the first keyframe reached are skipped, not
        decoded, and when that keyframe comes after `start`, the seek is tried
        again, aiming earlier by as long as the stream's keyframes are decoded
        before they are shown (then remembered: the next seek lands at once),
        and twice as far back each time it lands late again.
        """
        back = self.seek_back
        for _ in range(SEEK_TRIES):
            self.container.seek(
                self.timeline.ticks(start - back),
                stream=self.stream,
                backward=True,
                any_frame=False,
            )
            packets = self.container.demux(self.stream)
            keyframe = next((packet for packet in packets if packet.is_keyframe), None)
            time = math.inf if keyframe is None else self.timeline.of_packet(keyframe)
            if time is None or time <= start + 1e-3:
                break
            if keyframe is not None:
                self.seek_back = max(self.seek_back, self.timeline.lead(keyframe))
            back = max(2 * back, self.seek_back, SEEK_STEP)
        # Out of tries, from where the last seek landed: late, but better than nothing.
        if keyframe is not None:
            yield keyframe
            yield from packets

    def frames_at(self, start: float, spacing: float, end: float) -> list[_Candidate]:
        """The first frame at or after each of `start + spacing`, `start + 2 *
        spacing`, ... short of `end`, decoding from `start`'s keyframe.

        Those times are counted, never listed: the work stays bounded by the
        frames the stream holds, however long a damaged timestamp makes the
        gap look.
        """
        found: list[_Candidate] = []
        target = 1
        for time, frame in self._decode_from(start):
            if time < start + target * spacing - 1e-3:
                continue
            found.append(_Candidate(time, _thumb(frame), frame))
            # The next time after this frame (one frame can stand for several).
            target = math.floor((time + 1e-3 - start) / spacing) + 1
            if start + target * spacing > end - spacing / 2:
                break
        return found

    def first_at(self, time: float) -> Any | None:
        """The frame shown at `time`: the first at or after it."""
        return next((frame for at, frame in self._decode_from(time) if at >= time - 1e-3), None)

    def close(self) -> None:
        self.container.close()


class _KeyframePass:
    """Step 1 of the module docstring: reads every packet, decodes keyframe
    packets only, and keeps what the other packets tell on the way."""

    def __init__(
        self, container: Any, stream: Any, timeline: _Timeline, sampled: SampledVideo
    ) -> None:
        self.container = container
        self.stream = stream
        self.timeline = timeline
        self.sampled = sampled
        # Where the last packet ends: how long the stream really is.
        self.end = 0.0
        # Times of inter frames as large as a cut makes them (see CUT_SIZE).
        self._cuts: deque[float] = deque()
        # Since the last keyframe packet, in decoding order: its size, and the
        # size and time of the largest packet.
        self._key_size = 0
        self._largest: tuple[int, float | None] = (0, None)

    def __iter__(self) -> Iterator[_Candidate]:
        """Decoded keyframes; other packets are never handed to the decoder."""
        import av

        codec = self.stream.codec_context
        codec.skip_frame = "NONKEY"
        last = -math.inf
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0:
                    continue
                time = self._read(packet)
                if not packet.is_keyframe:
                    continue
                if time is not None and time - last < MIN_CANDIDATE_SPACING:
                    continue
                for frame in self._decode_alone(codec, packet):
                    self.sampled.keyframes_decoded += 1
                    last = self.timeline.of(frame)
                    yield _Candidate(last, _thumb(frame), frame)
        except av.error.FFmpegError as error:
            self.sampled.problem = one_line(error)

    @staticmethod
    def _decode_alone(codec: Any, packet: Any) -> list[Any]:
        """The keyframe's picture, decoded as if playback started there.

        Fed one keyframe after another, a decoder takes them for consecutive
        pictures. An HEVC decoder places an open-GOP keyframe (a CRA picture)
        in presentation order by counting on from the picture before it,
        modulo the stream's order count (2^8 pictures by x265's default).
        Keyframes more than half that apart (128 pictures, 5.3 s at 24 fps)
        are misplaced and come out late or early, and the selector drops
        what arrives out of time order; keyframes a whole multiple of it
        apart look like one picture twice, and the decoder throws them away.
        Drained and reset after each keyframe, as after a seek, the decoder
        hands each keyframe out at once: in the order they are stored, which
        for keyframes is presentation order, and holding no picture back.
        """
        import av

        try:
            return codec.decode(packet) + codec.decode(None)
        except av.error.InvalidDataError:
            return []  # one damaged keyframe: the next one will do
        finally:
            codec.flush_buffers()

    def _read(self, packet: Any) -> float | None:
        """Notes where the packet ends and whether it looks like a cut; returns its time."""
        time = self.timeline.of_packet(packet)
        if time is not None:
            self.end = max(self.end, time + (packet.duration or 0) * self.timeline.tick)
        if packet.is_keyframe:
            # The keyframes on both sides set the scale: the first one of a
            # stream also carries the encoder's settings.
            size, at = self._largest
            if at is not None and size >= CUT_SIZE * min(self._key_size, packet.size):
                self._cuts.append(at)
            self._key_size, self._largest = packet.size, (0, None)
        elif packet.size > self._largest[0]:
            self._largest = (packet.size, time)
        return time

    def cut_between(self, start: float, end: float) -> bool:
        """Whether a cut showed between two keyframes (asked in time order)."""
        found = False
        while self._cuts and self._cuts[0] < end:
            found = self._cuts.popleft() > start or found
        return found


def _probe_spacing(span: float, changed: bool, max_gap: float) -> float | None:
    """How far apart to look at frames between two candidates `span` seconds
    apart; None where there is no need."""
    step = SHORTEST_SHOT if changed else max_gap
    # Less a hair: float error in a span of exactly two steps must not make three.
    pieces = math.ceil(span / step - 1e-6)
    return span / pieces if pieces > 1 else None


def _candidates(
    path: str, keyframes: _KeyframePass, max_gap: float, sampled: SampledVideo
) -> Iterator[_Candidate]:
    """Keyframes, with probe frames inserted where a gap could hide a shot."""
    prober: _Prober | None = None
    previous: _Candidate | None = None
    try:
        for keyframe in keyframes:
            if previous is not None:
                changed = (
                    keyframes.cut_between(previous.time, keyframe.time)
                    or _match(previous.thumb, keyframe.thumb)[0] > CHANGE_THRESHOLD
                )
                spacing = _probe_spacing(keyframe.time - previous.time, changed, max_gap)
                if spacing:
                    prober = prober or _Prober.open(path, keyframes.timeline)
                    yield from prober.frames_at(previous.time, spacing, keyframe.time)
            yield keyframe
            previous = keyframe
        if previous is not None:
            # After the last keyframe nothing says whether the picture changes.
            # Look as far as the packets go, not as far as the header says.
            spacing = _probe_spacing(keyframes.end - previous.time, True, max_gap)
            if spacing:
                prober = prober or _Prober.open(path, keyframes.timeline)
                yield from prober.frames_at(previous.time, spacing, keyframes.end)
    finally:
        if prober is not None:
            sampled.probes_decoded = prober.decoded
            prober.close()


def sample_frames(
    path: str,
    *,
    min_side: int,
    max_gap: float = DEFAULT_MAX_GAP,
    progress: Callable[[float, float], None] | None = None,
    on_frame: Callable[[KeptFrame], None] | None = None,
) -> SampledVideo:
    """The frames of `path` worth embedding, in time order, upright.

    `progress` (optional) hears the time of each candidate frame looked at and
    the duration the file declares (0 when it declares none: shown, never
    trusted). `on_frame` (optional) is handed each kept frame as it is kept,
    and then the frames are not held: `frames` comes back empty and `times`
    says when they were (memory stays one frame, however long the video).
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
        sampled = SampledVideo([], 0.0, stream.width, stream.height)
        sampled.captured_at = container_capture_time(container)
        keyframes = _KeyframePass(container, stream, timeline, sampled)
        selector = _Selector(max_gap, min_side, on_frame)
        for candidate in _candidates(path, keyframes, max_gap, sampled):
            selector.add(candidate)
            if progress is not None:
                progress(candidate.time, timeline.declared)
        held = max(keyframes.end, selector.last_time)
        # The header is believed only as far as the stream bears it out.
        declared = timeline.declared
        sampled.duration = declared if 0 < declared <= held + ENDS_EARLY_SLACK else held
        selector.finish(sampled.duration)
    except MediaError:
        raise
    except Exception as error:
        raise MediaError(f"cannot decode video ({one_line(error)})") from error
    finally:
        container.close()

    if not selector.times:
        raise MediaError(f"no frame could be decoded ({sampled.problem or 'empty video'})")
    sampled.frames = selector.kept
    sampled.times = selector.times
    if selector.rotation % 180 == 90:
        sampled.width, sampled.height = sampled.height, sampled.width
    reached = selector.last_time
    if sampled.problem is None and reached < declared - ENDS_EARLY_SLACK:
        # Decoding stopped well before the duration the container declares.
        sampled.problem = "the file ends early"
    if sampled.problem:
        of = declared if declared > 0 else sampled.duration
        sampled.problem = (
            f"{sampled.problem}; indexed up to {format_time(reached)} of {format_time(of)}"
        )
    return sampled


class _Selector:
    """Step 3 of the module docstring, one candidate at a time, in time order.

    Within a shot the camera may pan far over a few seconds; the selector
    follows the picture's drift from one candidate to the next, so a candidate
    is compared with the last kept frame where that content now sits, and a
    slow pan is one shot while a slow dissolve is not.
    """

    def __init__(
        self, max_gap: float, min_side: int, on_frame: Callable[[KeptFrame], None] | None = None
    ) -> None:
        self.max_gap = max_gap
        self.min_side = min_side
        self.on_frame = on_frame
        self.kept: list[KeptFrame] = []
        self.times: list[float] = []
        self.last_kept: _Candidate | None = None
        self.pending: _Candidate | None = None
        self.pending_novel = True
        # Shift of the picture since the last kept frame; None once lost.
        self.drift: tuple[int, int] | None = (0, 0)
        self.last_time = 0.0
        self.rotation = 0

    def _keep(self, candidate: _Candidate) -> None:
        if not self.times:
            self.rotation = int(getattr(candidate.frame, "rotation", 0) or 0)
        frame = KeptFrame(candidate.time, _upright_image(candidate.frame, self.min_side))
        self.times.append(candidate.time)
        if self.on_frame is not None:
            self.on_frame(frame)
        else:
            self.kept.append(frame)
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


def frames_between(
    path: str, stretches: list[tuple[float, float]], *, min_side: int
) -> Iterator[tuple[int, KeptFrame]]:
    """Frames at most `SHORTEST_SHOT` apart inside each `(start, end)` stretch
    (after `start`, short of `end`), upright, with the stretch's number.

    For what the picture comparison cannot see: new words on an unchanged
    picture (the next slide, a screen recording). Stretches in time order.
    """
    container = open_media(path, "video")
    try:
        stream = default_video_stream(container)
        prober = _Prober(container, _Timeline(stream, container))
        for number, (start, end) in enumerate(stretches):
            spacing = _probe_spacing(end - start, True, SHORTEST_SHOT)
            if spacing is None:
                continue
            for found in prober.frames_at(start, spacing, end):
                yield number, KeptFrame(found.time, _upright_image(found.frame, min_side))
    finally:
        container.close()


def frame_at(path: str, time: float, *, min_side: int) -> Image:
    """The upright frame shown at `time` seconds (for query by example)."""
    container = open_media(path, "video")
    try:
        stream = default_video_stream(container)
        prober = _Prober(container, _Timeline(stream, container))
        frame = prober.first_at(time)
        if frame is None:
            # What decoded, not what the header declares (which can be anything).
            seen = "nothing decodes there"
            if prober.decoded:
                seen = f"the last frame is at {format_time(prober.reached)}"
            raise MediaError(f"no frame at {format_time(time)} ({seen})")
        return _upright_image(frame, min_side)
    finally:
        container.close()
