"""Deploy component: point a pinned `tunepipe serve` InferenceService at the new champion."""

from kfp.dsl import Artifact, Input


def deploy(
    outcome: Input[Artifact],
    deploy_enabled: bool,
    deploy_settings: dict,
    export_root: str,
) -> str:
    """Sets the InferenceService's TUNEPIPE_SERVE_VERSION to the version the export step published
    (tunepipe.deploy_step); nothing when deploy is off or nothing was published.

    Args:
        outcome: The export step's outcome (published, champion_version).
        deploy_enabled: The deploy section's ``enabled``, a parameter of its own (the pipeline's condition).
        deploy_settings: The rest of the deploy section (inference_service, namespace).
        export_root: Where the version was published; the InferenceService reads the same root.

    Returns:
        What was done, as JSON.
    """
    import json

    from tunepipe import artifacts
    from tunepipe.config import section
    from tunepipe.deploy_step import deploy_step
    from tunepipe.step_folders import read_json
    from tunepipe.step_logging import configure_logging

    configure_logging()
    settings = section("deploy", deploy_settings, deploy_enabled=deploy_enabled)
    return json.dumps(deploy_step(read_json(outcome.path, artifacts.OUTCOME_FILE), settings, export_root))
