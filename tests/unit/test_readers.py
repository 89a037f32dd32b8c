"""CSV sniffing (delimiter, encoding, BOM), Parquet, JSONL and folders of shards."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tunepipe.data.ingest import read_table
from tunepipe.data.sources import fingerprint
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit

ROWS = [("Zürich", 1.5, "a"), ("Genève", 2.5, "b"), ("Bern", 3.0, "a")]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
def test_csv_delimiter_and_encoding_are_sniffed(tmp_path, delimiter: str, encoding: str) -> None:
    path = tmp_path / "data.csv"
    lines = [delimiter.join(["city", "value", "y"])] + [delimiter.join([c, str(v), y]) for c, v, y in ROWS]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    frame = read_table(str(path))
    assert list(frame.columns) == ["city", "value", "y"]  # no BOM left on the first name
    assert frame["city"].tolist() == ["Zürich", "Genève", "Bern"]
    assert frame["value"].tolist() == [1.5, 2.5, 3.0]


def test_jsonl(tmp_path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"x": 1, "y": "a"}\n{"x": 2.5, "y": "b"}\n{"y": "a"}\n')
    frame = read_table(str(path))
    assert frame["y"].tolist() == ["a", "b", "a"]
    assert frame["x"].isna().sum() == 1


def test_folder_of_shards_reads_as_one_dataset(tmp_path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    for index in range(3):
        pd.DataFrame({"x": [index, index + 10], "y": ["a", "b"]}).to_parquet(folder / f"part-{index}.parquet")
    (folder / "_SUCCESS").write_text("")
    frame = read_table(str(folder))
    assert sorted(frame["x"].tolist()) == [0, 1, 2, 10, 11, 12]
    assert fingerprint(str(folder)).startswith("sha256:")


def test_shards_with_different_columns_are_refused(tmp_path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    pd.DataFrame({"x": [1], "y": ["a"]}).to_csv(folder / "a.csv", index=False)
    pd.DataFrame({"z": [1], "y": ["a"]}).to_csv(folder / "b.csv", index=False)
    with pytest.raises(DataError, match=re.escape("b.csv") + ": columns"):
        read_table(str(folder))


def test_shards_mixing_formats_are_refused(tmp_path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    pd.DataFrame({"x": [1], "y": ["a"]}).to_csv(folder / "a.csv", index=False)
    pd.DataFrame({"x": [1], "y": ["a"]}).to_parquet(folder / "b.parquet")
    with pytest.raises(DataError, match="mix formats"):
        read_table(str(folder))


def test_folder_fingerprint_follows_every_file(tmp_path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,a\n")
    first = fingerprint(str(folder))
    (folder / "b.csv").write_text("x,y\n2,b\n")
    assert fingerprint(str(folder)) != first
