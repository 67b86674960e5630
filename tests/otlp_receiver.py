"""Real OTLP receivers for tests (gRPC and HTTP), plus the two ways a collector can be down.

`OtlpReceiver` serves the official opentelemetry-proto MetricsService and TraceService over
gRPC on a free loopback port; `OtlpHttpReceiver` takes the same protobuf messages as OTLP/HTTP
POSTs to /v1/metrics and /v1/traces (http.server). Both keep what they receive, decoded into
plain points and spans. `closed_port()` names a port nobody listens on; `BlackHole` accepts
connections and never answers. Tests import it as `from otlp_receiver import OtlpReceiver`
(tests/ is on sys.path through its conftest.py).
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

Attributes = dict[str, Any]


@dataclass(frozen=True)
class MetricPoint:
    """One received data point with everything around it."""

    name: str
    unit: str
    kind: str  # gauge, sum, histogram, ...
    attributes: Attributes
    value: float
    scope: str
    resource: Attributes


@dataclass(frozen=True)
class ReceivedSpan:
    """One received span, ids in lowercase hex."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    kind: str
    attributes: Attributes
    status: str  # STATUS_CODE_UNSET, STATUS_CODE_OK or STATUS_CODE_ERROR
    status_message: str
    scope: str
    resource: Attributes


def any_value(value: AnyValue) -> Any:
    """Decode an OTLP AnyValue into a Python value."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, which) if which else None


def attributes(pairs: Any) -> Attributes:
    """Decode repeated KeyValue into a dict."""
    return {kv.key: any_value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: Callable[[Any], None]) -> None:
        self._sink = sink

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
        self._sink(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Callable[[Any], None]) -> None:
        self._sink = sink

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
        self._sink(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Recorder:
    """What every receiver keeps: the raw requests, and their points and spans decoded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.metric_requests: list[Any] = []
        self.span_requests: list[Any] = []

    def _keep(self, store: list[Any]) -> Callable[[Any], None]:
        def keep(request: Any) -> None:
            with self._lock:
                store.append(request)
        return keep

    def points(self) -> list[MetricPoint]:
        """Return every data point received so far, in arrival order."""
        with self._lock:
            requests = list(self.metric_requests)
        return [point for request in requests for point in _points(request)]

    def spans(self) -> list[ReceivedSpan]:
        """Return every span received so far, in arrival order."""
        with self._lock:
            requests = list(self.span_requests)
        return [span for request in requests for span in _spans(request)]

    def wait_for(self, condition: Callable[[Any], bool], timeout_s: float = 10.0) -> bool:
        """Poll until `condition(self)` holds or the deadline passes; return whether it held."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(self):
                return True
            time.sleep(0.02)
        return condition(self)


class OtlpReceiver(_Recorder):
    """An OTLP gRPC endpoint on 127.0.0.1 (port 0 = a free one) that records every export."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _Metrics(self._keep(self.metric_requests)), self._server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _Traces(self._keep(self.span_requests)), self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")

    @property
    def endpoint(self) -> str:
        """Return the URL to put in OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        """Start serving."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving at once."""
        self._server.stop(grace=None).wait()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    """POST /v1/metrics and /v1/traces with a binary protobuf body, as the OTLP/HTTP spec says."""

    # path -> (request message, response message)
    ROUTES: ClassVar[dict[str, tuple[Any, Any]]] = {
        "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest,
                        metrics_service_pb2.ExportMetricsServiceResponse),
        "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest,
                       trace_service_pb2.ExportTraceServiceResponse),
    }
    receiver: OtlpHttpReceiver  # set on the subclass each receiver makes

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        route = self.ROUTES.get(self.path)
        if route is None or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_error(404 if route is None else 415)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = route[0].FromString(_decompress(body, self.headers.get("Content-Encoding")))
        self.receiver.keep(self.path, request)
        payload = route[1]().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Keep the test output quiet."""


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class OtlpHttpReceiver(_Recorder):
    """An OTLP/HTTP (protobuf) endpoint on 127.0.0.1 that records every export."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        handler = type("Handler", (_OtlpHttpHandler,), {"receiver": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._stores = {"/v1/metrics": self._keep(self.metric_requests),
                        "/v1/traces": self._keep(self.span_requests)}

    def keep(self, path: str, request: Any) -> None:
        """Record one decoded export request."""
        self._stores[path](request)

    @property
    def endpoint(self) -> str:
        """Return the base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds /v1/...)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpHttpReceiver:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving at once."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpHttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _points(request: Any) -> Iterator[MetricPoint]:
    for rm in request.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                for dp in getattr(metric, kind).data_points:
                    number = dp.as_double if dp.WhichOneof("value") == "as_double" else dp.as_int
                    yield MetricPoint(metric.name, metric.unit, kind, attributes(dp.attributes),
                                      float(number), sm.scope.name, resource)


def _spans(request: Any) -> Iterator[ReceivedSpan]:
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield ReceivedSpan(
                    span.name, span.trace_id.hex(), span.span_id.hex(),
                    span.parent_span_id.hex(), span.trace_state, Span.SpanKind.Name(span.kind),
                    attributes(span.attributes), Status.StatusCode.Name(span.status.code),
                    span.status.message, ss.scope.name, resource)


def closed_port() -> int:
    """Return a loopback port that nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class BlackHole:
    """A TCP endpoint that accepts every connection and never answers (a hung collector)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        """Return the URL to put in OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)  # held open, never read, never written

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self._sock.close()
