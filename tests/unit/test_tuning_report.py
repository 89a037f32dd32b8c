"""Trial table lineage and the HTML tuning report."""

from __future__ import annotations

import base64
import re
from types import SimpleNamespace

import pytest

from tunepipe.modelling.tune import trial_table
from tunepipe.reports.tuning_report import score_plot_png, tuning_report_html

pytestmark = pytest.mark.unit


def _trial(trial_id: str, score: float | None, status: str = "COMPLETED", **values: object) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, score=score, status=status,
                           hyperparameters=SimpleNamespace(values={"units": 8, **values}))


def _oracle() -> SimpleNamespace:
    trials = [
        _trial("0000", 0.9, **{"tuner/epochs": 1, "tuner/bracket": 1, "tuner/round": 0}),
        _trial("0001", 1.2, **{"tuner/epochs": 1, "tuner/bracket": 1, "tuner/round": 0}),
        # promoted from 0000; Keras Tuner stamped it with the bracket counter of the moment (0)
        _trial("0002", 0.5, **{"tuner/epochs": 3, "tuner/bracket": 0, "tuner/round": 1, "tuner/trial_id": "0000"}),
        _trial("0003", 0.7, **{"tuner/epochs": 3, "tuner/bracket": 0, "tuner/round": 0}),
        _trial("0004", None, "FAILED", **{"tuner/epochs": 3, "tuner/bracket": 0, "tuner/round": 0}),
    ]
    return SimpleNamespace(trials={t.trial_id: t for t in trials}, objective=SimpleNamespace(direction="min"))


def test_trial_table_is_best_first_with_the_lineage_bracket() -> None:
    table = trial_table(_oracle())
    assert table["trial_id"].tolist() == ["0002", "0003", "0000", "0001", "0004"]  # failed (no score) last
    assert dict(zip(table["trial_id"], table["bracket"], strict=True)) == {
        "0000": 1, "0001": 1, "0002": 1, "0003": 0, "0004": 0}
    assert table.set_index("trial_id").at["0002", "epochs"] == 3


def test_report_page_has_every_trial_best_first_and_an_embedded_plot() -> None:
    table = trial_table(_oracle())
    page = tuning_report_html(table, "val_loss", "min", "Hyperband max_epochs=3: 6 trials.")
    assert page.count("<tr>") == 1 + 5
    order = [page.index(f"<td>{trial_id}</td>") for trial_id in ["0002", "0003", "0000", "0001", "0004"]]
    assert order == sorted(order)
    assert "4 completed, 1 failed" in page
    image = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert image and base64.b64decode(image.group(1)).startswith(b"\x89PNG")
    assert "tuner/" not in page.split("<table>")[1]  # Hyperband's bookkeeping is shown as columns, not raw
    assert score_plot_png(table, "val_loss").startswith(b"\x89PNG")
