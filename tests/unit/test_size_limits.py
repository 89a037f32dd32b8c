"""Size limits (rows, bytes, image pixels): checked before reading where the size is known,
refused with one DataError naming the file and the limit, and nothing written."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tunepipe.config import ImageConfig, InputLimits
from tunepipe.data import readers
from tunepipe.data.images import read_image_folder
from tunepipe.data.ingest import run_ingest
from tunepipe.data.sources import download_objects, fingerprint
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit


def _refused(source: Path | str, label: str, match: str, tmp_path: Path, **kwargs) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataError, match=match):
        run_ingest(str(source), label, "auto", out, **kwargs)
    assert not out.exists(), "a refused input must leave no artifact behind"


def _table(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(rows, dtype=float), "y": ["a", "b"] * (rows // 2)})


def test_too_many_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    _table(100).to_csv(data, index=False)
    size = data.stat().st_size
    _refused(data, "y", re.escape(f"{data}: {size:,} bytes, more than data.max_bytes=100"), tmp_path,
             limits=InputLimits(max_bytes=100))
    with pytest.raises(DataError, match="max_bytes"):
        fingerprint(str(data), max_bytes=100)  # the fingerprint step hashes nothing over the limit either


def test_bytes_of_a_folder_of_shards_are_summed(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    for index in range(3):
        _table(20).to_csv(folder / f"part-{index}.csv", index=False)
    one = (folder / "part-0.csv").stat().st_size
    limits = InputLimits(max_bytes=2 * one + 1)  # every shard fits, all three do not
    _refused(folder, "y", re.escape(str(folder)) + r": [\d,]+ bytes, more than data\.max_bytes", tmp_path,
             limits=limits)


def test_gcs_object_sizes_are_checked_from_the_listing_before_download(tmp_path: Path) -> None:
    downloads: list[str] = []

    def download(name: str, path: str, retry: object = None) -> None:
        downloads.append(name)
        Path(path).write_text("x")

    def blob(name: str, generation: int | None = None) -> SimpleNamespace:
        return SimpleNamespace(name=name, size=600, generation=1, md5_hash=None,
                               download_to_filename=lambda path, retry=None: download(name, path))

    listing = [blob("data/part-0.csv"), blob("data/part-1.csv")]
    client = SimpleNamespace(
        list_blobs=lambda bucket, prefix, retry=None: [b for b in listing if b.name.startswith(prefix)],
        bucket=lambda name: SimpleNamespace(blob=blob),
    )
    with pytest.raises(DataError, match=r"gs://my-bucket/data/: 1,200 bytes, more than data\.max_bytes=1,000"):
        download_objects("gs://my-bucket/data/", tmp_path, client, max_bytes=1000)
    assert downloads == []
    download_objects("gs://my-bucket/data/", tmp_path, client, max_bytes=1200)
    assert downloads == ["data/part-0.csv", "data/part-1.csv"]


def test_too_many_rows_names_the_file_and_the_limit(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    _table(40).to_json(data, orient="records", lines=True)
    _refused(data, "y", re.escape(f"{data}: 40 rows, more than data.max_rows=30"), tmp_path,
             limits=InputLimits(max_rows=30))


def test_rows_of_shards_are_counted_together(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    for index in range(3):
        _table(20).to_csv(folder / f"part-{index}.csv", index=False)
    _refused(folder, "y", r"part-1\.csv: 20 rows \(40 with the shards before it\), more than data\.max_rows=30",
             tmp_path, limits=InputLimits(max_rows=30))


def test_parquet_rows_are_counted_from_the_footer_before_reading(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "d.parquet"
    _table(50).to_parquet(data, index=False)

    def never(path: Path, name: str) -> pd.DataFrame:
        raise AssertionError(f"{name} was read although its footer is over the limit")

    monkeypatch.setitem(readers.READERS, "parquet", never)
    with pytest.raises(DataError, match=re.escape(f"{data}: 50 rows, more than data.max_rows=10")):
        readers.read_file(data, max_rows=10)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` and that holds no pixel data (a bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + iend


def _image_folder(tmp_path: Path, count: int = 3) -> Path:
    folder = tmp_path / "pictures"
    for name in ("cats", "dogs"):
        (folder / name).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(np.full((10, 10), index * 12, np.uint8)).save(folder / name / f"{index}.png")
    return folder


@pytest.mark.parametrize(("width", "height"), [(9_000, 9_000), (30_000, 30_000)])
def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path: Path, width: int, height: int) -> None:
    """81 MP: over images.max_pixels (64 MP) only; 900 MP: also over Pillow's own bomb limit."""
    folder = _image_folder(tmp_path)
    (folder / "cats" / "bomb.png").write_bytes(_png_header_only(width, height))
    _refused(folder, "label", re.escape(f"{folder}/cats/bomb.png: ") + ".*more than images.max_pixels=64,000,000",
             tmp_path)


def test_the_pixel_limit_is_configurable(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path)
    with pytest.raises(DataError, match=r"cats/0\.png: 10x10 = 100 pixels, more than images\.max_pixels=64"):
        read_image_folder(folder, "label", ImageConfig(max_pixels=64))
    frame, _ = read_image_folder(folder, "label", ImageConfig(max_pixels=100))
    assert len(frame) == 6


def test_image_count_counts_as_rows_before_decoding(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path)
    _refused(folder, "label", re.escape(f"{folder}: 6 rows, more than data.max_rows=5"), tmp_path,
             limits=InputLimits(max_rows=5))


def test_only_png_and_jpeg_decoders_are_used(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path, count=20)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "cats" / "disguised.png", format="BMP")
    frame, report = read_image_folder(folder, "label", ImageConfig())
    assert [item["file"] for item in report["corrupt_skipped"]] == ["cats/disguised.png"]
    assert len(frame) == 40


def test_defaults_are_documented_limits() -> None:
    limits, images = InputLimits(), ImageConfig()
    assert (limits.max_rows, limits.max_bytes, images.max_pixels) == (10_000_000, 2 * 1024**3, 64_000_000)
    assert limits.allowed_roots == []
