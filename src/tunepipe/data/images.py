"""Image folders: one sub-folder per class, PNG or JPEG files, decoded in parallel.

Every image is decoded with Pillow, converted to grayscale or RGB (RGB as soon as one image
has colour) and resized to the configured size, then stored as raw ``uint8`` bytes in one
column of the cleaned Parquet (with the class and the file's relative path), so the later
steps handle images and tables through the same frame-based code.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunepipe.config import ImageConfig
from tunepipe.data.readers import check_rows
from tunepipe.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
# The only Pillow decoders ever used: a file named .png that holds another format is corrupt.
DECODERS = ("PNG", "JPEG")
IMAGE_COLUMN = "image"
FILE_COLUMN = "file"
# Files per task sent to a worker process: large enough that pickling is cheap next to decoding.
CHUNK = 64
# Below this many files a process pool costs more than it saves.
PARALLEL_FROM = 256


def is_image_folder(path: Path) -> bool:
    """True when ``path`` has the layout of an image folder: only sub-folders at its top, and no
    table files (CSV, Parquet, JSONL) in them, which would make it a partitioned table instead.

    An image-folder layout without any image is still one, so that it is refused as "no images".
    """
    from tunepipe.data.readers import FORMATS

    if not path.is_dir():
        return False
    entries = [entry for entry in path.iterdir() if not entry.name.startswith((".", "_"))]
    if not entries or any(entry.is_file() for entry in entries):
        return False
    return not any(item.suffix.lower() in FORMATS for folder in entries for item in folder.rglob("*"))


def image_files(path: Path) -> list[tuple[str, Path]]:
    """(class, file) pairs: every image file in each sub-folder, sorted.

    Raises:
        DataError: No sub-folder holds an image file.
    """
    found = [
        (folder.name, item)
        for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        for item in sorted(folder.rglob("*"))
        if item.is_file() and item.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not found:
        raise DataError(f"{path}: no PNG or JPEG images in its class sub-folders")
    return found


@dataclass(frozen=True)
class Oversized:
    """An image whose header declares more pixels than allowed; it is never decoded."""

    pixels: int | None
    detail: str


Decoded = tuple[bytes, str] | str | Oversized


def decode(path: str, height: int, width: int, max_pixels: int | None = None) -> Decoded:
    """One image resized to ``height`` x ``width``: (pixels, ``L`` or ``RGB``), an error text,
    or :class:`Oversized` when its header declares more than ``max_pixels`` (default ``None``:
    Pillow's own decompression-bomb limit alone).

    Only the PNG and JPEG decoders are used, whatever the file's name claims.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=DECODERS) as image:
            declared = image.width * image.height
            if max_pixels is not None and declared > max_pixels:
                return Oversized(declared, f"{image.width}x{image.height}")
            image.load()
            mode = "L" if image.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
            converted = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
            return converted.tobytes(), mode
    except Image.DecompressionBombError as error:  # beyond twice Pillow's MAX_IMAGE_PIXELS
        return Oversized(None, str(error))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        return f"{type(error).__name__}: {error}"


def _decode_chunk(paths: list[str], height: int, width: int, max_pixels: int | None) -> list[Decoded]:
    return [decode(path, height, width, max_pixels) for path in paths]


def decode_all(
    paths: list[str], height: int, width: int, workers: int | None = None, max_pixels: int | None = None
) -> list[Decoded]:
    """Decodes every path, in parallel processes when there are many (``workers``: default all cores)."""
    workers = workers or os.cpu_count() or 1
    if len(paths) < PARALLEL_FROM or workers == 1:
        return _decode_chunk(paths, height, width, max_pixels)
    chunks = [paths[start:start + CHUNK] for start in range(0, len(paths), CHUNK)]
    repeat = len(chunks)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_decode_chunk, chunks, [height] * repeat, [width] * repeat, [max_pixels] * repeat)
        return [item for chunk in results for item in chunk]


def _refuse_oversized(files: list[tuple[str, Path]], decoded: list[Decoded], path: Path, source: str,
                      max_pixels: int) -> None:
    for (_, file), result in zip(files, decoded, strict=True):
        if isinstance(result, Oversized):
            size = f"{result.detail} = {result.pixels:,} pixels" if result.pixels else result.detail
            raise DataError(f"{source}/{file.relative_to(path)}: {size}, more than images.max_pixels={max_pixels:,} "
                            "(a decompression bomb, or an image to shrink before training)")


def _to_rgb(pixels: bytes) -> bytes:
    return np.repeat(np.frombuffer(pixels, np.uint8)[:, None], 3, axis=1).tobytes()


def read_image_folder(
    path: Path, label: str, config: ImageConfig, name: str | None = None, workers: int | None = None,
    max_rows: int | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Decodes an image folder into a frame (image bytes, class, file) and its report section.

    Raises:
        DataError: No images, more files than ``max_rows`` (default ``None``: no limit), an
            image over ``config.max_pixels``, or more undecodable files than
            ``config.max_corrupt_fraction``.
    """
    source = name or str(path)
    files = image_files(path)
    check_rows(len(files), max_rows, source)
    decoded = decode_all([str(file) for _, file in files], config.height, config.width, workers, config.max_pixels)
    _refuse_oversized(files, decoded, path, source, config.max_pixels)
    corrupt = [
        {"file": str(file.relative_to(path)), "error": result}
        for (_, file), result in zip(files, decoded, strict=True) if isinstance(result, str)
    ]
    fraction = len(corrupt) / len(files)
    if fraction > config.max_corrupt_fraction:
        listed = ", ".join(item["file"] for item in corrupt[:5])
        raise DataError(
            f"{source}: {len(corrupt)} of {len(files)} image files cannot be decoded ({fraction:.1%}, more than "
            f"images.max_corrupt_fraction={config.max_corrupt_fraction}): {listed}"
        )
    good = [
        (cls, file, result) for (cls, file), result in zip(files, decoded, strict=True) if isinstance(result, tuple)
    ]
    rgb = any(result[1] == "RGB" for _, _, result in good)
    frame = pd.DataFrame({
        IMAGE_COLUMN: [result[0] if not rgb or result[1] == "RGB" else _to_rgb(result[0]) for _, _, result in good],
        label: [cls for cls, _, _ in good],
        FILE_COLUMN: [str(file.relative_to(path)) for _, file, _ in good],
    })
    channels = 3 if rgb else 1
    report = {
        "kind": "images",
        "files": len(files),
        "decoded": len(good),
        "corrupt_skipped": corrupt,
        "height": config.height,
        "width": config.width,
        "channels": channels,
    }
    log.info("images: %d decoded, %d skipped as corrupt, %dx%dx%d", len(good), len(corrupt),
             config.height, config.width, channels)
    return frame, report


def image_schema(frame: pd.DataFrame, label: str, report: dict[str, Any]) -> dict[str, Any]:
    """The schema of an image dataset: size, channels and classes (the task is classification)."""
    counts = frame[label].value_counts()
    return {
        "schema_version": 2,
        "kind": "images",
        "label": label,
        "task": "classification",
        "numeric": [],
        "categorical": [],
        "image": {"column": IMAGE_COLUMN, "height": report["height"], "width": report["width"],
                  "channels": report["channels"]},
        "features": {},
        "label_profile": {"type": "categorical", "categories": len(counts),
                          "values": sorted(str(value) for value in counts.index), "missing_fraction": 0.0},
        "rows": len(frame),
    }


def pixels(frame: pd.DataFrame, height: int, width: int, channels: int) -> np.ndarray:
    """The image column as a ``float32`` array of shape (rows, height, width, channels), 0-255."""
    if IMAGE_COLUMN not in frame.columns:
        raise DataError(f"column {IMAGE_COLUMN!r} is missing from the data")
    flat = np.frombuffer(b"".join(frame[IMAGE_COLUMN].tolist()), dtype=np.uint8)
    return flat.reshape(len(frame), height, width, channels).astype(np.float32)
