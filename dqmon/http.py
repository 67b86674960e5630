"""The daemon's HTTP endpoints: `/metrics`, `/healthz` (alive) and `/readyz` (ready to work).

A stdlib `ThreadingHTTPServer` in a daemon thread: a scrape never waits for a scan.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dqmon.logs import get_logger

log = get_logger(__name__)

MetricsSource = Callable[[str | None], tuple[bytes, str]]  # Accept header -> body, type
ReadySource = Callable[[], bool]
TEXT = "text/plain; charset=utf-8"


def parse_listen(value: str) -> tuple[str, int]:
    """Parse `HOST:PORT`, `:PORT` or `[IPv6]:PORT`; raise ValueError with a readable message."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 0.0.0.0:9464)")
    host = host.removeprefix("[").removesuffix("]")
    return host or "0.0.0.0", int(port)


class HealthServer:
    """Serve the three endpoints on one address until `stop()`."""

    def __init__(self, address: tuple[str, int], metrics: MetricsSource,
                 ready: ReadySource) -> None:
        handler = _handler_class(metrics, ready)
        server_class = _IPv6Server if ":" in address[0] else ThreadingHTTPServer
        self._server = server_class(address, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="dqmon-http", daemon=True)

    @property
    def port(self) -> int:
        """Return the bound port (useful when asked for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(metrics: MetricsSource, ready: ReadySource) -> type[BaseHTTPRequestHandler]:
    """Build a request handler bound to the daemon's metrics and readiness."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "dqmon"

        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._metrics()
            elif path == "/healthz":
                self._send(200, b"ok\n", TEXT)
            elif path == "/readyz":
                ok = ready()
                self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n", TEXT)
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n", TEXT)

        def _metrics(self) -> None:
            try:
                body, content_type = metrics(self.headers.get("Accept"))
            except Exception as exc:  # noqa: BLE001 - a failed scrape must not kill the server
                log.error("metrics scrape failed", error=str(exc) or type(exc).__name__)
                self._send(500, b"metrics unavailable\n", TEXT)
                return
            self._send(200, body, content_type)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            """Keep scrapes out of the logs (one line per scrape would drown the events)."""

    return Handler
