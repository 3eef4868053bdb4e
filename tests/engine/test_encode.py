import numpy as np
import pytest

from char_pipeline.engine.encode import VideoWriter, probe_video, read_frames
from char_pipeline.engine.errors import InvalidInputError


def _frames(count=10, width=96, height=64):
    for index in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, : (index + 1) * width // count] = (200, 80, 40)
        yield frame


def test_mp4_is_h264_yuv420p_faststart(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, video_format="mp4", fps=24, width=96, height=64) as writer:
        for frame in _frames():
            writer.write(frame)
    info = probe_video(path)
    assert (info.codec, info.pix_fmt, info.width, info.height, info.frames, info.fps) == (
        "h264",
        "yuv420p",
        96,
        64,
        10,
        24.0,
    )
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart
    decoded = list(read_frames(path))
    assert abs(int(decoded[-1][32, 90, 0]) - 200) < 12


def test_gif_round_trip(tmp_path):
    path = tmp_path / "clip.gif"
    with VideoWriter(path, video_format="gif", fps=10, width=96, height=64) as writer:
        for frame in _frames():
            writer.write(frame)
    info = probe_video(path)
    assert (info.codec, info.width, info.height, info.frames) == ("gif", 96, 64, 10)
    assert info.fps == pytest.approx(10, abs=0.5)


def test_bad_encoder_settings(tmp_path):
    with pytest.raises(InvalidInputError, match="even"):
        VideoWriter(tmp_path / "a.mp4", video_format="mp4", fps=24, width=95, height=64)
    with pytest.raises(InvalidInputError, match="fps"):
        VideoWriter(tmp_path / "a.mp4", video_format="mp4", fps=0, width=96, height=64)
    with pytest.raises(InvalidInputError, match="format"):
        VideoWriter(tmp_path / "a.webm", video_format="webm", fps=24, width=96, height=64)
    writer = VideoWriter(tmp_path / "b.mp4", video_format="mp4", fps=24, width=96, height=64)
    with pytest.raises(InvalidInputError, match="expected"):
        writer.write(np.zeros((10, 10, 3), np.uint8))


def test_gif_palette_keeps_photographic_colours(chelsea, tmp_path):
    reference, _ = chelsea
    frames = [
        np.ascontiguousarray(np.roll(reference.rgb[:288, :448], shift * 4, axis=1))
        for shift in range(5)
    ]
    path = tmp_path / "cat.gif"
    with VideoWriter(path, video_format="gif", fps=10, width=448, height=288) as writer:
        for frame in frames:
            writer.write(frame)
    for source, decoded in zip(frames, read_frames(path), strict=True):
        assert np.abs(decoded.astype(int) - source).mean() < 6.0


def test_the_same_frames_encode_to_the_same_bytes(tmp_path):
    """libx264's mbtree rate control and threads made 3–5 different files out of 8 encodes of
    these frames; EncodeOptions turns both off."""
    import hashlib

    yy, xx = np.mgrid[0:192, 0:192]
    frames = []
    for t in range(24):
        image = np.stack(
            [(xx + t * 3) % 256, (yy * 2 + t) % 256, ((xx + yy) // 2) % 256], -1
        ).astype(np.uint8)
        image[60:120, 40 + t * 2 : 100 + t * 2] = [200, 50, 50]
        frames.append(image)
    digests = set()
    for run in range(8):
        path = tmp_path / f"{run}.mp4"
        with VideoWriter(path, video_format="mp4", fps=24, width=192, height=192) as writer:
            for frame in frames:
                writer.write(frame)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
