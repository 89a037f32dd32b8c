"""The one Kubernetes job runner: create, watch, follow the log, clean up on every exit path.

A step that hands work to the cluster describes it as a :class:`Job` (the objects, how to read
their progress, whose log to print) and :meth:`JobRunner.run` does the rest, the same way for
the tuner's chief and workers and the train step's ``TrainJob``:

1. creates the objects in order, each owned by the step's pod (``ownerReferences``, so
   Kubernetes' garbage collector deletes them when that pod goes, even if the step was killed
   before cleaning up) and, where its kind takes one, with ``activeDeadlineSeconds``
   :data:`ACTIVE_DEADLINE_S` as the last backstop for GPU pods nobody deletes;
2. polls until the job says it is done or failed, logging each new progress line and printing
   the new lines of one pod's log (timestamped by Kubernetes; RFC 3339 sorts);
3. deletes what it created, in reverse order, whatever happens: success, failure, an API
   error, the timeout, or SIGTERM from a cancelled run (turned into the step's error so that
   the clean-up runs).

It polls with ``get`` and ``list``, never ``watch``: the Roles in ``k8s/`` grant exactly the verbs
:class:`~tunepipe.execution.k8s.api.KubernetesClusterApi` sends. :meth:`JobRunner.update` is the
other operation a step needs, for an object it does not own (the deploy step's
InferenceService): read it, derive a merge patch, send it.
"""

from __future__ import annotations

import copy
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tunepipe.errors import TunepipeError
from tunepipe.execution.k8s.api import ClusterApi

log = logging.getLogger(__name__)

# activeDeadlineSeconds of every launched object whose kind takes one: 24 h. A backstop for GPU
# pods whose step died without cleaning up (the owner references cover a deleted step pod); no
# search or training the pipeline is meant for runs longer, and both resume on the next run.
ACTIVE_DEADLINE_S = 24 * 3600
# Kinds whose spec takes activeDeadlineSeconds (a Service has none; its owner reference collects it).
DEADLINE_KINDS = frozenset({"Pod", "Job", "TrainJob"})
# Log lines of the followed pod kept for a failure's message.
FAILURE_LOG_LINES = 20


@dataclass(frozen=True)
class OwnerPod:
    """The step's own pod: the owner of every object the runner creates."""

    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """An ownerReference to this pod; ``blockOwnerDeletion`` false needs no extra RBAC."""
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid,
                "blockOwnerDeletion": False}


@dataclass(frozen=True)
class Progress:
    """What one look at a job's objects found.

    Attributes:
        done: The job finished successfully.
        failed: Why it failed; empty while it has not.
        line: A progress line, logged each time it changes; empty for none.
    """

    done: bool = False
    failed: str = ""
    line: str = ""


@dataclass(frozen=True)
class Job:
    """One piece of work a step runs on the cluster.

    Attributes:
        step: The step's name, prefixing every line the runner logs (``tune``).
        what: What the work is, in errors (``distributed tuning``).
        namespace: The step's namespace, where everything is created.
        objects: The manifests, created in this order and deleted in reverse.
        progress: Reads the objects' state through the API.
        logs: Label selector of the pods whose log the step prints (the newest one: a restarted
            pod replaces the one before); empty prints none.
        log_name: What the printed lines are prefixed with (``[name] line``).
    """

    step: str
    what: str
    namespace: str
    objects: list[dict[str, Any]]
    progress: Callable[[ClusterApi], Progress]
    logs: str = ""
    log_name: str = ""


def owned(manifest: dict[str, Any], owner: OwnerPod | None, deadline_s: int = ACTIVE_DEADLINE_S) -> dict[str, Any]:
    """A copy of ``manifest`` as the runner creates it: owned by ``owner`` and with the deadline."""
    stamped = copy.deepcopy(manifest)
    if owner is not None:
        stamped["metadata"]["ownerReferences"] = [owner.reference()]
    if stamped["kind"] in DEADLINE_KINDS:
        stamped["spec"]["activeDeadlineSeconds"] = deadline_s
    return stamped


class _LogFollower:
    """Prints the followed pod's log lines not printed yet, keeping the last few for an error."""

    def __init__(self, api: ClusterApi, job: Job) -> None:
        self.api, self.job, self.after = api, job, ""
        self.recent: list[str] = []

    def follow(self) -> None:
        pods = self.api.pod_names(self.job.logs, self.job.namespace) if self.job.logs else []
        if not pods:
            return
        for line in self.api.log_lines(pods[-1], self.job.namespace):  # the newest: a restarted pod
            stamp, _, text = line.partition(" ")
            if stamp > self.after:
                self.after = stamp
                log.info("%s: [%s] %s", self.job.step, self.job.log_name, text)
                self.recent = [*self.recent, text][-FAILURE_LOG_LINES:]


@contextmanager
def sigterm_raises(error: TunepipeError) -> Iterator[None]:
    """Turns SIGTERM (a cancelled run deleting the step's pod) into ``error``, so cleanup runs."""

    def _raise(signum: int, frame: Any) -> None:
        raise error

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class JobRunner:
    """Runs :class:`Job` objects for one step (see the module docstring).

    Args:
        api: The cluster API.
        owner: The step's pod, owner of everything created; ``None`` only in tests.
        error: The step's error type, raised on failure, timeout or SIGTERM.
        poll_s: Seconds between looks at the job (default 10: progress within seconds of a
            trial or epoch, a few API calls a minute).
        timeout_s: Give up after this long; ``None`` (default) waits for the objects' own deadline.
    """

    def __init__(self, api: ClusterApi, owner: OwnerPod | None, error: type[TunepipeError],
                 poll_s: float = 10.0, timeout_s: float | None = None) -> None:
        self.api, self.owner, self.error = api, owner, error
        self.poll_s, self.timeout_s = poll_s, timeout_s

    def run(self, job: Job) -> None:
        """Creates ``job``'s objects, waits until it is done, and always deletes them.

        Raises:
            TunepipeError: Of the runner's type: the job failed (with the followed pod's last
                log lines), the timeout passed, or the step was terminated. API errors pass
                through, after the clean-up.
        """
        created: list[dict[str, Any]] = []
        cancelled = self.error(f"the {job.step} step was terminated (SIGTERM); {job.what} cancelled")
        try:
            with sigterm_raises(cancelled):
                for manifest in job.objects:
                    self.api.create(owned(manifest, self.owner))
                    created.append(manifest)
                self._watch(job)
        finally:
            self._delete(job, created)

    def _watch(self, job: Job) -> None:
        follower, started, last = _LogFollower(self.api, job), time.monotonic(), ""
        while True:
            follower.follow()
            progress = job.progress(self.api)
            if progress.line and progress.line != last:
                log.info("%s: %s", job.step, progress.line)
                last = progress.line
            if progress.done:
                return
            if progress.failed:
                follower.follow()  # the lines written since the last look: usually the cause
                tail = "\n".join(follower.recent)
                lines = f": last log lines of {job.log_name}:\n{tail}" if tail else ""
                raise self.error(f"{job.what}: {progress.failed}{lines}")
            if self.timeout_s is not None and time.monotonic() - started > self.timeout_s:
                raise self.error(f"{job.what} did not finish within {self.timeout_s:.0f} s")
            time.sleep(self.poll_s)

    def _delete(self, job: Job, created: list[dict[str, Any]]) -> None:
        for manifest in reversed(created):
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            try:
                self.api.delete(kind, name, job.namespace)
            except Exception as error:  # keep deleting the others; the owner reference still collects it
                log.warning("%s: could not delete %s %s: %s", job.step, kind, name, error)

    def update(self, kind: str, name: str, namespace: str, change: Callable[[dict[str, Any]], dict[str, Any] | None],
               hint: str = "") -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Reads an object, asks ``change`` for a merge patch, and sends it when there is one.

        Args:
            change: The merge patch for the object read; ``None`` when it needs none.
            hint: Added to an API failure's message (e.g. the Role the call needs).

        Returns:
            The object as read (``None`` when it does not exist; nothing is sent) and the patch
            sent (``None`` when none was needed).

        Raises:
            TunepipeError: Of the runner's type, naming the object and the call, when the API
                refuses either call or cannot be reached. Errors ``change`` raises pass through.
        """
        found = self._request("read", kind, name, namespace, hint, lambda: self.api.read(kind, name, namespace))
        body = change(found) if found is not None else None
        if body is not None:
            self._request("patch", kind, name, namespace, hint, lambda: self.api.patch(kind, name, namespace, body))
        return found, body

    def _request(self, verb: str, kind: str, name: str, namespace: str, hint: str, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except Exception as error:  # the client's ApiException, a refused connection, ...: all name the target
            raise self.error(f"could not {verb} {kind} {namespace}/{name}: {error}{hint}") from error
