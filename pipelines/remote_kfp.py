"""The Kubeflow Pipelines side of the cluster commands: one ``kfp.Client`` and what they ask of it.

:class:`Cluster` wraps ``kfp.Client`` so that every expected failure (server unreachable, a
request refused, a name that matches nothing) is a :class:`~pipelines.errors.ClusterError`
naming the endpoint, never a traceback. Nothing here stores credentials: a token given on the
command line lives in the client object of this process only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import kfp
import urllib3
import yaml
from kfp_server_api.exceptions import ApiException

from pipelines.errors import ClusterError

# kfp.Client reads these at construction (kfp/client/client.py), not at import.
ENDPOINT_ENV = "KF_PIPELINES_ENDPOINT"
UI_ENDPOINT_ENV = "KF_PIPELINES_UI_ENDPOINT"
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"})
NEWEST_FIRST = "created_at desc"


def _api_message(error: ApiException) -> str:
    """The server's own explanation from an error body (``{"error"/"message": ...}``), else its reason."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict):
        text = body.get("message") or body.get("error")
        if text:
            return str(text).strip()
    return (str(error.body).strip()[:300] if error.body else "") or str(error.reason or "")


def _connection_reason(error: urllib3.exceptions.HTTPError) -> tuple[str | None, str]:
    """(``scheme://host:port`` tried, short reason) from a urllib3 connection error."""
    pool = getattr(error, "pool", None)
    where = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else None
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    if "] " in text:  # "<...HTTPConnection object at 0x..>: Failed to establish ...: [Errno 111] Connection refused"
        text = text.rsplit("] ", 1)[-1]
    return where, text.strip()


class Cluster:
    """A connected ``kfp.Client`` plus the lookups the commands share.

    Args:
        host: API endpoint; ``None`` lets kfp.Client choose (``$KF_PIPELINES_ENDPOINT``, then the
            in-cluster service, then the kube config's API-server proxy).
        namespace: Kubernetes namespace for experiments and runs (multi-user deployments).
        existing_token: Bearer token sent with every request.
        ssl_ca_cert: CA bundle to verify the endpoint's TLS certificate.
    """

    def __init__(
        self,
        host: str | None = None,
        namespace: str | None = None,
        existing_token: str | None = None,
        ssl_ca_cert: str | None = None,
    ) -> None:
        self.host = host or os.environ.get(ENDPOINT_ENV) or None
        self.namespace = namespace
        options: dict[str, Any] = {"host": host, "existing_token": existing_token, "ssl_ca_cert": ssl_ca_cert}
        if namespace:
            options["namespace"] = namespace  # kfp.Client's default 'kubeflow' means "not given"
        # kfp.Client warns about server versions on every construction, and prints (to stdout)
        # "Failed to load kube config." when it falls back with no host: keep stdout for our output.
        with self._translated(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore", FutureWarning)
            self.client = kfp.Client(**options)

    @property
    def where(self) -> str:
        return self.host or f"kfp.Client's default endpoint: no --host and ${ENDPOINT_ENV} unset"

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except ApiException as error:
            if not error.status:  # raised by the client itself, e.g. for a TLS failure
                raise ClusterError(f"cannot talk to Kubeflow Pipelines at {self.where}: {error.reason}") from None
            hint = " (check --existing-token)" if error.status in (401, 403) else ""
            raise ClusterError(
                f"Kubeflow Pipelines at {self.where} answered {error.status} {error.reason}: "
                f"{_api_message(error)}{hint}", transient=error.status == 429 or error.status >= 500,
                status=error.status,
            ) from None
        except urllib3.exceptions.HTTPError as error:
            tried, reason = _connection_reason(error)
            where = self.where if tried is None or (self.host and tried in self.host) else f"{tried} ({self.where})"
            raise ClusterError(f"cannot reach Kubeflow Pipelines at {where}: {reason}", transient=True) from None
        except TimeoutError as error:  # kfp.Client gave up on /healthz after its retries
            raise ClusterError(f"Kubeflow Pipelines at {self.where} is not healthy: {error}", transient=True) from None

    def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls a kfp.Client method with errors translated and its link printing silenced."""
        with self._translated(), contextlib.redirect_stdout(io.StringIO()):
            return method(*args, **kwargs)

    def ui_url(self, fragment: str) -> str | None:
        """UI link the way kfp.Client derives it (``$KF_PIPELINES_UI_ENDPOINT``, else the host); None in-cluster."""
        ui_host = os.environ.get(UI_ENDPOINT_ENV) or self.host
        if not ui_host:
            return None
        prefix = ui_host if ui_host.startswith(("http://", "https://")) else "http://" + ui_host
        return f"{prefix.rstrip('/')}/#/{fragment}"

    # -- pipelines -------------------------------------------------------------------------

    def pipeline_id(self, name: str) -> str | None:
        """Id of the pipeline named ``name``; None if there is none."""
        try:
            return self.call(self.client.get_pipeline_id, name)
        except ValueError as error:  # more than one pipeline with that name
            raise ClusterError(f"{error} ({self.where})") from None

    def require_pipeline_id(self, name: str) -> str:
        pipeline_id = self.pipeline_id(name)
        if pipeline_id is None:
            raise ClusterError(f"no pipeline named {name!r} at {self.where}; upload it first (tunepipe upload)")
        return pipeline_id

    def latest_version(self, pipeline_id: str) -> Any:
        """The pipeline's most recently created version."""
        response = self.call(self.client.list_pipeline_versions, pipeline_id, page_size=1, sort_by=NEWEST_FIRST)
        versions = response.pipeline_versions or []
        if not versions:
            raise ClusterError(f"pipeline {pipeline_id} has no versions at {self.where}")
        return versions[0]

    def upload(self, package: Path, name: str, version_name: str, description: str | None) -> tuple[Any, bool]:
        """Uploads ``package`` as pipeline ``name``, or as a new version if it exists; (version, created)."""
        pipeline_id = self.pipeline_id(name)
        if pipeline_id is None:
            pipeline = self.call(self.client.upload_pipeline, str(package), pipeline_name=name, description=description)
            return self.latest_version(pipeline.pipeline_id), True
        version = self.call(
            self.client.upload_pipeline_version, str(package), pipeline_version_name=version_name,
            pipeline_id=pipeline_id, description=description,
        )
        return version, False

    # -- experiments -----------------------------------------------------------------------

    def experiment_id(self, name: str, create: bool = False) -> str:
        """Id of the experiment ``name``; created if missing when ``create``."""
        if create:
            try:
                return self.call(self.client.create_experiment, name, namespace=self.namespace).experiment_id
            except ClusterError as error:  # created by another client between kfp.Client's lookup and its create
                if error.status != HTTPStatus.CONFLICT:
                    raise
        try:
            return self.call(self.client.get_experiment, experiment_name=name, namespace=self.namespace).experiment_id
        except ValueError as error:  # none, or several, with that name
            raise ClusterError(f"{error} ({self.where})") from None

    # -- runs ------------------------------------------------------------------------------

    def submit(
        self, experiment_id: str, run_name: str, pipeline_id: str, version_id: str,
        parameters: dict[str, Any], service_account: str | None, caching: bool, pipeline_root: str | None = None,
    ) -> Any:
        """Starts one run of a pipeline version; ``pipeline_root`` (None: the spec's) is the run's artifact root.

        With ``caching`` off the version's spec is fetched and submitted inline with caching
        turned off for every task: the run API has no caching switch for a version reference
        (kfp.Client ignores ``enable_caching`` there), so the run is not linked to the version.
        """
        common = {"params": parameters, "service_account": service_account, "pipeline_root": pipeline_root}
        if caching:
            return self.call(
                self.client.run_pipeline, experiment_id, run_name,
                pipeline_id=pipeline_id, version_id=version_id, **common,
            )
        version = self.call(self.client.get_pipeline_version, pipeline_id, version_id)
        spec = version.pipeline_spec
        if not spec:
            raise ClusterError(f"pipeline version {version_id} at {self.where} holds no pipeline spec")
        documents = [spec["pipeline_spec"], spec["platform_spec"]] if "platform_spec" in spec else [spec]
        with tempfile.TemporaryDirectory(prefix="tunepipe-") as folder:
            package = Path(folder) / "pipeline.yaml"
            package.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
            return self.call(
                self.client.run_pipeline, experiment_id, run_name,
                pipeline_package_path=str(package), enable_caching=False, **common,
            )

    def runs(self, experiment_id: str | None, limit: int) -> list[Any]:
        response = self.call(
            self.client.list_runs, page_size=limit, sort_by=NEWEST_FIRST,
            experiment_id=experiment_id, namespace=self.namespace,
        )
        return response.runs or []

    def run_named(self, experiment_id: str, name: str) -> str | None:
        """The id of the run called ``name`` in the experiment (the oldest, if several), or None."""
        name_filter = json.dumps({"predicates": [{"operation": 1, "key": "display_name", "stringValue": name}]})
        response = self.call(self.client.list_runs, experiment_id=experiment_id, namespace=self.namespace,
                             filter=name_filter, page_size=10, sort_by="created_at")
        runs = [run for run in response.runs or [] if run.display_name == name]  # the filter is the server's
        return runs[0].run_id if runs else None

    def wait(self, run_id: str, timeout: float | None, poll: float, say: Callable[[str], None]) -> tuple[bool, str]:
        """Polls a run until it ends; (succeeded, why not). ``say`` gets one line per state change."""
        start = time.monotonic()
        run_state: str | None = None
        task_states: dict[str, str] = {}
        while True:
            run = self.call(self.client.get_run, run_id)
            elapsed = time.monotonic() - start
            tasks = (run.run_details.task_details if run.run_details else None) or []
            for task in tasks:
                key = task.task_id or task.display_name or "?"
                state = task.state or "RUNTIME_STATE_UNSPECIFIED"
                if task_states.get(key) != state:
                    task_states[key] = state
                    detail = f" ({task.error.message})" if task.error and task.error.message else ""
                    say(f"{elapsed:7.1f}s  task {task.display_name or key}: {state}{detail}")
            state = run.state or "RUNTIME_STATE_UNSPECIFIED"
            if state != run_state:
                run_state = state
                say(f"{elapsed:7.1f}s  run {run_id}: {state}")
            if state in TERMINAL_STATES:
                if state == "SUCCEEDED":
                    return True, ""
                reason = run.error.message if run.error and run.error.message else "no reason given"
                failed = [task.display_name or task.task_id for task in tasks if task.state == "FAILED"]
                suffix = f"; failed tasks: {', '.join(failed)}" if failed else ""
                return False, f"run {run_id} ended {state}: {reason}{suffix}"
            if timeout is not None and elapsed >= timeout:
                return False, f"run {run_id} still {state} after {timeout:g} s (--timeout); it keeps running"
            time.sleep(poll if timeout is None else max(0.0, min(poll, timeout - elapsed)))

    # -- recurring runs --------------------------------------------------------------------

    def schedule(
        self, experiment_id: str, name: str, pipeline_id: str, version_id: str | None, *,
        cron: str | None, interval: int | None, max_concurrency: int, catchup: bool,
        parameters: dict[str, Any], service_account: str | None, pipeline_root: str | None = None,
    ) -> Any:
        """Creates an enabled recurring run of a pipeline version; ``version_id`` None follows the newest.

        kfp.Client (2.17) insists on a version id with a pipeline id, so the version-less body
        (KFP's v2beta1 API makes ``pipeline_version_id`` optional since kubeflow/pipelines#11560:
        the backend then takes the newest version at each trigger) is sent through its generated
        API object; every other field is the one ``create_recurring_run`` would send.
        """
        if version_id is not None:
            return self.call(
                self.client.create_recurring_run, experiment_id, name,
                cron_expression=cron, interval_second=interval, max_concurrency=max_concurrency,
                no_catchup=not catchup, params=parameters, pipeline_id=pipeline_id, version_id=version_id,
                service_account=service_account, pipeline_root=pipeline_root,
            )
        import kfp_server_api as api

        trigger = (api.V2beta1Trigger(cron_schedule=api.V2beta1CronSchedule(cron=cron)) if cron is not None
                   else api.V2beta1Trigger(periodic_schedule=api.V2beta1PeriodicSchedule(interval_second=interval)))
        body = api.V2beta1RecurringRun(
            experiment_id=experiment_id, display_name=name, mode=api.RecurringRunMode.ENABLE, trigger=trigger,
            pipeline_version_reference=api.V2beta1PipelineVersionReference(pipeline_id=pipeline_id),
            runtime_config=api.V2beta1RuntimeConfig(pipeline_root=pipeline_root, parameters=parameters),
            max_concurrency=max_concurrency, no_catchup=not catchup, service_account=service_account,
        )
        service = self.client._recurring_run_api  # the client's own API object: kfp.Client has no public twin
        return self.call(service.recurring_run_service_create_recurring_run, recurring_run=body)

    def schedules(self, experiment_id: str | None) -> list[Any]:
        response = self.call(
            self.client.list_recurring_runs, page_size=100, sort_by=NEWEST_FIRST,
            experiment_id=experiment_id, namespace=self.namespace,
        )
        return response.recurring_runs or []

    def delete_schedule(self, recurring_run_id: str) -> None:
        self.call(self.client.delete_recurring_run, recurring_run_id)


def format_time(moment: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC; ``-`` for unset (the API sends 1970-01-01 for "not yet")."""
    if not isinstance(moment, datetime) or moment.year <= 1970:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_trigger(trigger: Any) -> str:
    if trigger is not None and trigger.cron_schedule is not None:
        return f"cron {trigger.cron_schedule.cron}"
    if trigger is not None and trigger.periodic_schedule is not None:
        return f"every {trigger.periodic_schedule.interval_second} s"
    return "-"
