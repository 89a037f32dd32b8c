"""The compiled pipeline matches the checked-in golden YAML (``make golden`` updates it)."""

import difflib
from pathlib import Path

import pytest
import yaml
from normalize import GOLDEN_COMPILE_ARGS, normalized_yaml  # pytest puts this folder on sys.path

from pipelines.cli import main
from tunepipe.config import Config, pipeline_arguments
from tunepipe.config.parameters import parameter_descriptions, plain_text

pytestmark = pytest.mark.golden
GOLDEN = Path(__file__).with_name("pipeline.yaml")


def pipeline_spec(text: str) -> dict:
    """The pipeline document of a compiled file (a second document holds Kubernetes settings)."""
    return next(yaml.safe_load_all(text))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> str:
    output = tmp_path_factory.mktemp("compile") / "pipeline.yaml"
    assert main(["compile", "-o", str(output), *GOLDEN_COMPILE_ARGS]) == 0
    return output.read_text()


def test_compiled_pipeline_matches_golden(compiled: str) -> None:
    expected = GOLDEN.read_text()
    actual = normalized_yaml(compiled)
    diff = "\n".join(
        difflib.unified_diff(expected.splitlines(), actual.splitlines(), "golden", "compiled", lineterm="")
    )
    assert actual == expected, f"compiled pipeline changed; review and run `make golden`:\n{diff[:6000]}"


def test_every_config_value_is_a_pipeline_parameter(compiled: str) -> None:
    spec = pipeline_spec(compiled)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    config = Config.model_validate({"data": {"uri": "x.csv", "label": "y"}, "export": {"export_root": "out"}})
    assert set(pipeline_arguments(config)) <= set(parameters)
    assert all("defaultValue" in parameters[name] for name in parameters), "every knob needs a working default"
    assert all(parameters[name].get("description") for name in parameters), "every parameter needs a description"


def test_parameter_descriptions_come_from_the_models(compiled: str) -> None:
    """No second copy: the UI's descriptions are the models' field docs, markup removed."""
    parameters = pipeline_spec(compiled)["root"]["inputDefinitions"]["parameters"]
    descriptions = parameter_descriptions()
    assert set(parameters) == set(descriptions)
    for name, text in descriptions.items():
        assert " ".join(parameters[name]["description"].split()) == " ".join(plain_text(text).split()), name
    assert "min_delta" in parameters["training"]["description"]


def test_compile_sets_the_image_of_every_step(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(output), "--image", "registry.example/tunepipe:9.9"]) == 0
    executors = pipeline_spec(output.read_text())["deploymentSpec"]["executors"]
    assert len(executors) == 10  # nine steps (validate first) and the optional deploy
    for executor in executors.values():
        assert executor["container"]["image"] == "registry.example/tunepipe:9.9"
        assert "pip install" not in " ".join(executor["container"]["command"])


def executors_by_step(text: str) -> dict:
    return {name.removeprefix("exec-"): body["container"] for name, body in
            pipeline_spec(text)["deploymentSpec"]["executors"].items()}


def platform_spec(text: str) -> dict:
    documents = list(yaml.safe_load_all(text))
    return documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(documents) > 1 else {}


def test_only_tune_and_train_request_gpus_on_the_gpu_pool(compiled: str) -> None:
    containers = executors_by_step(compiled)
    gpu_steps = {step for step, container in containers.items() if "accelerator" in container.get("resources", {})}
    assert gpu_steps == {"tune", "train"}
    for step in gpu_steps:
        assert containers[step]["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    kubernetes = platform_spec(compiled)  # every task has settings (scratch, security context); only these place
    placed = {name: settings for name, settings in kubernetes.items() if "nodeSelector" in settings}
    assert set(placed) == {name for name, settings in kubernetes.items() if "tolerations" in settings}
    assert set(placed) == {"exec-tune", "exec-train"}
    for settings in placed.values():
        assert settings["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert settings["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]


def _retried_tasks(text: str) -> dict:
    return {name: task["retryPolicy"] for name, task in pipeline_spec(text)["root"]["dag"]["tasks"].items()
            if "retryPolicy" in task}


def test_tune_and_train_retry_for_preemption_in_gpu_and_cpu_builds(compiled: str, tmp_path: Path) -> None:
    cpu_build = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(cpu_build), "--no-gpu"]) == 0
    expected = {"maxRetryCount": 3, "backoffDuration": "60s"}
    for text in (compiled, cpu_build.read_text()):
        retried = _retried_tasks(text)
        assert set(retried) == {"tune", "train"}  # ingest, evaluate, ...: a retry would only repeat the failure
        for policy in retried.values():
            assert {key: policy[key] for key in expected} == expected


def test_local_runs_do_not_retry(tmp_path: Path) -> None:
    from kfp import compiler

    from pipelines.pipeline import create_pipeline

    output = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(create_pipeline(retries=False), str(output))
    assert _retried_tasks(output.read_text()) == {}


def test_gpu_image_goes_to_gpu_steps_only(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(output), "--image", "r/cpu:1", "--gpu-image", "r/gpu:1"]) == 0
    images = {step: container["image"] for step, container in executors_by_step(output.read_text()).items()}
    assert {step for step, image in images.items() if image == "r/gpu:1"} == {"tune", "train"}
    assert set(images.values()) == {"r/cpu:1", "r/gpu:1"}


CPU_DIGEST = "registry.example/tunepipe@sha256:" + "0123456789abcdef" * 4
GPU_DIGEST = "registry.example/tunepipe-gpu:9.9@sha256:" + "fedcba9876543210" * 4


def test_digest_images_reach_the_yaml_unchanged(tmp_path: Path) -> None:
    """Pinned by digest, the image string in the KFP cache key follows the image's content."""
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(output), "--image", CPU_DIGEST, "--gpu-image", GPU_DIGEST]) == 0
    images = {step: container["image"] for step, container in executors_by_step(output.read_text()).items()}
    assert {step for step, image in images.items() if image == GPU_DIGEST} == {"tune", "train"}
    assert set(images.values()) == {CPU_DIGEST, GPU_DIGEST}


@pytest.mark.parametrize("image", [
    "registry.example/tunepipe@sha256:" + "0" * 63,  # one digit short
    "registry.example/tunepipe@sha256:" + "A" * 64,  # upper case
    "registry.example/tunepipe@sha512:" + "0" * 64,  # another algorithm
    "@sha256:" + "0" * 64,  # no repository
    "registry.example/tunepipe@latest",
])
@pytest.mark.parametrize("option", ["--image", "--gpu-image"])
def test_malformed_digest_is_refused_naming_it(tmp_path: Path, capsys, option: str, image: str) -> None:
    output = tmp_path / "pipeline.yaml"
    with pytest.raises(SystemExit) as exit_:
        main(["compile", "-o", str(output), option, image])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: image {image!r} is not a digest reference" in error
    assert "REPO@sha256:<64 lowercase hex digits>" in error
    assert not output.exists()


def test_no_gpu_compiles_without_any_gpu_request(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(output), "--no-gpu"]) == 0
    text = output.read_text()
    assert "nvidia.com/gpu" not in text and "accelerator" not in text
    placement = {"nodeSelector", "tolerations"}
    assert not [settings for settings in platform_spec(text).values() if placement & set(settings)]


def test_fingerprint_step_is_never_cached_and_waits_for_validate(compiled: str) -> None:
    tasks = pipeline_spec(compiled)["root"]["dag"]["tasks"]
    assert tasks["fingerprint"]["cachingOptions"] == {}
    assert tasks["ingest"]["cachingOptions"] == {"enableCache": True}
    assert tasks["fingerprint"]["dependentTasks"] == ["validate"]  # no data is read before the check
    assert tasks["validate"]["cachingOptions"] == {"enableCache": True}  # its outcome is its cache key's
    assert "dependentTasks" not in tasks["validate"]


def test_normalization_only_touches_volatile_fields() -> None:
    text = "sdkVersion: kfp-2.17.3\nimage: a:1\nother: {image: b:2, keep: 3}\n"
    assert yaml.safe_load(normalized_yaml(text)) == {
        "sdkVersion": "SDK_VERSION", "image": "IMAGE", "other": {"image": "IMAGE", "keep": 3},
    }


def test_every_task_has_cpu_and_memory_requests_and_limits(compiled: str) -> None:
    from pipelines.resources import DEFAULT_RESOURCES

    containers = executors_by_step(compiled)
    assert set(containers) == set(DEFAULT_RESOURCES)  # every task, deploy and record-refusal included
    for step, container in containers.items():
        expected = DEFAULT_RESOURCES[step]
        assert {key: value for key, value in container["resources"].items() if key.startswith("resource")} == {
            "resourceCpuRequest": expected.cpu_request, "resourceCpuLimit": expected.cpu_limit,
            "resourceMemoryRequest": expected.memory_request, "resourceMemoryLimit": expected.memory_limit,
        }, step
    assert containers["evaluate"]["resources"]["resourceMemoryLimit"] == "2560Mi"  # 2 x 1235 MiB, rounded up


def test_compile_overrides_one_steps_resources(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(output), "--memory", "train=4Gi:8Gi", "--cpu", "train=2:4"]) == 0
    containers = executors_by_step(output.read_text())
    assert {key: containers["train"]["resources"][key] for key in
            ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit")} == {
        "resourceCpuRequest": "2", "resourceCpuLimit": "4", "resourceMemoryRequest": "4Gi",
        "resourceMemoryLimit": "8Gi"}
    assert containers["tune"]["resources"]["resourceMemoryLimit"] == "2432Mi"  # the other steps keep the defaults


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--memory", "trian=1Gi:2Gi", "--memory 'trian=1Gi:2Gi': unknown step 'trian'"),
    ("--memory", "train=1Gi", "--memory 'train=1Gi': expected train=REQUEST:LIMIT"),
    ("--cpu", "train=two:4", "--cpu 'train=two:4': expected train=REQUEST:LIMIT"),
    ("--memory", "train=4Gi:2048Mi", "--memory 'train=4Gi:2048Mi': the request 4Gi is above the limit 2048Mi"),
    ("--cpu", "tune=1500m:1", "--cpu 'tune=1500m:1': the request 1500m is above the limit 1"),
])
def test_a_bad_resource_override_is_one_error_line(tmp_path: Path, capsys, option: str, value: str,
                                                   message: str) -> None:
    assert main(["compile", "-o", str(tmp_path / "p.yaml"), option, value]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")


def test_compile_pipeline_root_becomes_the_default_root(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "-o", str(output), "--pipeline-root", "gs://bucket/root"]) == 0
    assert pipeline_spec(output.read_text())["defaultPipelineRoot"] == "gs://bucket/root"
    assert main(["compile", "-o", str(output), "--pipeline-root", "bucket/root"]) == 2  # one error line, no file change
    assert pipeline_spec(output.read_text())["defaultPipelineRoot"] == "gs://bucket/root"
