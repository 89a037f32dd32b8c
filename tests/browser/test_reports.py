"""The HTML reports in a real browser: headless Chromium (Debian's ``chromium`` package).

Each report kind (multi-class, binary with its ROC curve, regression) is built by the real
report code, opened from a file:// URL without network, screenshotted, and checked: every
``<img>`` decoded (``naturalWidth > 0``) and the page raised no error and logged none. The
check runs in a copy of the page with a small script injected first in ``<head>``; a broken
image in a control page proves the check can fail.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tunepipe.evaluation.evaluate import Evaluation
from tunepipe.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    per_class_table,
    regression_metrics,
    roc_curve,
)
from tunepipe.reports.report import build_report

pytestmark = pytest.mark.browser

CHECKER = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.src))), true);
const consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(' ')); consoleError(...args); };
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const undecoded = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.documentElement.setAttribute('data-check',
    JSON.stringify({images: images.length, undecoded: undecoded, errors: window.__errors}));
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install chromium); CI=true turns this skip into a failure")
    return found


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--window-size=1280,2000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def check_page(page: Path, tmp_path: Path) -> dict:
    """Loads a copy of ``page`` with the checker injected; returns what it found."""
    checked = tmp_path / f"checked-{page.name}"
    checked.write_text(page.read_text().replace("<head>", "<head>" + CHECKER, 1))
    result = run_chromium(tmp_path / "profile-check", "--dump-dom", checked.as_uri())
    match = re.search(r'data-check="([^"]*)"', result.stdout)
    assert match, f"the checker did not run (exit {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def screenshot(page: Path, tmp_path: Path) -> tuple[int, int]:
    """Saves a screenshot next to the page; returns its width and height from the PNG header."""
    png = page.with_suffix(".png")
    result = run_chromium(tmp_path / "profile-shot", f"--screenshot={png}", page.as_uri())
    assert png.is_file(), f"no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _history() -> dict[str, list[float]]:
    return {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.7, 0.5], "accuracy": [0.5, 0.7, 0.8],
            "val_accuracy": [0.4, 0.6, 0.75], "mae": [3.0, 2.0, 1.5], "val_mae": [3.2, 2.4, 1.8]}


def _blessing(metric: str) -> dict:
    return {"blessed": False, "forced": False, "reason": f"worse than champion version 1 in {metric}",
            "checks": [{"metric": metric, "value": 0.8, "bound": 0.9, "direction": "min", "passed": False}],
            "champion": {"version": 1, "metric": metric, "candidate": 0.8, "champion": 0.85, "margin": 0.0,
                         "passed": False, "rule": "not_worse", "difference": -0.05, "low": -0.09, "high": -0.01}}


def classification_page(tmp_path: Path, classes: list[str]) -> Path:
    rng = np.random.default_rng(len(classes))
    y_true = rng.integers(0, len(classes), 60)
    probabilities = rng.random((60, len(classes)))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    curve = None
    if len(classes) == 2:
        fpr, tpr, thresholds = roc_curve(y_true == 1, probabilities[:, 1])
        curve = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}
    evaluation = Evaluation(
        "classification", 60, classification_metrics(y_true, probabilities), classes,
        confusion_matrix(y_true, probabilities.argmax(axis=1), len(classes)).tolist(),
        per_class_table(y_true, probabilities, classes), curve,
        {"folds": 3, "rows": 200, "epochs": 3, "metrics": {"accuracy": {"mean": 0.8, "std": 0.05, "values": []}}},
    )
    page = tmp_path / f"classification-{len(classes)}.html"
    page.write_text(build_report("m: classification", evaluation.__dict__, _history(), _blessing("accuracy"),
                                 y_true, probabilities))
    return page


def regression_page(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    y_true = rng.normal(10, 3, 80)
    y_pred = y_true + rng.normal(0, 1, 80)
    evaluation = Evaluation("regression", 80, regression_metrics(y_true, y_pred), [], [])
    page = tmp_path / "regression.html"
    page.write_text(build_report("m: regression", evaluation.__dict__, _history(), _blessing("rmse"), y_true, y_pred))
    return page


@pytest.mark.parametrize(
    ("kind", "images"), [("multiclass", 2), ("binary", 3), ("regression", 2)],
)
def test_report_renders_every_image_without_errors(kind: str, images: int, tmp_path: Path) -> None:
    page = {"multiclass": lambda: classification_page(tmp_path, ["a", "b", "c"]),
            "binary": lambda: classification_page(tmp_path, ["no", "yes"]),
            "regression": lambda: regression_page(tmp_path)}[kind]()
    found = check_page(page, tmp_path)
    assert found == {"images": images, "undecoded": 0, "errors": []}
    width, height = screenshot(page, tmp_path)
    assert (width, height) == (1280, 2000)


def test_the_check_catches_a_broken_image_and_a_script_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head></head><body><img src="data:image/png;base64,AAAA">'
                    "<script>undefined_function()</script></body></html>")
    found = check_page(page, tmp_path)
    assert found["images"] == 1 and found["undecoded"] == 1
    assert any("undefined_function" in error for error in found["errors"])
