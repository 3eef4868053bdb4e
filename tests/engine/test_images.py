import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from char_pipeline.engine.errors import (
    ImageDecodeError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from char_pipeline.engine.images import load_reference_image


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_reads_png_jpeg_webp(image_paths):
    png = image_paths["astronaut"].read_bytes()
    reference = load_reference_image(png)
    assert (reference.width, reference.height) == (512, 512)
    assert reference.alpha is None and reference.source_format == "PNG"
    source = Image.open(io.BytesIO(png))
    for fmt in ("JPEG", "WEBP"):
        decoded = load_reference_image(_encode(source, fmt, quality=90))
        assert decoded.source_format == fmt
        assert decoded.rgb.shape == (512, 512, 3)


def test_keeps_alpha_of_rgba_png(image_paths):
    reference = load_reference_image(image_paths["present"].read_bytes())
    assert reference.alpha is not None
    assert reference.alpha.min() == 0 and reference.alpha.max() == 255


def test_applies_exif_orientation(image_paths):
    source = Image.open(image_paths["chelsea"]).convert("RGB")  # 451x300, landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = _encode(source, "JPEG", exif=exif.tobytes())
    reference = load_reference_image(data)
    assert (reference.width, reference.height) == (300, 451)


def test_corrupt_and_truncated_and_non_image(image_paths):
    png = image_paths["astronaut"].read_bytes()
    with pytest.raises(ImageDecodeError, match="corrupt or truncated"):
        load_reference_image(png[: len(png) // 3])
    with pytest.raises(ImageDecodeError, match="not a readable"):
        load_reference_image(b"%PDF-1.4 this is not an image" * 10)
    with pytest.raises(ImageDecodeError, match="empty"):
        load_reference_image(b"")


def test_oversized_bytes_rejected_before_decoding(image_paths):
    data = image_paths["astronaut"].read_bytes()
    with pytest.raises(ImageTooLargeError) as info:
        load_reference_image(data, max_bytes=1000)
    assert info.value.details["max_bytes"] == 1000


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size: a decompression bomb's calling card."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_pixel_bomb_rejected_from_header():
    with pytest.raises(ImageTooLargeError, match="pixels"):
        load_reference_image(_png_header_only(60_000, 60_000))


def test_unsupported_format_and_tiny_image():
    gif = _encode(Image.new("RGB", (64, 64), "red"), "GIF")
    with pytest.raises(UnsupportedImageFormatError, match="GIF"):
        load_reference_image(gif)
    tiny = _encode(Image.fromarray(np.zeros((8, 8, 3), np.uint8)), "PNG")
    with pytest.raises(ImageDecodeError, match="at least 16"):
        load_reference_image(tiny)


def test_a_contact_sheet_shows_evenly_spaced_frames_side_by_side():
    from char_pipeline.engine.images import contact_sheet, sheet_indices

    assert sheet_indices(48) == [0, 7, 13, 20, 27, 34, 40, 47]
    assert sheet_indices(4) == [0, 1, 2, 3] and sheet_indices(0) == []
    frames = [np.full((90, 120, 3), value, np.uint8) for value in (0, 100, 200)]
    sheet = contact_sheet(frames, height=60, gap=4)
    assert sheet.shape == (60, 3 * 80 + 2 * 4, 3)
    assert sheet[30, 10, 0] == 0 and sheet[30, 84 + 10, 0] == 100 and sheet[30, 82, 0] == 255
