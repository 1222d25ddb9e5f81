"""Videos: which frames are kept, their times, and the files as phones write them."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import subprocess_env
from media_factory import Shot, make_video, set_mkv_duration, set_mp4_rotation, shot_picture

from mediafind.errors import MediaError
from mediafind.media.video import frame_at, sample_frames

RED = Shot(3.0, (220, 30, 30), (250, 250, 250))
GREEN = Shot(1.2, (30, 200, 60), (10, 10, 10))
BLUE = Shot(4.0, (30, 60, 220), (250, 220, 40), pan=6)
GREY = Shot(2.0, (128, 128, 128), (40, 40, 40))
SHOTS = [RED, GREEN, BLUE, GREY]


def spans(shots: list[Shot], start: float = 0.0) -> list[tuple[float, float, Shot]]:
    out, at = [], start
    for shot in shots:
        out.append((at, at + shot.seconds, shot))
        at += shot.seconds
    return out


def center_color(image) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Colour of the picture's middle band, below the stripe and above the checks."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    height = pixels.shape[0]
    return pixels[height // 2 - 2 : height // 2 + 2].reshape(-1, 3).mean(axis=0)


def shot_at(shots: list[Shot], time: float) -> Shot:
    for start, end, shot in spans(shots):
        if start <= time < end:
            return shot
    return shots[-1]


def assert_every_shot_has_a_frame(sampled, shots: list[Shot]) -> None:  # type: ignore[no-untyped-def]
    times = [frame.time for frame in sampled.frames]
    for start, end, shot in spans(shots):
        if shot.seconds >= 1.0:
            assert any(start - 1e-6 <= t < end for t in times), (shot, times)


def assert_frames_show_their_shot(sampled, shots: list[Shot]) -> None:  # type: ignore[no-untyped-def]
    for frame in sampled.frames:
        expected = np.array(shot_at(shots, frame.time).color)
        assert np.abs(center_color(frame.image) - expected).max() < 40, frame.time


def test_every_shot_gets_a_frame_even_between_keyframes(tmp_path: Path):
    # Keyframes every 2 s at fixed places: the 1.2 s green shot lies entirely
    # between two of them, and no cut falls on a keyframe.
    video = make_video(tmp_path / "cuts.mp4", SHOTS, gop_seconds=2.0)
    sampled = sample_frames(str(video), min_side=32)
    assert_every_shot_has_a_frame(sampled, SHOTS)
    assert_frames_show_their_shot(sampled, SHOTS)
    assert sampled.problem is None
    assert sampled.duration == pytest.approx(10.2, abs=0.05)


def test_kept_frame_times_are_accurate_to_one_frame(tmp_path: Path):
    fps = 24
    video = make_video(tmp_path / "times.mp4", SHOTS, fps=fps, gop_seconds=2.0)
    sampled = sample_frames(str(video), min_side=32)
    starts = [start for start, _, _ in spans(SHOTS)]
    for frame in sampled.frames:
        # The frame decoded at the recorded time shows the same shot.
        again = frame_at(str(video), frame.time, min_side=32)
        assert np.abs(center_color(again) - center_color(frame.image)).max() < 10
    # A frame kept for a cut lies within one frame interval after that cut
    # (probes land on the first frame at or after their target).
    for frame in sampled.frames:
        shot_start = max(s for s in starts if s <= frame.time + 1e-6)
        assert frame.time >= shot_start - 1.0 / fps


def test_segments_cover_the_video(tmp_path: Path):
    video = make_video(tmp_path / "cover.mp4", SHOTS, gop_seconds=1.0)
    sampled = sample_frames(str(video), min_side=32)
    times = [f.time for f in sampled.frames]
    assert times == sorted(times) and times[0] == 0.0
    assert len(set(times)) == len(times)


def test_static_shot_is_not_over_sampled(tmp_path: Path):
    still = Shot(60.0, (90, 140, 200), (20, 20, 20))
    video = make_video(tmp_path / "tripod.mp4", [still], fps=10, gop_seconds=2.0)
    sampled = sample_frames(str(video), min_side=32, max_gap=10.0)
    times = [f.time for f in sampled.frames]
    assert 6 <= len(times) <= 7, times
    gaps = np.diff([*times, sampled.duration])
    assert gaps.max() <= 10.0 + 1e-6


def test_max_gap_holds_even_with_sparse_keyframes(tmp_path: Path):
    still = Shot(40.0, (200, 200, 80), (0, 0, 120))
    video = make_video(tmp_path / "sparse.mp4", [still], fps=10, gop_seconds=15.0)
    sampled = sample_frames(str(video), min_side=32, max_gap=4.0)
    gaps = np.diff([f.time for f in sampled.frames] + [sampled.duration])
    assert gaps.max() <= 4.0 + 1e-6
    assert len(sampled.frames) <= 12


# Keyframes every 250 frames at 30 fps (x264's default spacing), none at cuts.
LONG_GOP_FPS = 30
LONG_GOP = 250 / LONG_GOP_FPS


@pytest.mark.parametrize("cutaway_at", [5.0, 9.0, 10.5, 12.0, 14.0])
def test_a_cutaway_between_alike_keyframes_gets_a_frame(tmp_path: Path, cutaway_at: float):
    # An interview, a 4.5 s cutaway, and back to the same picture. From 9.0 to
    # 12.0 the cutaway lies between the keyframes at 8.3 s and 16.7 s, which
    # both show the interview; from 5.0 and 14.0 it holds a keyframe.
    interview, cutaway = (200, 40, 40), (40, 60, 200)
    shots = [
        Shot(cutaway_at, interview, (250, 250, 250)),
        Shot(4.5, cutaway, (250, 220, 40)),
        Shot(8.0, interview, (250, 250, 250)),
    ]
    video = make_video(tmp_path / "cutaway.mp4", shots, fps=LONG_GOP_FPS, gop_seconds=LONG_GOP)
    sampled = sample_frames(str(video), min_side=32)
    assert_every_shot_has_a_frame(sampled, shots)
    assert_frames_show_their_shot(sampled, shots)


def test_alike_keyframes_with_no_cut_between_are_not_probed(tmp_path: Path):
    # The cost side of the cutaway test: a slow pan over long groups of
    # pictures is decoded only after its last keyframe (at 16.7 s), where
    # nothing else says whether the picture changes.
    pan = Shot(25.0, (120, 160, 60), (30, 30, 30), pan=1)
    video = make_video(tmp_path / "pan.mp4", [pan], fps=LONG_GOP_FPS, gop_seconds=LONG_GOP)
    sampled = sample_frames(str(video), min_side=32)
    assert sampled.keyframes_decoded == 3
    assert sampled.probes_decoded <= round((25.0 - 2 * LONG_GOP) * LONG_GOP_FPS)


# A camcorder's half minute: a cut every 2 to 3 s, keyframes every 6 s at 24 fps
# and none at cuts, so that each group of pictures hides shots that only
# probing between its keyframes finds.
EVERY_FEW_SECONDS = [
    Shot(2.0, (220, 30, 30), (250, 250, 250)),
    Shot(3.0, (30, 200, 60), (10, 10, 10)),
    Shot(2.5, (30, 60, 220), (250, 220, 40)),
    Shot(2.0, (128, 128, 128), (250, 250, 250)),
    Shot(3.0, (200, 200, 40), (10, 10, 10)),
    Shot(2.5, (40, 200, 200), (250, 220, 40)),
    Shot(2.0, (200, 40, 200), (250, 250, 250)),
    Shot(3.0, (250, 140, 20), (10, 10, 10)),
    Shot(2.5, (90, 40, 10), (250, 220, 40)),
    Shot(2.0, (10, 90, 40), (250, 250, 250)),
    Shot(3.0, (150, 150, 250), (10, 10, 10)),
    Shot(2.5, (250, 250, 250), (250, 220, 40)),
]
CAMCORDER_FPS = 24
CAMCORDER_GOP = 6.0


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        # x265's defaults: B-frames, and open groups of pictures whose
        # keyframes (CRA pictures) the decoder places by counting from the
        # keyframe before; 144 pictures apart, more than half its count's
        # range of 2^8.
        ("x265.mkv", "libx265"),
        ("x265.mp4", "libx265"),
        # MPEG transport streams, which FFmpeg seeks by decoding time.
        ("camcorder.mts", "libx264"),
        ("camcorder.m2ts", "libx264"),
        ("x265.m2ts", "libx265"),
    ],
)
def test_every_shot_gets_a_frame_with_long_groups_of_pictures(
    tmp_path: Path, name: str, codec: str
):
    shots = EVERY_FEW_SECONDS
    video = make_video(
        tmp_path / name, shots, codec=codec, fps=CAMCORDER_FPS, gop_seconds=CAMCORDER_GOP
    )
    sampled = sample_frames(str(video), min_side=32)
    assert_every_shot_has_a_frame(sampled, shots)
    assert_frames_show_their_shot(sampled, shots)
    assert sampled.keyframes_decoded == 5
    # Probing decodes each group of pictures once, as in any other container.
    assert sampled.keyframes_decoded + sampled.probes_decoded <= 30 * CAMCORDER_FPS


def test_hevc_keyframes_a_multiple_of_256_pictures_apart_all_decode(tmp_path: Path):
    # Counted from the keyframe before, each open-GOP keyframe looked like a
    # second picture with the same place in the order, and the decoder threw
    # it away: the first keyframe alone came out, and the sampler then probed
    # the whole video as if it had no other keyframe.
    still = Shot(34.0, (90, 140, 200), (20, 20, 20))
    video = make_video(
        tmp_path / "x265.mkv", [still], codec="libx265", fps=24, gop_seconds=256 / 24
    )
    sampled = sample_frames(str(video), min_side=32, max_gap=60.0)
    assert sampled.keyframes_decoded == 4  # at 0, 10.7, 21.3 and 32.0 s
    # Only after the last keyframe does nothing say whether the picture changes.
    assert sampled.probes_decoded <= 2 * 24


@pytest.mark.parametrize(
    ("name", "codec"), [("camcorder.mts", "libx264"), ("dvd.mpg", "mpeg2video")]
)
def test_a_frame_between_keyframes_of_an_mpeg_stream_is_the_one_shown_then(
    tmp_path: Path, name: str, codec: str
):
    # MPEG transport and program streams have no index: a seek lands on
    # whatever packet was decoded at that time, and decoding from there
    # showed the next group of pictures, or nothing after the last keyframe.
    shots = EVERY_FEW_SECONDS
    video = make_video(
        tmp_path / name, shots, codec=codec, fps=CAMCORDER_FPS, gop_seconds=CAMCORDER_GOP
    )
    for time in [1.0, 3.5, 8.5, 13.0, 19.0, 26.0, 29.5]:
        image = frame_at(str(video), time, min_side=32)
        expected = np.array(shot_at(shots, time).color)
        assert np.abs(center_color(image) - expected).max() < 40, time


def test_slow_dissolve_is_a_new_shot_but_a_pan_is_not(tmp_path: Path):
    import av

    fps, seconds, size = 10, 16, (160, 96)
    a, b = Shot(1, (200, 40, 40), (250, 250, 250)), Shot(1, (40, 40, 200), (250, 250, 0))
    path = tmp_path / "dissolve.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"x264-params": "keyint=20:min-keyint=20:scenecut=0"}
        for number in range(fps * seconds):
            # Red fades into blue over 16 s: each second alone changes little.
            mix = number / (fps * seconds - 1)
            picture = (1 - mix) * shot_picture(a, *size) + mix * shot_picture(b, *size)
            frame = av.VideoFrame.from_ndarray(picture.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    dissolve = sample_frames(str(path), min_side=32, max_gap=60.0)
    assert len(dissolve.frames) >= 3

    pan = Shot(16.0, (120, 160, 60), (30, 30, 30), pan=4)
    panning = make_video(tmp_path / "pan.mp4", [pan], fps=10, gop_seconds=2.0)
    assert len(sample_frames(str(panning), min_side=32, max_gap=60.0).frames) == 1


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("h264.mp4", "libx264"),
        ("hevc.mkv", "libx265"),
        ("vp9.webm", "libvpx-vp9"),
        ("mpeg4.avi", "mpeg4"),
        ("mpeg2.mpg", "mpeg2video"),
        ("phone.mov", "libx264"),
        ("camcorder.mts", "libx264"),
    ],
)
def test_codecs_and_containers(tmp_path: Path, name: str, codec: str):
    video = make_video(tmp_path / name, SHOTS, codec=codec, gop_seconds=1.0)
    sampled = sample_frames(str(video), min_side=32)
    assert_every_shot_has_a_frame(sampled, SHOTS)
    assert_frames_show_their_shot(sampled, SHOTS)


def test_hevc_4k_keyframes_decode(tmp_path: Path):
    shots = [Shot(1.0, (200, 30, 30)), Shot(1.0, (30, 30, 200))]
    video = make_video(tmp_path / "uhd.mkv", shots, codec="libx265", size=(3840, 2160), fps=5)
    sampled = sample_frames(str(video), min_side=64)
    assert len(sampled.frames) == 2
    assert (sampled.width, sampled.height) == (3840, 2160)
    assert min(sampled.frames[0].image.size) == 64


def test_rotated_phone_video_is_upright(tmp_path: Path):
    video = make_video(tmp_path / "portrait.mp4", [RED], size=(160, 96))
    set_mp4_rotation(video, 90)
    sampled = sample_frames(str(video), min_side=48)
    image = sampled.frames[0].image
    assert image.height > image.width
    assert (sampled.width, sampled.height) == (96, 160)
    # The stripe across the stored picture's top is on the right once turned
    # clockwise, as the phone showed it.
    pixels = np.asarray(image).astype(int)
    right = pixels[:, -3:].reshape(-1, 3).mean(axis=0)
    left = pixels[:, 5:8].reshape(-1, 3).mean(axis=0)
    assert right.min() > 200  # white stripe
    assert left[0] > 150 and left[2] < 100  # red body


def test_timestamps_that_do_not_start_at_zero(tmp_path: Path):
    video = make_video(tmp_path / "offset.mp4", SHOTS, gop_seconds=1.0, start_seconds=7.5)
    sampled = sample_frames(str(video), min_side=32)
    assert sampled.frames[0].time == pytest.approx(0.0, abs=1e-6)
    assert_every_shot_has_a_frame(sampled, SHOTS)
    assert_frames_show_their_shot(sampled, SHOTS)


def test_variable_frame_rate(tmp_path: Path):
    import av

    path = tmp_path / "vfr.mkv"
    times: list[float] = []
    t = 0.0
    for number in range(80):  # 30 fps, then 5 fps, then 30 fps again
        times.append(t)
        t += 1 / 30 if number < 30 or number >= 50 else 1 / 5
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.options = {"x264-params": "keyint=15:min-keyint=15:scenecut=0"}
        for moment in times:
            shot = shot_at(SHOTS, moment * 10.2 / times[-1])
            frame = av.VideoFrame.from_ndarray(shot_picture(shot, 160, 96), format="rgb24")
            frame.pts, frame.time_base = round(moment * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    sampled = sample_frames(str(path), min_side=32)
    for frame in sampled.frames:
        expected = shot_at(SHOTS, frame.time * 10.2 / times[-1])
        assert np.abs(center_color(frame.image) - np.array(expected.color)).max() < 40


def test_clip_shorter_than_a_second(tmp_path: Path):
    video = make_video(tmp_path / "blink.mp4", [Shot(0.4, (10, 200, 200))])
    sampled = sample_frames(str(video), min_side=32)
    assert len(sampled.frames) == 1


def test_truncated_video_keeps_what_decoded(tmp_path: Path):
    shots = [Shot(4.0, (200, 30, 30)), Shot(4.0, (30, 200, 30)), Shot(4.0, (30, 30, 200))]
    video = make_video(tmp_path / "full.mkv", shots, gop_seconds=1.0)
    data = video.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    sampled = sample_frames(str(cut), min_side=32)
    assert sampled.problem is not None and "indexed up to" in sampled.problem
    assert 0 < max(f.time for f in sampled.frames) < 8.0


# Samples in a child process with its memory capped: a sampler that sizes its
# work by a header's claim fails this test instead of taking the run down.
SAMPLE_WITH_CAPPED_MEMORY = """
import json, resource, sys
cap = 2 << 30
resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
from mediafind.media.video import sample_frames
sampled = sample_frames(sys.argv[1], min_side=32)
print(json.dumps({
    "times": [frame.time for frame in sampled.frames],
    "duration": sampled.duration,
    "decoded": sampled.keyframes_decoded + sampled.probes_decoded,
    "problem": sampled.problem,
}))
"""


def test_a_header_claiming_ages_does_not_size_the_work(tmp_path: Path):
    import av

    # A few kilobytes whose header declares 10^15 ms (31,700 years): the
    # sampler once listed a probe time for every second of it.
    shots = [RED, GREEN]
    video = make_video(tmp_path / "liar.mkv", shots, fps=10, gop_seconds=2.0)
    set_mkv_duration(video, 1e15)
    with av.open(str(video)) as container:
        assert container.duration == pytest.approx(1e18)  # microseconds, as claimed
    done = subprocess.run(
        [sys.executable, "-c", SAMPLE_WITH_CAPPED_MEMORY, str(video)],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env({"OPENBLAS_NUM_THREADS": "1"}),  # threads' stacks count too
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sampled = json.loads(done.stdout)
    assert sampled["decoded"] <= 42  # the frames the file holds: 4.2 s at 10 fps
    assert sampled["duration"] == pytest.approx(4.2, abs=0.05)
    assert "indexed up to" in sampled["problem"]
    for start, end, _ in spans(shots):
        assert any(start - 1e-6 <= t < end for t in sampled["times"]), sampled["times"]
    # Asked for a frame past the end, it says where the frames end, not the claim.
    with pytest.raises(MediaError, match=r"the last frame is at 0:04\)"):
        frame_at(str(video), 60.0, min_side=32)


def test_several_video_streams_use_the_default_one(tmp_path: Path):
    import av

    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as container:
        first = container.add_stream("libx264", rate=10)
        second = container.add_stream("libx264", rate=10)
        for stream in (first, second):
            stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        first.disposition = av.stream.Disposition(0)
        second.disposition = av.stream.Disposition.default
        for number in range(10):
            for stream, shot in ((first, RED), (second, BLUE)):
                frame = av.VideoFrame.from_ndarray(shot_picture(shot, 160, 96), format="rgb24")
                frame.pts, frame.time_base = number, Fraction(1, 10)
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in (first, second):
            for packet in stream.encode():
                container.mux(packet)
    sampled = sample_frames(str(path), min_side=32)
    assert np.abs(center_color(sampled.frames[0].image) - np.array(BLUE.color)).max() < 40


@pytest.mark.parametrize(
    "content", [b"", b"not a video at all", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200]
)
def test_unreadable_videos_raise_media_error(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError):
        sample_frames(str(path), min_side=32)
