"""A fake Kubeflow Pipelines API server (the v2beta1 REST endpoints kfp.Client calls) for the cluster tier.

It keeps pipelines, versions, experiments, runs and recurring runs in memory, answers with JSON
shaped like the real API (field names of kfp_server_api's v2beta1 models), and records every
request so tests can assert what the CLI sent. Requests it does not implement are answered 404
and listed in ``unhandled``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

API = "/apis/v2beta1"
NOT_FINISHED = "1970-01-01T00:00:00Z"  # what the server sends for a run that has not finished


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None  # parsed JSON body, if any
    fields: dict[str, str] = field(default_factory=dict)  # multipart field name -> text
    authorization: str | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FakeKfp:
    """In-memory state plus a ThreadingHTTPServer on 127.0.0.1 (``start``/``stop``)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.unhandled: list[str] = []
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, str] = {}  # version id -> uploaded YAML text
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        # Successive answers of GET /runs/{id}: fields merged into the run; the last one repeats.
        self.run_script: list[dict[str, Any]] = []
        # Answer the next experiment listing with none, as if another client created it just after.
        self.hide_next_experiment_listing = False
        self._ids = itertools.count(1)
        self._clock = itertools.count(0)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- state helpers (also used by tests to seed the server) -----------------------------

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def now(self) -> str:
        moment = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(minutes=next(self._clock))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def add_pipeline(self, name: str, description: str = "") -> str:
        pipeline_id = self.new_id("pipeline")
        self.pipelines[pipeline_id] = {
            "pipeline_id": pipeline_id, "display_name": name, "name": name,
            "description": description, "created_at": self.now(),
        }
        return pipeline_id

    def add_version(self, pipeline_id: str, name: str, spec_text: str, description: str = "") -> dict[str, Any]:
        version_id = self.new_id("version")
        version = {
            "pipeline_id": pipeline_id, "pipeline_version_id": version_id, "display_name": name, "name": name,
            "description": description, "created_at": self.now(),
        }
        self.versions[version_id] = version
        self.specs[version_id] = spec_text
        return version

    def add_experiment(self, name: str) -> str:
        experiment_id = self.new_id("experiment")
        self.experiments[experiment_id] = {
            "experiment_id": experiment_id, "display_name": name, "created_at": self.now(),
            "storage_state": "AVAILABLE",
        }
        return experiment_id

    def add_run(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = self.new_id("run")
        run = {**body, "run_id": run_id, "state": "PENDING", "created_at": self.now(),
               "finished_at": NOT_FINISHED, "storage_state": "AVAILABLE"}
        self.runs[run_id] = run
        return run

    def add_recurring_run(self, body: dict[str, Any]) -> dict[str, Any]:
        recurring_id = self.new_id("recurring")
        recurring = {**body, "recurring_run_id": recurring_id, "created_at": self.now(), "updated_at": self.now(),
                     "status": "ENABLED" if body.get("mode", "ENABLE") == "ENABLE" else "DISABLED"}
        if "max_concurrency" in recurring:  # int64: the real server sends it as a JSON string
            recurring["max_concurrency"] = str(recurring["max_concurrency"])
        self.recurring_runs[recurring_id] = recurring
        return recurring

    def requests_to(self, method: str, path: str) -> list[Request]:
        return [request for request in self.requests if request.method == method and request.path == API + path]

    def version_spec(self, version_id: str) -> dict[str, Any]:
        """The stored spec as the real server returns it: one document, or pipeline_spec + platform_spec."""
        documents = [doc for doc in yaml.safe_load_all(self.specs[version_id]) if doc]
        if len(documents) > 1:
            return {"pipeline_spec": documents[0], "platform_spec": documents[1]}
        return documents[0]

    # -- request handling -------------------------------------------------------------------

    def handle(self, request: Request) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(request)
            route = f"{request.method} {request.path.removeprefix(API)}"
            for pattern, handler in self._routes():
                match = re.fullmatch(pattern, route)
                if match:
                    try:
                        return 200, handler(request, *match.groups())
                    except ApiError as error:
                        return error.status, {"error": str(error), "code": 5, "message": str(error), "details": []}
            self.unhandled.append(route)
            return 404, {"error": f"no route {route}", "code": 5, "message": f"no route {route}"}

    def _routes(self) -> list[tuple[str, Any]]:
        return [
            (r"GET /healthz", lambda request: {"multi_user": False, "pipeline_store": "database"}),
            (r"GET /pipelines", self._list_pipelines),
            (r"POST /pipelines/upload", self._upload),
            (r"POST /pipelines/upload_version", self._upload_version),
            (r"GET /pipelines/([^/]+)/versions", self._list_versions),
            (r"GET /pipelines/([^/]+)/versions/([^/]+)", self._get_version),
            (r"GET /experiments", self._list_experiments),
            (r"POST /experiments", self._create_experiment),
            (r"POST /runs", lambda request: self.add_run(request.body)),
            (r"GET /runs", self._list_runs),
            (r"GET /runs/([^/:]+)", self._get_run),
            (r"POST /recurringruns", lambda request: self.add_recurring_run(request.body)),
            (r"GET /recurringruns", self._list_recurring_runs),
            (r"DELETE /recurringruns/([^/:]+)", self._delete_recurring_run),
        ]

    @staticmethod
    def _page(items: list[dict[str, Any]], request: Request, key: str) -> dict[str, Any]:
        sort_by = request.query.get("sort_by", "")
        if sort_by:
            field_name, _, direction = sort_by.partition(" ")
            items = sorted(items, key=lambda item: item.get(field_name, ""), reverse=direction == "desc")
        size = int(request.query.get("page_size") or 0) or len(items)
        answer: dict[str, Any] = {"total_size": len(items)}
        if items:  # proto3 JSON leaves out an empty list
            answer[key] = items[:size]
        if len(items) > size:
            answer["next_page_token"] = "more"
        return answer

    @staticmethod
    def _name_filter(request: Request) -> str | None:
        if not request.query.get("filter"):
            return None
        (predicate,) = json.loads(request.query["filter"])["predicates"]
        assert predicate["operation"] in (1, "EQUALS") and predicate["key"] == "display_name", predicate
        return predicate.get("stringValue", predicate.get("string_value"))

    def _list_pipelines(self, request: Request) -> dict[str, Any]:
        name = self._name_filter(request)
        items = [p for p in self.pipelines.values() if name is None or p["display_name"] == name]
        return self._page(items, request, "pipelines")

    def _upload(self, request: Request) -> dict[str, Any]:
        name = request.query["name"]
        if any(p["display_name"] == name for p in self.pipelines.values()):
            raise ApiError(409, f"pipeline {name!r} already exists")
        pipeline_id = self.add_pipeline(name, request.query.get("description", ""))
        self.add_version(pipeline_id, name, request.fields["uploadfile"])
        return self.pipelines[pipeline_id]

    def _upload_version(self, request: Request) -> dict[str, Any]:
        pipeline_id = request.query.get("pipelineid", "")
        if pipeline_id not in self.pipelines:
            raise ApiError(404, f"pipeline {pipeline_id!r} not found")
        return self.add_version(
            pipeline_id, request.query["name"], request.fields["uploadfile"], request.query.get("description", "")
        )

    def _list_versions(self, request: Request, pipeline_id: str) -> dict[str, Any]:
        if pipeline_id not in self.pipelines:
            raise ApiError(404, f"pipeline {pipeline_id!r} not found")
        items = [v for v in self.versions.values() if v["pipeline_id"] == pipeline_id]
        return self._page(items, request, "pipeline_versions")

    def _get_version(self, request: Request, pipeline_id: str, version_id: str) -> dict[str, Any]:
        version = self.versions.get(version_id)
        if version is None or version["pipeline_id"] != pipeline_id:
            raise ApiError(404, f"pipeline version {version_id!r} not found")
        return {**version, "pipeline_spec": self.version_spec(version_id)}

    def _list_experiments(self, request: Request) -> dict[str, Any]:
        name = self._name_filter(request)
        items = [e for e in self.experiments.values() if name is None or e["display_name"] == name]
        if self.hide_next_experiment_listing:
            self.hide_next_experiment_listing, items = False, []
        return self._page(items, request, "experiments")

    def _create_experiment(self, request: Request) -> dict[str, Any]:
        name = request.body["display_name"]
        if any(e["display_name"] == name for e in self.experiments.values()):  # unique per namespace, as in KFP
            raise ApiError(409, f"Failed to create a new experiment. The name {name!r} already exists.")
        return self.experiments[self.add_experiment(name)]

    def _list_runs(self, request: Request) -> dict[str, Any]:
        experiment_id, name = request.query.get("experiment_id"), self._name_filter(request)
        items = [r for r in self.runs.values() if (not experiment_id or r.get("experiment_id") == experiment_id)
                 and (name is None or r.get("display_name") == name)]
        return self._page(items, request, "runs")

    def _get_run(self, request: Request, run_id: str) -> dict[str, Any]:
        if run_id not in self.runs:
            raise ApiError(404, f"run {run_id!r} not found")
        if self.run_script:
            update = self.run_script.pop(0) if len(self.run_script) > 1 else self.run_script[0]
            self.runs[run_id].update(update)
        return self.runs[run_id]

    def _list_recurring_runs(self, request: Request) -> dict[str, Any]:
        experiment_id = request.query.get("experiment_id")
        items = [
            r for r in self.recurring_runs.values() if not experiment_id or r.get("experiment_id") == experiment_id
        ]
        return self._page(items, request, "recurringRuns")  # the proto field is camelCase

    def _delete_recurring_run(self, request: Request, recurring_id: str) -> dict[str, Any]:
        if self.recurring_runs.pop(recurring_id, None) is None:
            raise ApiError(404, f"recurring run {recurring_id!r} not found")
        return {}

    # -- server -----------------------------------------------------------------------------

    def start(self) -> FakeKfp:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = self.headers.get("Content-Type", "")
                request = Request(self.command, parts.path, query, authorization=self.headers.get("Authorization"))
                if content_type.startswith("multipart/form-data"):
                    message = BytesParser(policy=HTTP).parsebytes(
                        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
                    )
                    for part in message.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        request.fields[str(name)] = part.get_payload(decode=True).decode("utf-8")
                elif raw:
                    request.body = json.loads(raw)
                status, answer = fake.handle(request)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
