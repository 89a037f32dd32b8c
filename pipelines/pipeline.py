"""The tunepipe pipeline: the declared DAG (:data:`tunepipe.dag.DAG`) with its run's policies.

:func:`create_pipeline` creates a task per declared step (:func:`pipelines.assembly.add_tasks`)
and sets, by task, what a run on a cluster needs: images and GPU placement, retries, caching,
resources and the security context. Every setting of a
run is a pipeline parameter with a default that works (the shipped sample data, publishing
into the run's own artifacts), so a run can be started from the Kubeflow UI with one click:
the values a team changes there are named parameters, every other setting travels in its
configuration section's dict (names, defaults and descriptions derived from the models by
:mod:`tunepipe.config.parameters`). Placement, caching and retry policy are set on tasks here,
never in components.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kfp import dsl, kubernetes

from components import build_components
from pipelines.assembly import add_tasks, channel, task_name
from pipelines.placement import GpuPlacement
from pipelines.resources import StepResources
from tunepipe.config.parameters import pipeline_defaults, pipeline_docstring
from tunepipe.dag import REFERENCE, load
from tunepipe.identity import IMAGE_UID, PIPELINE_NAME

PIPELINE_DESCRIPTION = "Data to a tuned, evaluated, exported Keras model."
PIPELINE_SUMMARY = "Trains, tunes, evaluates and exports a Keras model for a tabular or image dataset."
# Every parameter's default, derived from the configuration models (tunepipe.config.parameters).
_DEFAULTS = pipeline_defaults()
# Nodes vanish: preemptible (spot) GPU and CPU pools, drains, autoscaler scale-downs. A retried tune
# or train step starts again on another node and resumes from the tuner root. The policy of both.
RETRIES = 3
RETRY_BACKOFF = "60s"
RETRIED_STEPS = frozenset({"tune", "train"})
# Tasks never served from the cache, and why. Every other task may be, validate included: its outcome
# depends on the parameters and the image alone (both in the cache key), and a failed check is never cached.
UNCACHED_STEPS = {
    "fingerprint": "must see today's data, also in scheduled runs",
    "deploy": "acts on the cluster: a cached 'done' would patch nothing",
}
# Every task's scratch space: TMPDIR, HOME and the library caches of the image all point here.
SCRATCH_VOLUME, SCRATCH_PATH = "scratch", "/tmp"


def _least_privilege(task: Any, security_context: bool) -> Any:
    """An emptyDir at /tmp and, when ``security_context``, the image's non-root user for ``task``.

    kfp-kubernetes 2.17 sets only runAsUser, runAsGroup and runAsNonRoot on the task's container
    (KFP adds the rest, its docstring says; see k8s/README.md); no readOnlyRootFilesystem, fsGroup or pod-level
    context. No size limit on the emptyDir: the tune step stages its input splits there.
    """
    kubernetes.empty_dir_mount(task, volume_name=SCRATCH_VOLUME, mount_path=SCRATCH_PATH)
    if security_context:
        kubernetes.set_security_context(task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True)
    return task


def _place_on_gpu(task: Any, gpus: Any, placement: GpuPlacement | None) -> Any:
    """Requests GPUs and the GPU node pool for ``task``; nothing when ``placement`` is None."""
    if placement is None:
        return task
    task.set_accelerator_type(placement.resource).set_accelerator_limit(gpus)
    if placement.node_selector:
        kubernetes.add_node_selector(task, *placement.node_selector)
    if placement.toleration_key:
        kubernetes.add_toleration(
            task, key=placement.toleration_key, operator="Exists", effect=placement.toleration_effect
        )
    return task


def _retry_on_preemption(task: Any, retries: bool) -> Any:
    """Up to :data:`RETRIES` retries, :data:`RETRY_BACKOFF` apart, for ``task`` when ``retries``."""
    return task.set_retry(num_retries=RETRIES, backoff_duration=RETRY_BACKOFF) if retries else task


def _set_resources(task: Any, resources: StepResources | None) -> Any:
    """CPU and memory requests and limits of ``task``; nothing when ``resources`` is None."""
    if resources is None:
        return task
    task.set_cpu_request(resources.cpu_request).set_cpu_limit(resources.cpu_limit)
    return task.set_memory_request(resources.memory_request).set_memory_limit(resources.memory_limit)


def create_pipeline(
    image: str | None = None, gpu_image: str | None = None, placement: GpuPlacement | None = None,
    security_context: bool = True, resources: Mapping[str, StepResources] | None = None,
    pipeline_root: str | None = None, retries: bool = True, dag_reference: str = REFERENCE,
) -> Any:
    """Returns the pipeline function with every component built for its image.

    Args:
        image: Project image of the CPU steps; ``None`` means ``tunepipe:<version>``
            (ignored by ``kfp.local.SubprocessRunner``, which runs in this environment).
        gpu_image: Image of the tune and train steps (default: ``image``).
        placement: GPU resource, node selector and toleration of the tune and train steps;
            ``None`` (local runs, clusters without GPUs) requests no GPU.
        security_context: Give every task the image's non-root user as its security context
            (default on); off for KFP backends older than the kfp-kubernetes field (KFP 2.14,
            as on the kind cluster), which refuse a spec that holds it.
        resources: CPU and memory requests and limits per step name (``tune``, ``record-refusal``:
            :data:`pipelines.resources.DEFAULT_RESOURCES` on a cluster); ``None`` (local runs,
            where kfp.local ignores them with a warning per task) sets none.
        pipeline_root: The spec's ``defaultPipelineRoot`` (checked by
            :func:`pipelines.pipeline_root.check_pipeline_root`); ``None`` (default) leaves the
            backend's default, and a run may still name its own.
        retries: Retry the tune and train steps (:data:`RETRIED_STEPS`) on failure, in every
            cluster build, GPU or not (default on): a node lost mid-step costs a restart that
            resumes, not the run. Local runs turn it off: there a failure is bad data or a bug,
            and a retry would repeat it after minutes of backoff.
        dag_reference: Where the declared steps are, ``module:attribute`` (default: tunepipe's); the
            pipeline's parameters stay its own.
    """
    dag = load(dag_reference)
    steps = build_components(image, gpu_image, dag_reference)

    def tunepipe_pipeline(
        data_uri: str = _DEFAULTS["data_uri"],
        label: str = _DEFAULTS["label"],
        task: str = _DEFAULTS["task"],
        seed: int = _DEFAULTS["seed"],
        tune_max_epochs: int = _DEFAULTS["tune_max_epochs"],
        tune_iterations: int = _DEFAULTS["tune_iterations"],
        train_max_epochs: int = _DEFAULTS["train_max_epochs"],
        tuner_root: str = _DEFAULTS["tuner_root"],
        export_root: str = _DEFAULTS["export_root"],
        model_name: str = _DEFAULTS["model_name"],
        thresholds: dict = _DEFAULTS["thresholds"],
        gpu_count: int = _DEFAULTS["gpu_count"],
        data: dict = _DEFAULTS["data"],
        cleaning: dict = _DEFAULTS["cleaning"],
        images: dict = _DEFAULTS["images"],
        split: dict = _DEFAULTS["split"],
        preprocessing: dict = _DEFAULTS["preprocessing"],
        augmentation: dict = _DEFAULTS["augmentation"],
        tuning: dict = _DEFAULTS["tuning"],
        search_space: dict = _DEFAULTS["search_space"],
        training: dict = _DEFAULTS["training"],
        evaluation: dict = _DEFAULTS["evaluation"],
        deploy_enabled: bool = _DEFAULTS["deploy_enabled"],
        deploy: dict = _DEFAULTS["deploy"],
    ) -> str:
        arguments = {name: value for name, value in locals().items() if name in _DEFAULTS}  # the parameters
        tasks = add_tasks(dag, steps, arguments)
        for step_name, step in tasks.items():
            name = task_name(step_name)
            _least_privilege(step, security_context)
            _set_resources(step, (resources or {}).get(name))
            if name in RETRIED_STEPS:
                _retry_on_preemption(step, retries)
            if name in UNCACHED_STEPS:
                step.set_caching_options(False)
            if dag.step(step_name).gpu:
                _place_on_gpu(step, gpu_count, placement)
        # The outcome as JSON (a parameter: kfp.local resolves dsl.OneOf for parameters only).
        return dsl.OneOf(*(channel(source, arguments, tasks) for source in dag.outcome))

    tunepipe_pipeline.__doc__ = pipeline_docstring(PIPELINE_SUMMARY)
    return dsl.pipeline(name=PIPELINE_NAME, description=PIPELINE_DESCRIPTION, pipeline_root=pipeline_root)(
        tunepipe_pipeline
    )


def compile_pipeline_file(
    output: str | Path, image: str | None = None, gpu_image: str | None = None,
    placement: GpuPlacement | None = None, security_context: bool = True,
    resources: Mapping[str, StepResources] | None = None, pipeline_root: str | None = None,
) -> Path:
    """Compiles the pipeline (:func:`create_pipeline`, same arguments) into the YAML file ``output``.

    The one place the pipeline is compiled: ``tunepipe compile``, ``tunepipe upload`` and the
    golden test (through the CLI) all come here.
    """
    from kfp import compiler

    pipeline = create_pipeline(image, gpu_image, placement, security_context, resources, pipeline_root)
    compiler.Compiler().compile(pipeline, str(output))
    return Path(output)
