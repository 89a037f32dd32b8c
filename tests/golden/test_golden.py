"""The compiled pipeline matches the checked-in golden YAML (``make golden`` updates it)."""

import difflib
from pathlib import Path

import pytest
import yaml
from normalize import normalized_yaml  # pytest puts this folder on sys.path

from pipelines.cli import main
from tunepipe.config import Config, pipeline_arguments

pytestmark = pytest.mark.golden
GOLDEN = Path(__file__).with_name("pipeline.yaml")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> str:
    output = tmp_path_factory.mktemp("compile") / "pipeline.yaml"
    assert main(["compile", "-o", str(output)]) == 0
    return output.read_text()


def test_compiled_pipeline_matches_golden(compiled: str) -> None:
    expected = GOLDEN.read_text()
    actual = normalized_yaml(compiled)
    diff = "\n".join(
        difflib.unified_diff(expected.splitlines(), actual.splitlines(), "golden", "compiled", lineterm="")
    )
    assert actual == expected, f"compiled pipeline changed; review and run `make golden`:\n{diff[:6000]}"


def test_every_config_value_is_a_pipeline_parameter(compiled: str) -> None:
    spec = yaml.safe_load(compiled)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    config = Config.model_validate({"data": {"uri": "x.csv", "label": "y"}, "export": {"export_root": "out"}})
    assert set(pipeline_arguments(config)) <= set(parameters)
    assert all(parameters[name].get("description") for name in parameters), "every parameter needs a description"


def test_compile_sets_the_image_of_every_step(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(output), "--image", "registry.example/tunepipe:9.9"]) == 0
    executors = yaml.safe_load(output.read_text())["deploymentSpec"]["executors"]
    assert len(executors) == 6
    for executor in executors.values():
        assert executor["container"]["image"] == "registry.example/tunepipe:9.9"
        assert "pip install" not in " ".join(executor["container"]["command"])


def test_normalization_only_touches_volatile_fields() -> None:
    text = "sdkVersion: kfp-2.17.3\nimage: a:1\nother: {image: b:2, keep: 3}\n"
    assert yaml.safe_load(normalized_yaml(text)) == {
        "sdkVersion": "SDK_VERSION", "image": "IMAGE", "other": {"image": "IMAGE", "keep": 3},
    }
