"""A frame written as a split, as preprocess writes one, for tests that change a split's rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tunepipe import artifacts
from tunepipe.data.split import STRATIFIED, Split, SplitMetadata, writing_split


def write_split(folder: Path, frame: pd.DataFrame, name: str = artifacts.TEST) -> Split:
    """Writes ``frame`` as the one shard of split ``name`` in ``folder``; returns the split."""
    with writing_split(folder, SplitMetadata(name, STRATIFIED, 0, 0.15, 0.15)) as writer:
        writer.write("part-00000.parquet", frame)
    return Split.open(folder)
