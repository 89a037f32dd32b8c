"""Checks on one encoded image before the model decodes it: size, format, dimensions, decodability.

The formats are those the SavedModel decodes (``tf.io.decode_image``: JPEG, PNG, GIF, BMP). The
dimensions come from the file's header (PNG's IHDR, JPEG's start-of-frame, GIF's logical screen,
BMP's info header), so an image over the pixel limit is refused without decoding it: a small file
can decode to gigabytes.
"""

from __future__ import annotations

import struct

from tunepipe.errors import BadRequest
from tunepipe.serving.settings import Limits

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"
GIF_MAGICS = (b"GIF87a", b"GIF89a")
BMP_MAGIC = b"BM"
# JPEG start-of-frame markers (baseline, progressive, lossless ...): C0-CF but DHT C4, JPG C8, DAC CC
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if marker in JPEG_FRAMES:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return height, width
        at += 2 + length
    return None


def _gif_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 10:
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return height, width


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return abs(height), abs(width)  # a negative height means top-down rows


def image_size(data: bytes, where: str) -> tuple[int, int]:
    """Height and width from a JPEG, PNG, GIF or BMP header.

    Raises:
        BadRequest: None of those formats, or a header without dimensions.
    """
    if data.startswith(PNG_MAGIC):
        size = _png_size(data)
    elif data.startswith(JPEG_MAGIC):
        size = _jpeg_size(data)
    elif data.startswith(GIF_MAGICS):
        size = _gif_size(data)
    elif data.startswith(BMP_MAGIC):
        size = _bmp_size(data)
    else:
        raise BadRequest(f"{where}: not a JPEG, PNG, GIF or BMP image (starts with {data[:8]!r})")
    if size is None:
        raise BadRequest(f"{where}: image header is truncated or corrupt; cannot read its size")
    return size


def check_pixels(height: int, width: int, limits: Limits, where: str) -> None:
    """Raises :class:`BadRequest` if ``height`` x ``width`` is empty or over ``limits.max_image_pixels``."""
    if height * width == 0:
        raise BadRequest(f"{where}: image of {height}x{width} pixels is empty")
    if height * width > limits.max_image_pixels:
        raise BadRequest(f"{where}: image of {height}x{width} = {height * width} pixels is over the limit of "
                         f"{limits.max_image_pixels} pixels (--max-image-pixels)")


def check_encoded(data: bytes, limits: Limits, where: str) -> None:
    """Refuses an encoded image over the byte or pixel limit, or that does not decode.

    Raises:
        BadRequest: Naming ``where`` (the input and instance) and the limit or the fault.
    """
    if len(data) > limits.max_image_bytes:
        raise BadRequest(f"{where}: image of {len(data)} bytes is over the limit of {limits.max_image_bytes} "
                         "bytes (--max-image-bytes)")
    check_pixels(*image_size(data, where), limits, where)
    import tensorflow as tf  # the same decoder the SavedModel runs

    try:
        tf.io.decode_image(data, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise BadRequest(f"{where}: image does not decode ({error.message.splitlines()[0]})") from None
