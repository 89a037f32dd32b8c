"""The errors of the pipelines layer that the CLI handles, in a module without kfp: the cluster
commands' (both :mod:`pipelines.remote`, no kfp, and :mod:`pipelines.remote_kfp`, the kfp client,
import it, so neither imports the other for it) and a local run's failed step."""

from tunepipe.errors import TunepipeError


class ClusterError(TunepipeError):
    """Kubeflow Pipelines is unreachable, refused a request, or lacks what a command names.

    Attributes:
        transient: The server or the connection failed (429, 5xx, refused or dropped connection,
            timeout): the same request may succeed later. False for a refusal (401, 403, 404, 400).
        status: The HTTP status the server answered with, if it answered.
    """

    def __init__(self, message: str, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class StepFailed(RuntimeError):
    """A step of a local run failed (exit status 1, as any failed step).

    Attributes:
        lines: How the run's output ends: the step's last lines, where its whole log is, and its
            ``error:`` line last (see :meth:`pipelines.step_logs.RunLog.failure_lines`).
    """

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[-1] if lines else "a step failed")
        self.lines = lines
