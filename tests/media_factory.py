"""Videos made by the tests with PyAV, with known shots, codecs and quirks."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Shot:
    seconds: float
    color: tuple[int, int, int]
    stripe: tuple[int, int, int] = (0, 0, 0)
    # Pixels per second the picture drifts sideways: gentle camera motion.
    pan: float = 0.0


def shot_picture(shot: Shot, width: int, height: int, offset: int = 0) -> np.ndarray:
    """A shot's picture: its colour with a stripe across the top third, and a
    band of irregular bars at the bottom so that panning visibly moves something
    (irregular, so that no shift of the band looks like another)."""
    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[:] = shot.color
    picture[: height // 3] = shot.stripe
    rng = np.random.default_rng(sum(shot.color))
    bars = np.repeat(rng.integers(0, 2, size=1024), rng.integers(2, 9, size=1024))
    band = bars[offset : offset + width] if offset + width <= len(bars) else bars[:width]
    picture[height * 3 // 4 :, band == 1] = (np.array(shot.color) // 2).astype(np.uint8)
    return picture


def make_video(
    path: Path,
    shots: Sequence[Shot],
    *,
    fps: int = 24,
    size: tuple[int, int] = (160, 96),
    codec: str = "libx264",
    gop_seconds: float = 1.0,
    fixed_gop: bool = True,
    start_seconds: float = 0.0,
) -> Path:
    """Encode `shots` back to back. With `fixed_gop`, keyframes fall every
    `gop_seconds` whatever the picture does (no keyframe at cuts)."""
    from fractions import Fraction

    import av

    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        gop = max(1, round(gop_seconds * fps))
        stream.codec_context.gop_size = gop
        if codec == "libx264" and fixed_gop:
            stream.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        elif codec == "libx265" and fixed_gop:
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0:log-level=none"
            stream.options = {"x265-params": params}
        stream.codec_context.time_base = Fraction(1, fps)
        index = 0
        offset = round(start_seconds * fps)
        for shot in shots:
            for frame_number in range(round(shot.seconds * fps)):
                drift = round(shot.pan * frame_number / fps)
                frame = av.VideoFrame.from_ndarray(
                    shot_picture(shot, width, height, drift), format="rgb24"
                )
                frame.pts = index + offset
                frame.time_base = Fraction(1, fps)
                index += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def set_mp4_rotation(path: Path, degrees_clockwise: int) -> None:
    """Write a display matrix into an MP4's track header, as phones do."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    times = 8 + 8 + 4 + 4 + 8 if version == 1 else 4 + 4 + 4 + 4 + 4
    matrix_at = at + 4 + 4 + times + 8 + 2 + 2 + 2 + 2
    one, minus = 0x10000, -0x10000
    matrices = {
        90: (0, one, 0, minus, 0, 0, 0, 0, 0x40000000),
        180: (minus, 0, 0, 0, minus, 0, 0, 0, 0x40000000),
        270: (0, minus, 0, one, 0, 0, 0, 0, 0x40000000),
    }
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", *matrices[degrees_clockwise])
    path.write_bytes(bytes(data))


def set_mkv_duration(path: Path, milliseconds: float) -> None:
    """Overwrite the duration a Matroska file declares in its Segment Info.

    FFmpeg's muxer writes it as the first Duration element (ID 0x4489) with an
    8-byte float, in milliseconds at the default timestamp scale.
    """
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")
    if at < 0:
        raise ValueError(f"{path}: no 8-byte Duration element")
    data[at + 3 : at + 11] = struct.pack(">d", milliseconds)
    path.write_bytes(bytes(data))


def sound(kind: str, seconds: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    """Mono float32 samples: a 'tone', 'noise', 'chirp' or 'silence'."""
    count = round(seconds * rate)
    t = np.arange(count) / rate
    if kind == "tone":
        return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    if kind == "chirp":
        return (0.5 * np.sin(2 * np.pi * (200 + 400 * t / max(seconds, 1e-9)) * t)).astype(
            np.float32
        )
    if kind == "noise":
        rng = np.random.default_rng(round(frequency))
        return (0.3 * rng.standard_normal(count)).astype(np.float32)
    return np.zeros(count, dtype=np.float32)


def pieces_samples(
    pieces: Sequence[tuple[str, float] | tuple[str, float, float]], rate: int
) -> np.ndarray:
    """The samples of (kind, seconds[, frequency]) pieces back to back."""
    return np.concatenate([sound(p[0], p[1], rate, *p[2:]) for p in pieces])  # type: ignore[arg-type]


def make_audio(
    path: Path,
    pieces: Sequence[tuple[str, float] | tuple[str, float, float]],
    *,
    rate: int = 22050,
    codec: str = "pcm_s16le",
    layout: str = "stereo",
) -> Path:
    """Encode `pieces` (kind, seconds[, frequency]) back to back with PyAV."""
    return write_audio(path, pieces_samples(pieces, rate), rate=rate, codec=codec, layout=layout)


def write_audio(
    path: Path, samples: np.ndarray, *, rate: int, codec: str = "pcm_s16le", layout: str = "mono"
) -> Path:
    import av

    channels = 2 if layout == "stereo" else 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        frame_size = stream.codec_context.frame_size or 1024
        planar = np.ascontiguousarray(np.tile(samples, (channels, 1)))
        pts = 0
        for at in range(0, len(samples), frame_size):
            chunk = np.ascontiguousarray(planar[:, at : at + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts = rate, pts
            pts += chunk.shape[1]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass(frozen=True)
class SubtitleTrack:
    """A subtitle stream to mux: a file ffmpeg reads (.srt, .vtt, or a
    container whose first stream is taken), the codec to store it in ("copy"
    keeps it as it is), and its language tag."""

    path: Path
    codec: str
    language: str | None = None


def mux_subtitles(
    video: Path, out: Path, tracks: Sequence[SubtitleTrack], *, offset: float = 0.0
) -> Path:
    """`video`'s picture with `tracks` as subtitle streams, muxed by the ffmpeg
    command line. `offset` moves every timestamp of the file later: a file
    that does not start at 0, as cut from a broadcast or a camera's stream."""
    import subprocess

    command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(video)]
    for track in tracks:
        command += ["-i", str(track.path)]
    command += ["-map", "0:v", "-c:v", "copy"]
    for number, track in enumerate(tracks):
        command += ["-map", f"{number + 1}:0", f"-c:s:{number}", track.codec]
        if track.language:
            command += [f"-metadata:s:s:{number}", f"language={track.language}"]
    if offset:
        command += ["-output_ts_offset", str(offset)]
    subprocess.run([*command, str(out)], check=True, capture_output=True)
    return out


def make_bitmap_subtitles(path: Path) -> Path:
    """A Matroska file holding one DVD (bitmap) subtitle stream of one packet.
    Its bytes are no real picture: readers must skip the stream unread."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("dvd_subtitle")
        packet = av.Packet(bytes(16))
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = 500
        packet.duration = 1000
        container.mux(packet)
    return path
