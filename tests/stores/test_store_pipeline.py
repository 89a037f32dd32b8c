"""The whole pipeline reading its data from an object store and publishing to it, through the CLI as a
user runs it, on every store.

The steps run in subprocesses that find the server through their environment (the emulator's
``STORAGE_EMULATOR_HOST`` with the client's default credentials; the standard AWS chain with
``AWS_ENDPOINT_URL``): no credentials anywhere in code or config. A first run publishes version 1 and
makes it the champion; a weakened second run is compared with that champion, read back from the
bucket, and refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from store_places import Place

import tunepipe
from tunepipe import artifacts
from tunepipe.publishing import layout

TINY = {
    "tuning": {"max_epochs": 2, "patience": 1},
    "search_space": {"hidden_layers": {"min": 1, "max": 1}, "units": {"min": 16, "max": 16}, "batch_size": [32]},
    "training": {"max_epochs": 8, "patience": 3},
    "evaluation": {"cv_folds": 0},
}


def run_cli(config: dict, cwd: Path) -> str:
    (cwd / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config", "config.yaml", "--output",
                             "out"], cwd=cwd, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout[result.stdout.rindex("tunepipe run finished"):]


def test_pipeline_reads_the_store_publishes_to_it_and_refuses_a_worse_candidate(remote: Place, tmp_path) -> None:
    penguins = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
    remote.put("data/penguins/part-0000.csv", penguins.read_bytes())
    data = {"uri": remote.uri("data/penguins/"), "label": "species"}
    root = remote.uri("models")
    export = {"export_root": root, "model_name": "penguins"}
    champion = f"models/penguins/{artifacts.CHAMPION_FILE}"
    first = run_cli({**TINY, "data": data, "export": export}, tmp_path)
    assert f"exported model:       {root}/penguins/1 (version 1), now the champion" in first, first
    assert json.loads(remote.get(champion))["version"] == 1
    names = remote.names("models/penguins/")
    assert f"models/penguins/1/{layout.MODEL_CARD_MD}" in names
    assert not [name for name in names if "/.tmp-" in name]
    assert not (tmp_path / "out" / "models").exists()  # nothing published locally instead

    weak = {**TINY, "search_space": {**TINY["search_space"], "learning_rate": {"min": 1e-6, "max": 1e-6}},
            "training": {"max_epochs": 1, "patience": 1}, "data": data, "export": export}
    second = run_cli(weak, tmp_path)
    assert "champion:             version 1: accuracy" in second
    assert "NOT blessed" in second and "worse than champion version 1" in second
    assert not [name for name in remote.names("models/penguins/") if name.startswith("models/penguins/2/")]
    assert json.loads(remote.get(champion))["version"] == 1
