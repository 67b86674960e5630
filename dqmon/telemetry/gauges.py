"""The `dq.*` gauges of SPEC section 3: names, units, and the callbacks that feed them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from dqmon.config.resolved import CHECK_METRICS, METRICS
from dqmon.telemetry.registry import ResultsRegistry, Series

Point = tuple[float, Mapping[str, str]]
Points = Callable[[list[Series]], Iterable[Point]]


@dataclass(frozen=True)
class GaugeSpec:
    """One gauge: its OTel name, unit and help text."""

    name: str
    unit: str
    description: str


# Units keep the Python exporter and a Collector's prometheus exporter in agreement: the unit
# word stays in the name (`_ratio`, `_seconds`), flags and free-form values get no unit.
VALUE_GAUGES = (
    GaugeSpec(METRICS["freshness"], "s", "Seconds from the newest row to the warehouse's now"),
    GaugeSpec(METRICS["row_count"], "{row}", "Rows in the checked scope"),
    GaugeSpec(METRICS["completeness"], "1", "Non-null rows / rows, per column"),
    GaugeSpec(METRICS["validity"], "1", "Valid rows / rows considered"),
    GaugeSpec(METRICS["uniqueness"], "1", "Distinct keys / rows with a complete key"),
    GaugeSpec(METRICS["schema"], "{column}", "Expected columns missing or of another type"),
    GaugeSpec(METRICS["custom"], "", "The number a custom check's query returned"),
)
CHECK_GAUGES = (
    GaugeSpec(CHECK_METRICS["passed"], "", "1 when the check passed, 0 when it failed or errored"),
    GaugeSpec(CHECK_METRICS["up"], "", "1 when the check's query ran, 0 on an error or timeout"),
    GaugeSpec(CHECK_METRICS["duration"], "s", "Seconds the check's query took"),
    GaugeSpec(CHECK_METRICS["last_run"], "s", "Unix time of the check's last attempt"),
    GaugeSpec(CHECK_METRICS["threshold"], "", "A configured bound (dq.bound) in the value's unit"),
)
GAUGES = VALUE_GAUGES + CHECK_GAUGES


def value_points(metric: str) -> Points:
    """Return the point source of one value gauge: the checks publishing `metric` with a value."""
    def points(series: list[Series]) -> Iterable[Point]:
        return [(s.value, s.attributes) for s in series
                if s.spec.metric == metric and s.value is not None]
    return points


def status_points(read: Callable[[Series], float]) -> Points:
    """Return the point source of a dq.check.* gauge that reads one number per series."""
    def points(series: list[Series]) -> Iterable[Point]:
        return [(read(s), s.check_attributes()) for s in series]
    return points


def threshold_points(series: list[Series]) -> Iterable[Point]:
    """Return one dq.check.threshold point per configured bound of each check."""
    return [(bound, {**s.check_attributes(), "dq.bound": name})
            for s in series for name, bound in s.spec.threshold.as_dict().items()]


POINTS: dict[str, Points] = {
    **{gauge.name: value_points(gauge.name) for gauge in VALUE_GAUGES},
    CHECK_METRICS["passed"]: status_points(lambda s: float(s.passed)),
    CHECK_METRICS["up"]: status_points(lambda s: float(s.up)),
    CHECK_METRICS["duration"]: status_points(lambda s: s.duration_s),
    CHECK_METRICS["last_run"]: status_points(lambda s: s.last_run_s),
    CHECK_METRICS["threshold"]: threshold_points,
}


def register_gauges(meter: Meter, registry: ResultsRegistry) -> None:
    """Create every dq.* ObservableGauge on `meter`, each observing `registry`."""
    for gauge in GAUGES:
        callback = _callback(registry, POINTS[gauge.name])
        meter.create_observable_gauge(gauge.name, callbacks=[callback], unit=gauge.unit,
                                      description=gauge.description)


def _callback(registry: ResultsRegistry,
              points: Points) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        # The SDK drops a non-finite point and keeps reporting the old one: never hand it one.
        current = points(registry.snapshot())
        return [Observation(float(value), dict(attrs)) for value, attrs in current
                if math.isfinite(value)]
    return observe
