"""The tests' Kubernetes: :class:`~tunepipe.execution.k8s.api.ClusterApi` in memory.

One fake for every step that talks to Kubernetes (the tuner launcher, the TrainJob launcher, the
deploy step), implementing the one interface they share. It records every call as
``(verb, kind, name, namespace)``, keeps the objects created (as created: owner and deadline
included) and the ones it starts with, and advances a script one step per *poll*: each read of
the kind named ``clock``. At poll n, an object of kind K reports ``statuses[K][n - 1]`` (the
last entry once the script runs out), and the followed pod's log holds ``logs(n)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


class FakeCluster:
    """Records calls; objects' statuses and the followed pod's log advance one step per poll.

    Args:
        statuses: Kind -> the ``status`` its objects report at each poll.
        clock: The kind whose read counts as a poll (default: the first of ``statuses``).
        objects: Objects that exist from the start, by ``(kind, namespace, name)``.
        pods: The pod names ``pod_names`` returns at a poll (default: none).
        logs: The followed pod's timestamped log lines at a poll (default: none).
        fail_on_poll: Poll at which reading the clock's kind raises ``ConnectionError``.
        refuse: ``"verb"`` or ``"verb:Kind"`` -> the exception that call raises.
    """

    def __init__(
        self, statuses: dict[str, list[dict[str, Any]]] | None = None, clock: str | None = None,
        objects: dict[tuple[str, str, str], dict[str, Any]] | None = None,
        pods: Callable[[int], list[str]] | None = None, logs: Callable[[int], list[str]] | None = None,
        fail_on_poll: int | None = None, refuse: dict[str, Exception] | None = None,
    ) -> None:
        self.statuses = statuses or {}
        self.clock = clock or next(iter(self.statuses), "")
        self.objects = copy.deepcopy(objects or {})
        self.pods, self.logs = pods or (lambda poll: []), logs or (lambda poll: [])
        self.fail_on_poll, self.refuse = fail_on_poll, refuse or {}
        self.calls: list[tuple[str, str, str, str]] = []
        self.created: list[dict[str, Any]] = []
        self.patches: list[dict[str, Any]] = []
        self.polls = 0

    @property
    def alive(self) -> set[tuple[str, str]]:
        """``(kind, name)`` of every object created and not deleted."""
        created = {(m["kind"], m["metadata"]["name"]) for m in self.created}
        return {(kind, name) for kind, _, name in self.objects} & created

    def _call(self, verb: str, kind: str, name: str, namespace: str) -> None:
        self.calls.append((verb, kind, name, namespace))
        refused = self.refuse.get(f"{verb}:{kind}") or self.refuse.get(verb)
        if refused is not None:
            raise refused

    def create(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        self._call("create", manifest["kind"], meta["name"], meta["namespace"])
        self.created.append(copy.deepcopy(manifest))
        self.objects[(manifest["kind"], meta["namespace"], meta["name"])] = copy.deepcopy(manifest)

    def read(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        self._call("read", kind, name, namespace)
        if kind == self.clock:
            self.polls += 1
            if self.fail_on_poll == self.polls:
                raise ConnectionError("API server went away")
        found = self.objects.get((kind, namespace, name))
        if found is None:
            return None
        found = copy.deepcopy(found)
        script = self.statuses.get(kind)
        if script:
            found["status"] = script[min(max(self.polls, 1), len(script)) - 1]
        return found

    def patch(self, kind: str, name: str, namespace: str, body: dict[str, Any]) -> None:
        self._call("patch", kind, name, namespace)
        self.patches.append(copy.deepcopy(body))

    def delete(self, kind: str, name: str, namespace: str) -> None:
        self._call("delete", kind, name, namespace)
        self.objects.pop((kind, namespace, name), None)

    def pod_names(self, selector: str, namespace: str) -> list[str]:
        self._call("list", "Pod", selector, namespace)
        return self.pods(self.polls)

    def log_lines(self, name: str, namespace: str) -> list[str]:
        self._call("log", "Pod", name, namespace)
        return self.logs(self.polls)
