"""What the environment asks of telemetry: exporters, OTLP targets, and the resource.

dqmon builds its own providers, so it reads the variables the SDK only honours under
auto-instrumentation (`OTEL_METRICS_EXPORTER`, `OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_OTLP_PROTOCOL`) itself, and takes the OTLP settings from the same mapping so a
test can pass its own environment.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from dqmon import __version__

log = logging.getLogger("dqmon.telemetry")

METRICS_EXPORTERS = frozenset({"otlp", "prometheus", "console"})
TRACES_EXPORTERS = frozenset({"otlp", "console"})
GRPC = "grpc"
HTTP = "http/protobuf"
PROTOCOLS = (GRPC, HTTP)
DEFAULT_ENDPOINT = "http://localhost:4317"  # gRPC's (SPEC section 3)
# OTLP/HTTP's default base URL; each signal posts to <base>/v1/<signal> (OTLP exporter spec).
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_TIMEOUT_S = 10.0
# run-once gives a down or black-holed collector at most this per export (SPEC section 3:
# "at most ~3 s extra"); metrics and spans are flushed side by side, not one after the other.
RUN_ONCE_TIMEOUT_S = 2.0
DEFAULT_EXPORT_INTERVAL_S = 60.0


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how one signal is pushed over OTLP (gRPC or HTTP with protobuf bodies)."""

    endpoint: str
    insecure: bool
    headers: Mapping[str, str]
    timeout_s: float
    protocol: str = GRPC

    @property
    def label(self) -> str:
        """Return the endpoint for log lines: host:port, without any credentials in it."""
        parsed = urlparse(self.endpoint if "//" in self.endpoint else f"//{self.endpoint}")
        return parsed.netloc.rpartition("@")[2] or self.endpoint


@dataclass(frozen=True)
class Settings:
    """The telemetry configuration read from one environment."""

    metrics_exporters: frozenset[str]
    traces_exporters: frozenset[str]
    metrics_otlp: OtlpTarget
    traces_otlp: OtlpTarget
    export_interval_s: float
    resource: Mapping[str, str]


def read_settings(env: Mapping[str, str], *, daemon: bool) -> Settings:
    """Read every telemetry setting from `env` (run-once caps the OTLP timeout)."""
    cap_s = None if daemon else RUN_ONCE_TIMEOUT_S
    _warn_unknown_protocols(env)
    return Settings(
        metrics_exporters=exporter_names(env, "OTEL_METRICS_EXPORTER", METRICS_EXPORTERS),
        traces_exporters=exporter_names(env, "OTEL_TRACES_EXPORTER", TRACES_EXPORTERS),
        metrics_otlp=otlp_target(env, "METRICS", cap_s),
        traces_otlp=otlp_target(env, "TRACES", cap_s),
        export_interval_s=_millis(env, "OTEL_METRIC_EXPORT_INTERVAL") or DEFAULT_EXPORT_INTERVAL_S,
        resource=resource_attributes(env),
    )


def exporter_names(env: Mapping[str, str], variable: str, known: frozenset[str]) -> frozenset[str]:
    """Parse a comma-separated exporter list; `none` means none, unknown names are skipped."""
    names = {n.strip().lower() for n in env.get(variable, "otlp").split(",") if n.strip()}
    if "none" in names:
        return frozenset()
    for name in sorted(names - known):
        log.warning("telemetry: %s=%s is not supported here (use %s or none); ignored",
                    variable, name, ", ".join(sorted(known)))
    return frozenset(names & known)


def otlp_target(env: Mapping[str, str], signal: str, cap_s: float | None) -> OtlpTarget:
    """Read OTEL_EXPORTER_OTLP_<SIGNAL>_* (else the generic OTEL_EXPORTER_OTLP_*) variables."""
    def get(name: str) -> str | None:
        specific = env.get(f"OTEL_EXPORTER_OTLP_{signal}_{name}")
        return specific or env.get(f"OTEL_EXPORTER_OTLP_{name}")

    protocol = otlp_protocol(env, signal)
    endpoint = otlp_endpoint(env, signal, protocol)
    timeout_s = (_millis(env, f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT")
                 or _millis(env, "OTEL_EXPORTER_OTLP_TIMEOUT") or DEFAULT_TIMEOUT_S)
    return OtlpTarget(endpoint, _insecure(endpoint, get("INSECURE")),
                      _pairs(get("HEADERS") or "", "OTEL_EXPORTER_OTLP_HEADERS", lower_keys=True),
                      min(timeout_s, cap_s) if cap_s else timeout_s, protocol)


def otlp_protocol(env: Mapping[str, str], signal: str) -> str:
    """Return the signal's protocol: its own variable, else the generic one, else gRPC."""
    for variable in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(variable, "").strip().lower()
        if protocol in PROTOCOLS:
            return protocol
    return GRPC


def otlp_endpoint(env: Mapping[str, str], signal: str, protocol: str) -> str:
    """Return where a signal goes, by the OTLP exporter spec's rules for its protocol.

    A signal's own endpoint is used as it is. Over HTTP the generic endpoint is a base URL
    that gets `/v1/metrics` or `/v1/traces` appended; over gRPC it is used as it is.
    """
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    if specific:
        return specific
    generic = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if protocol == GRPC:
        return generic or DEFAULT_ENDPOINT
    base = generic or DEFAULT_HTTP_ENDPOINT
    return f"{base.rstrip('/')}/v1/{signal.lower()}"


def _warn_unknown_protocols(env: Mapping[str, str]) -> None:
    """Say in one warning which protocol variables hold a protocol dqmon cannot push with."""
    unknown = [f"{variable}={env[variable].strip()}" for variable in (
        "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        if env.get(variable, "").strip() and env[variable].strip().lower() not in PROTOCOLS]
    if unknown:
        log.warning("telemetry: %s not supported (use %s); ignored", ", ".join(unknown),
                    " or ".join(PROTOCOLS))


def _insecure(endpoint: str, flag: str | None) -> bool:
    """Decide plaintext like the SDK: https:// is TLS, else the flag, else http:// is plaintext."""
    scheme = urlparse(endpoint).scheme
    if scheme == "https":
        return False
    if flag is not None:
        return flag.strip().lower() == "true"
    return scheme == "http"


def resource_attributes(env: Mapping[str, str]) -> dict[str, str]:
    """Return the resource: defaults, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME."""
    attrs = {"service.name": "dqmon", "service.version": __version__,
             "service.instance.id": socket.gethostname()}
    attrs.update(_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES",
                        lower_keys=False))
    if env.get("OTEL_SERVICE_NAME"):
        attrs["service.name"] = env["OTEL_SERVICE_NAME"]
    if env.get("DQMON_INSTANCE"):
        # Stable on purpose: Prometheus makes it the `instance` label (never a random uuid).
        attrs["service.instance.id"] = env["DQMON_INSTANCE"]
    return attrs


def _pairs(text: str, variable: str, *, lower_keys: bool) -> dict[str, str]:
    """Parse `key=value,key2=value2` with URL-encoded values, as the OTel spec defines it."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            name = key.strip().lower() if lower_keys else key.strip()
            pairs[name] = unquote(value.strip())
        elif item.strip():
            # Never echo the entry: headers carry credentials.
            log.warning("telemetry: ignoring an entry of %s that is not key=value", variable)
    return pairs


def _millis(env: Mapping[str, str], variable: str) -> float | None:
    """Read a duration in milliseconds as seconds; None when unset or not a positive number."""
    text = env.get(variable)
    if not text:
        return None
    try:
        millis = float(text)
    except ValueError:
        millis = 0.0
    if millis > 0 and millis != float("inf"):
        return millis / 1000
    log.warning("telemetry: %s=%s is not a positive number of milliseconds; ignored",
                variable, text)
    return None
