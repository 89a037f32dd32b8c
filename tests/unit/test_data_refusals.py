"""Every refused input: one DataError naming the file, column or value, and nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tunepipe.config import ImageConfig, SplitConfig
from tunepipe.data.ingest import clean, read_table, run_ingest
from tunepipe.data.preprocess import split_frame
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit


def _refused(source: Path | str, label: str, match: str, tmp_path: Path, **kwargs) -> str:
    out = tmp_path / "out"
    with pytest.raises(DataError, match=match) as caught:
        run_ingest(str(source), label, "auto", out, **kwargs)
    assert not out.exists(), "a refused input must leave no artifact behind"
    return str(caught.value)


def test_empty_file_names_it(tmp_path) -> None:
    for name in ("empty.csv", "empty.jsonl", "empty.parquet"):
        path = tmp_path / name
        path.write_bytes(b"")
        _refused(path, "y", re.escape(str(path)) + ": is empty", tmp_path)


def test_whitespace_only_csv_is_empty(tmp_path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n\n  \n")
    _refused(path, "y", re.escape(str(path)) + ": is empty", tmp_path)


def test_header_only_names_the_file(tmp_path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b,y\n")
    _refused(path, "y", re.escape(str(path)) + ": has a header but no data rows", tmp_path)


def test_missing_label_column_names_it_and_the_columns(tmp_path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,x\n2,y\n")
    message = _refused(path, "target", "label column 'target' not found", tmp_path)
    assert "['a', 'b']" in message


def test_label_all_missing_names_it(tmp_path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,y\n1,\n2,\n")
    _refused(path, "y", "label column 'y' has no values", tmp_path)


def test_single_class_names_the_class(tmp_path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,y\n1,cat\n2,cat\n3,cat\n")
    _refused(path, "y", "label column 'y' has a single class 'cat'", tmp_path)


def test_fewer_rows_than_the_splits_need() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5]})
    with pytest.raises(DataError, match=r"3 rows are too few for the validation split"):
        split_frame(frame, "y", "regression", SplitConfig(val_fraction=0.1, test_fraction=0.1), 0)


def test_binary_file_with_a_csv_name_is_refused(tmp_path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(bytes(range(256)) * 8)
    _refused(path, "y", re.escape(str(path)) + ": is a binary file", tmp_path)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_unreadable_content_names_the_file(tmp_path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_text("this is { not what the extension promises\n")
    _refused(path, "y", re.escape(str(path)) + ": cannot be read as", tmp_path)


def test_duplicate_column_names_in_csv(tmp_path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,y\n1,2,3,x\n4,5,6,z\n")
    _refused(path, "y", re.escape(str(path)) + r": duplicate column names \['a'\]", tmp_path)


def test_duplicate_column_names_in_parquet(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4]), pa.array(["x", "z"])], names=["a", "a", "y"])
    pq.write_table(table, path)
    _refused(path, "y", re.escape(str(path)) + r": duplicate column names \['a'\]", tmp_path)


def test_all_features_missing_is_refused() -> None:
    frame = pd.DataFrame({"a": [np.nan] * 4, "b": [None] * 4, "y": ["p", "q", "p", "q"]})
    with pytest.raises(DataError, match=r"every feature column is empty .*\['a', 'b'\]"):
        clean(frame, "y")


@pytest.mark.parametrize("name", ["data.xlsx", "data.json", "data"])
def test_unsupported_extension_names_it(tmp_path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a,y\n1,x\n")
    _refused(path, "y", re.escape(str(path)) + ": unsupported file type", tmp_path)


@pytest.mark.parametrize("uri", ["http://example.com/d.csv", "https://x/d.csv", "hdfs:///tmp/d.csv", "s3a://b/d.csv"])
def test_unsupported_scheme_names_it(tmp_path, uri: str) -> None:
    _refused(uri, "y", re.escape(uri) + ": unsupported scheme", tmp_path)


def test_missing_path_names_it(tmp_path) -> None:
    _refused(tmp_path / "nowhere.csv", "y", "nowhere.csv: no such file or folder", tmp_path)


def test_folder_with_no_images_names_it(tmp_path) -> None:
    folder = tmp_path / "pictures"
    for name in ("cats", "dogs"):
        (folder / name).mkdir(parents=True)
        (folder / name / "notes.md").write_text("no pictures here")
    _refused(folder, "label", re.escape(str(folder)) + ": no PNG or JPEG images", tmp_path)


def _image_folder(root: Path, per_class: int, corrupt: int) -> Path:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8)).save(root / name / f"{index}.png")
    for index in range(corrupt):
        (root / "a" / f"broken_{index}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_corrupt_images_above_the_fraction_are_refused(tmp_path) -> None:
    folder = _image_folder(tmp_path / "imgs", per_class=4, corrupt=2)  # 2 of 10 = 20%
    message = _refused(folder, "label", r"2 of 10 image files cannot be decoded", tmp_path,
                       images=ImageConfig(max_corrupt_fraction=0.1))
    assert "broken_0.png" in message and "max_corrupt_fraction=0.1" in message


def test_corrupt_images_below_the_fraction_are_skipped_and_listed(tmp_path) -> None:
    folder = _image_folder(tmp_path / "imgs", per_class=10, corrupt=1)  # 1 of 21 < 5%
    result = run_ingest(str(folder), "label", "auto", tmp_path / "out", images=ImageConfig(height=8, width=8))
    assert len(result.frame) == 20
    assert [item["file"] for item in result.report["images"]["corrupt_skipped"]] == ["a/broken_0.png"]
    assert "a/broken_0.png" in (tmp_path / "out" / "data_report.html").read_text()


def test_an_image_folder_is_not_a_table(tmp_path) -> None:
    folder = _image_folder(tmp_path / "imgs", per_class=2, corrupt=0)
    with pytest.raises(DataError, match="is an image folder"):
        read_table(str(folder))


def test_image_folder_as_regression_is_refused(tmp_path) -> None:
    folder = _image_folder(tmp_path / "imgs", per_class=2, corrupt=0)
    with pytest.raises(DataError, match="classification dataset, not regression"):
        run_ingest(str(folder), "label", "regression", tmp_path / "out")


def test_image_folder_with_a_single_class_is_refused(tmp_path) -> None:
    folder = tmp_path / "imgs"
    (folder / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(folder / "only" / "x.png")
    _refused(folder, "label", re.escape(str(folder)) + ": a single class folder", tmp_path)
