"""The whole pipeline reading s3:// data and publishing to s3:// (moto's S3 server), through the CLI.

The steps run in subprocesses that find the server through the standard AWS chain in their
environment (AWS_ENDPOINT_URL, fake keys, a region): no credentials anywhere in code or config.
A first run publishes version 1 and makes it the champion; a weakened second run is compared
with that champion, read back from the bucket, and refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tunepipe
from tunepipe import artifacts
from tunepipe.publishing import layout

pytestmark = pytest.mark.s3

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


def _champion(client, bucket: str) -> dict:
    answer = client.get_object(Bucket=bucket, Key=f"models/penguins/{artifacts.CHAMPION_FILE}")
    return json.loads(answer["Body"].read())


def _names(client, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="models/penguins/")
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_pipeline_reads_s3_publishes_to_s3_and_refuses_a_worse_candidate(s3_client, bucket_name, tmp_path) -> None:
    penguins = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
    s3_client.upload_file(str(penguins), bucket_name, "data/penguins/part-0000.csv")
    data = {"uri": f"s3://{bucket_name}/data/penguins/", "label": "species"}
    root = f"s3://{bucket_name}/models"
    export = {"export_root": root, "model_name": "penguins"}
    first = run_cli({**TINY, "data": data, "export": export}, tmp_path)
    assert f"exported model:       {root}/penguins/1 (version 1), now the champion" in first, first
    assert _champion(s3_client, bucket_name)["version"] == 1
    names = _names(s3_client, bucket_name)
    assert f"models/penguins/1/{layout.MODEL_CARD_MD}" in names
    assert not [name for name in names if "/.tmp-" in name]
    assert not (tmp_path / "out" / "models").exists()  # nothing published locally instead

    weak = {**TINY, "search_space": {**TINY["search_space"], "learning_rate": {"min": 1e-6, "max": 1e-6}},
            "training": {"max_epochs": 1, "patience": 1}, "data": data, "export": export}
    second = run_cli(weak, tmp_path)
    assert "champion:             version 1: accuracy" in second
    assert "NOT blessed" in second and "worse than champion version 1" in second
    assert not [name for name in _names(s3_client, bucket_name) if name.startswith("models/penguins/2/")]
    assert _champion(s3_client, bucket_name)["version"] == 1
