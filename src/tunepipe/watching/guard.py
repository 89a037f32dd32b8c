"""Refuse a snapshot whose schema drifted fatally from the current champion's.

The baseline is the champion's own model card (its label, task and feature columns), found
through ``<export_root>/<model_name>/CHAMPION``: no flag names it, and a new champion moves the
baseline with it. The check reads the header and the first rows of the snapshot's first data
file (one object downloaded, at most :data:`MAX_GUARD_BYTES`), enough for the fatal findings of
:func:`tunepipe.data.schema.compare_schemas`: a column of the champion missing, or the label's
type changed (text where the champion predicted a number). Statistics of a few rows say nothing
about drift in distribution; the pipeline's own checks see the whole snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tunepipe.data.readers import FORMATS, read_file
from tunepipe.data.schema import compare_schemas, infer_schema
from tunepipe.data.sources import materialized
from tunepipe.errors import DataError
from tunepipe.publishing.champion_card import read_champion_card
from tunepipe.reports import modelcard
from tunepipe.watching.snapshots import HIDDEN_PREFIXES, Snapshot

log = logging.getLogger(__name__)

# The guard reads one file of the snapshot; a first file larger than this is not read (the
# pipeline's validate step still checks the snapshot against the data it was given).
MAX_GUARD_BYTES = 256 * 1024 * 1024
SAMPLE_ROWS = 1000


@dataclass(frozen=True)
class Guard:
    """The champion to guard, named as the pipeline names it (``export.export_root``, ``export.model_name``)."""

    export_root: str
    model_name: str

    def baseline(self) -> dict[str, Any] | None:
        """The champion's schema as :func:`~tunepipe.data.schema.compare_schemas` takes it; None: no champion."""
        found = read_champion_card(self.export_root, self.model_name)
        if found is None:
            return None
        card = found.card
        schema = card.get(modelcard.CARD_SCHEMA) or {}
        label_type = "numeric" if card.get(modelcard.CARD_TASK) == "regression" else None
        return {"label": card[modelcard.CARD_LABEL], "features": schema.get("features", {}),
                "label_profile": {"type": label_type} if label_type else {},
                "version": found.pointer.version, "image": not schema.get("features")}  # images: no columns

    def fatal_findings(self, snapshot: Snapshot) -> list[str]:
        """Why ``snapshot`` must not start a run (empty: it may), against the champion of now.

        Raises:
            ObjectStoreError: The champion or the snapshot could not be read (refused, or retries exhausted).
        """
        baseline = self.baseline()
        if baseline is None or baseline["image"]:
            return []  # no champion yet, or an image model (its class folders are checked by the run)
        first = _first_table(snapshot)
        if first is None:
            return [f"{snapshot.uri}: no data file (CSV, Parquet or JSON Lines) in the snapshot"]
        name, size = first
        uri = f"{snapshot.uri}/{name}"
        if size > MAX_GUARD_BYTES:
            log.warning("watch: %s is %d bytes, more than the guard reads (%d); not checked here", uri, size,
                        MAX_GUARD_BYTES)
            return []
        try:
            with materialized(uri, max_bytes=MAX_GUARD_BYTES) as path:
                sample = read_file(path, uri).head(SAMPLE_ROWS)
        except DataError as error:
            return [f"unreadable: {error}"]
        return _fatal(baseline, sample, uri)


def _first_table(snapshot: Snapshot) -> tuple[str, int] | None:
    """The snapshot's first data file by name (markers and hidden files left out) and its size."""
    for name, size, _ in snapshot.entries:
        if not any(part.startswith(HIDDEN_PREFIXES) for part in name.split("/")) and \
                name.lower().endswith(tuple(FORMATS)):
            return name, size
    return None


def _fatal(baseline: dict[str, Any], sample: pd.DataFrame, uri: str) -> list[str]:
    label = baseline["label"]
    if label not in sample.columns:
        return [f"the champion (version {baseline['version']}) predicts {label!r}, a column {uri} lacks"]
    try:
        current = infer_schema(sample, label, "auto")
    except DataError as error:
        return [f"{uri}: {error}"]
    return [f"{item['message']} (champion version {baseline['version']}; {uri})"
            for item in compare_schemas(baseline, current) if item["severity"] == "fatal"]
