"""The deploy step against a fake InferenceService API: it patches only a new champion, clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_cluster import FakeCluster  # tests/ is on sys.path (conftest.py)

from tunepipe import artifacts
from tunepipe.config import DeployConfig
from tunepipe.deploy_step import deploy_step, version_patch
from tunepipe.errors import DeployError
from tunepipe.identity import SERVE_VERSION_ENV

pytestmark = pytest.mark.unit
ON = DeployConfig(enabled=True, inference_service="tunepipe-serve", namespace="serving")
PUBLISHED = {artifacts.META_PUBLISHED: True, artifacts.META_CHAMPION_VERSION: 7}
REFUSED = {artifacts.META_PUBLISHED: False, artifacts.META_CHAMPION_VERSION: 6}
ROOT = "gs://bucket/models"


def served(version: str = "6") -> dict[str, Any]:
    return {
        "metadata": {"name": "tunepipe-serve", "namespace": "serving", "resourceVersion": "41"},
        "spec": {"predictor": {"containers": [{
            "name": "kserve-container", "image": "tunepipe-serve:0.1.0",
            "env": [{"name": "HOME", "value": "/tmp"}, {"name": SERVE_VERSION_ENV, "value": version}],
        }]}},
    }


def cluster(version: str = "6", **kwargs: Any) -> FakeCluster:
    """The tests' cluster API holding the pinned InferenceService ``serving/tunepipe-serve``."""
    return FakeCluster(objects={("InferenceService", "serving", "tunepipe-serve"): served(version)}, **kwargs)


GET, PATCH = ("read", "InferenceService", "tunepipe-serve", "serving"), ("patch", "InferenceService", "tunepipe-serve",
                                                                         "serving")


def test_a_new_champion_is_patched_into_the_pinned_container() -> None:
    fake = cluster()
    result = deploy_step(PUBLISHED, ON, ROOT, api=lambda: fake)
    assert result["deployed"] and result["version"] == 7
    assert fake.calls == [GET, PATCH]
    [body] = fake.patches
    assert body["metadata"] == {"resourceVersion": "41"}  # a concurrent change makes the API refuse, not be undone
    [container] = body["spec"]["predictor"]["containers"]
    assert container["env"] == [{"name": "HOME", "value": "/tmp"}, {"name": SERVE_VERSION_ENV, "value": "7"}]
    assert container["image"] == "tunepipe-serve:0.1.0"  # the whole list travels: merge patches replace lists


@pytest.mark.parametrize(
    ("settings", "outcome", "reason"),
    [(DeployConfig(), PUBLISHED, "deploy.enabled is false"), (ON, REFUSED, "nothing was published")],
)
def test_no_call_when_disabled_or_nothing_was_published(settings: DeployConfig, outcome: dict, reason: str) -> None:
    def no_client() -> FakeCluster:
        raise AssertionError("the Kubernetes client was created")

    assert deploy_step(outcome, settings, ROOT, api=no_client) == {"deployed": False, "reason": reason}


def test_the_version_already_served_is_not_patched_again() -> None:
    fake = cluster("7")
    assert not deploy_step(PUBLISHED, ON, ROOT, api=lambda: fake)["deployed"]
    assert fake.calls == [GET]


def test_a_missing_inference_service_is_named() -> None:
    with pytest.raises(DeployError, match="InferenceService serving/tunepipe-serve does not exist"):
        deploy_step(PUBLISHED, ON, ROOT, api=FakeCluster)


def test_a_refused_patch_names_the_inference_service_and_the_role() -> None:
    fake = cluster(refuse={"patch": PermissionError("403 Forbidden")})
    with pytest.raises(DeployError, match=r"patch InferenceService serving/tunepipe-serve: 403 Forbidden.*deployer"):
        deploy_step(PUBLISHED, ON, ROOT, api=lambda: fake)


def test_an_inference_service_without_the_pin_is_refused() -> None:
    tf_serving = {"metadata": {"name": "tunepipe-tfserving"}, "spec": {"predictor": {"tensorflow": {}}}}
    with pytest.raises(DeployError, match=f"no predictor container that sets {SERVE_VERSION_ENV}"):
        version_patch(tf_serving, 7)


def test_deploying_needs_an_export_root() -> None:
    with pytest.raises(DeployError, match=r"export\.export_root"):
        deploy_step(PUBLISHED, ON, "", api=cluster)


def test_the_namespace_defaults_to_the_pods_own(tmp_path: Path) -> None:
    (tmp_path / "namespace").write_text("serving\n")
    fake = cluster()
    result = deploy_step(PUBLISHED, DeployConfig(enabled=True), ROOT, api=lambda: fake,
                         namespace_file=str(tmp_path / "namespace"))
    assert result["namespace"] == "serving" and fake.calls[0] == GET
    with pytest.raises(DeployError, match=r"set deploy\.namespace"):
        deploy_step(PUBLISHED, DeployConfig(enabled=True), ROOT, api=cluster, namespace_file=str(tmp_path / "none"))


@pytest.mark.parametrize("field", [{"inference_service": "Not_A_Name"}, {"namespace": "UPPER"}])
def test_names_must_be_kubernetes_names(field: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(field))):
        DeployConfig(**field)


def test_cli_param_of_a_named_field_reaches_its_own_parameter() -> None:
    from pipelines.remote import run_parameters

    arguments = run_parameters(None, [("deploy.enabled", True), ("deploy.namespace", "tunepipe"),
                                      ("export.export_root", ROOT)])
    assert arguments == {"deploy_enabled": True, "deploy": {"namespace": "tunepipe"}, "export_root": ROOT}
