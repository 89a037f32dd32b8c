"""Datasets shipped inside the package, addressable as ``sample://<name>``.

A ``sample://`` URI works wherever tunepipe is installed (a laptop, the project image in a
pod), so the pipeline's default data source needs no bucket and no machine path.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from tunepipe.errors import DataError

SAMPLE_SCHEME = "sample://"
SAMPLES = {"penguins": "penguins.csv", "digits": "digits"}
# The label each sample predicts (an image folder's classes go into this column).
SAMPLE_LABELS = {"penguins": "species", "digits": "label"}
DEFAULT_SAMPLE_URI = f"{SAMPLE_SCHEME}penguins"
DEFAULT_SAMPLE_LABEL = "species"


def resolve(uri: str) -> str:
    """The local path behind a ``sample://`` URI; any other URI is returned unchanged.

    Raises:
        DataError: The URI names a sample that is not shipped.
    """
    if not uri.startswith(SAMPLE_SCHEME):
        return uri
    name = uri.removeprefix(SAMPLE_SCHEME)
    if name not in SAMPLES:
        raise DataError(f"{uri}: no such sample dataset (shipped: {', '.join(sorted(SAMPLES))})")
    return str(Path(str(files("tunepipe") / "datasets" / SAMPLES[name])))
