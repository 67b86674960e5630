"""The daemon's `/metrics` body, rendered straight from the results registry (issue 9).

The SDK's Prometheus reader collected every gauge through the MeterProvider, built a point
object per series and formatted it again with prometheus_client on every scrape: 24 s of CPU
and 686 MiB at 10,000 tables. Here each series' label text is formatted once per check and
slice, at the first scrape that sees it, and a scrape joins cached strings: the names,
labels, help texts and `target_info` are those the SDK's reader printed (tests compare
both), and no cardinality limit applies on this path. OTLP exports still go through the SDK.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dqmon.config.resolved import CHECK_METRICS
from dqmon.telemetry.gauges import GAUGES, MONITOR_GAUGES, VALUE_GAUGES, GaugeSpec
from dqmon.telemetry.registry import Series

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_VALUE_NAMES = frozenset(gauge.name for gauge in VALUE_GAUGES)


def metric_name(otel_name: str) -> str:
    """Return the Prometheus name of a dq.* gauge (its units are in the OTel name already)."""
    return re.sub(r"[^a-zA-Z0-9_:]", "_", otel_name)


def label_name(key: str) -> str:
    """Return the Prometheus label of an attribute key, as the SDK's exporter spells it."""
    name = re.sub(r"[^a-zA-Z0-9_]", "_", key)
    return f"key_{name}" if name[:1].isdigit() else name


def label_text(attributes: Mapping[str, str]) -> str:
    """Return `k="v",...` sorted by label, with the exposition format's escapes."""
    pairs = sorted((label_name(key), _escape(str(value))) for key, value in attributes.items())
    return ",".join(f'{key}="{value}"' for key, value in pairs)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def wants_openmetrics(accept: str | None) -> bool:
    """Tell whether an Accept header asks for OpenMetrics (as prometheus_client decides)."""
    media = (part.split(";", 1)[0].strip() for part in (accept or "").split(","))
    return "application/openmetrics-text" in media


@dataclass(frozen=True)
class _Labels:
    """One series' label blocks, formatted once: its value gauge's and its dq.check.* gauges'."""

    value: str
    check: str
    thresholds: tuple[tuple[str, float], ...]  # (label block with dq.bound, bound)


def _labels(series: Series, scope: str) -> _Labels:
    check = series.check_attributes()
    bounds = series.spec.threshold.as_dict().items()
    return _Labels(value=f"{{{label_text(series.attributes)},{scope}}}",
                   check=f"{{{label_text(check)},{scope}}}",
                   thresholds=tuple((f"{{{label_text({**check, 'dq.bound': name})},{scope}}}",
                                     bound) for name, bound in bounds))


class Exposition:
    """Renders `/metrics`; each series keeps its formatted labels (`Series.text`)."""

    def __init__(self, resource: Mapping[str, object], scope_name: str,
                 scope_version: str) -> None:
        self._target = label_text({key: str(value) for key, value in resource.items()})
        self._scope = label_text({"otel.scope.name": scope_name, "otel.scope.schema_url": "",
                                  "otel.scope.version": scope_version})

    def render(self, series: list[Series], *, overflow: bool, openmetrics: bool) -> bytes:
        """Return the body: target_info, every dq.* gauge, then the dq.monitor.* gauges."""
        families = _families([(one, self._labels_of(one)) for one in series])
        lines = _target_info(self._target, openmetrics)
        for gauge in GAUGES:
            lines += _family(gauge, families[gauge.name])
        counts = {gauge.name: len(families[gauge.name]) for gauge in GAUGES}
        lines += _monitor_families(counts, overflow, self._scope)
        if openmetrics:
            lines.append("# EOF\n")
        return "".join(lines).encode()

    def _labels_of(self, series: Series) -> _Labels:
        """Return the series' label text, formatting it at the first scrape of its check and
        slice (the registry hands it on to the check's next result: `next_series`)."""
        if not series.text:
            series.text.append(_labels(series, self._scope))
        labels: _Labels = series.text[0]
        return labels


Samples = list[tuple[str, float]]  # (label block, value) of one family


def _families(labelled: list[tuple[Series, _Labels]]) -> dict[str, Samples]:
    """Sort every series' samples into the families of GAUGES, in registry order."""
    families: dict[str, Samples] = {gauge.name: [] for gauge in GAUGES}
    for series, labels in labelled:
        if series.value is not None and series.spec.metric in _VALUE_NAMES:
            families[series.spec.metric].append((labels.value, series.value))
        families[CHECK_METRICS["passed"]].append((labels.check, float(series.passed)))
        families[CHECK_METRICS["up"]].append((labels.check, float(series.up)))
        families[CHECK_METRICS["duration"]].append((labels.check, series.duration_s))
        families[CHECK_METRICS["last_run"]].append((labels.check, series.last_run_s))
        families[CHECK_METRICS["threshold"]].extend(labels.thresholds)
    return families


def _family(gauge: GaugeSpec, samples: Iterable[tuple[str, float]]) -> list[str]:
    """Return one gauge's lines; a gauge without a point is left out, as the SDK does."""
    name = metric_name(gauge.name)
    lines = [f"{name}{labels} {float(value)!r}\n" for labels, value in samples
             if math.isfinite(value)]
    if not lines:
        return []
    return [f"# HELP {name} {_help(gauge.description)}\n", f"# TYPE {name} gauge\n", *lines]


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _target_info(labels: str, openmetrics: bool) -> list[str]:
    """Return the resource as `target_info` (an info family in OpenMetrics)."""
    name, kind = ("target", "info") if openmetrics else ("target_info", "gauge")
    return [f"# HELP {name} Target metadata\n", f"# TYPE {name} {kind}\n",
            f"target_info{{{labels}}} 1.0\n"]


def _monitor_families(counts: Mapping[str, int], overflow: bool, scope: str) -> list[str]:
    """Return dq.monitor.series (points per gauge on this page) and dq.monitor.overflow.

    Nothing folds series on this page; `overflow` tells whether an OTLP export lost some.
    """
    series_gauge, overflow_gauge = MONITOR_GAUGES
    per_gauge = [(f'{{{label_text({"dq.metric": metric})},{scope}}}', float(count))
                 for metric, count in counts.items()]
    return (_family(series_gauge, per_gauge)
            + _family(overflow_gauge, [(f"{{{scope}}}", float(overflow))]))
