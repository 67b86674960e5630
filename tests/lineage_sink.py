"""Test doubles for OpenLineage: an HTTP sink that keeps every event, and the schema check.

The sink is a plain `http.server` answering 200 to each POST, as Marquez does; the schemas
are the spec's own files in tests/lineage_schemas/ (the client package ships none).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "lineage_schemas"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


class LineageSink:
    """An HTTP endpoint on 127.0.0.1 that stores each posted event, with its path."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.paths.append(self.path)
                sink.events.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep the test's stderr for dqmon's own lines

        return Handler

    def __enter__(self) -> LineageSink:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def schema_errors(event: dict[str, Any]) -> list[str]:
    """Return what in `event` breaks the RunEvent schema or the schema each facet names."""
    checks = [(RUN_EVENT, event)] + [(facet["_schemaURL"], facet) for facet in _facets(event)]
    errors = []
    for url, instance in checks:
        validator = Draft202012Validator({"$ref": url}, registry=REGISTRY)
        errors += [f"{url}: {e.message}" for e in validator.iter_errors(instance)]
    return errors


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    holders = [event["run"], event["job"], *event.get("inputs", [])]
    return [facet for holder in holders for key in ("facets", "inputFacets")
            for facet in holder.get(key, {}).values()]
