"""The `dq.*` gauges of SPEC section 3 and the `dq.monitor.*` gauges of issue 9.

The SPEC gauges observe the results registry; each callback also records how many points it
reported, which `dq.monitor.series` publishes in the same collection (registered last, so
called last).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from dqmon.config.resolved import CHECK_METRICS, METRICS, MONITOR_METRICS
from dqmon.telemetry.cardinality import OverflowWatch, SeriesCounts
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
    GaugeSpec(METRICS["schema_change"], "{column}",
              "Columns added, removed or retyped since the previous look at the catalog"),
    GaugeSpec(METRICS["statistic"], "", "A statistic (dq.stat) of a column's non-null values"),
    GaugeSpec(METRICS["reference"], "1",
              "Non-null values found in the referenced column / non-null values"),
)
CHECK_GAUGES = (
    GaugeSpec(CHECK_METRICS["passed"], "", "1 when the check passed, 0 when it failed or errored"),
    GaugeSpec(CHECK_METRICS["up"], "", "1 when the check's query ran, 0 on an error or timeout"),
    GaugeSpec(CHECK_METRICS["duration"], "s", "Seconds the check's query took"),
    GaugeSpec(CHECK_METRICS["last_run"], "s", "Unix time of the check's last attempt"),
    GaugeSpec(CHECK_METRICS["threshold"], "", "A configured bound (dq.bound) in the value's unit"),
)
GAUGES = VALUE_GAUGES + CHECK_GAUGES
# About dqmon itself, not a check: no dq.* check attributes, no unit.
MONITOR_GAUGES = (
    GaugeSpec(MONITOR_METRICS["series"], "",
              "Series each dq.* gauge (dq.metric) reported at its latest collection"),
    GaugeSpec(MONITOR_METRICS["overflow"], "",
              "1 when series were lost to the OpenTelemetry cardinality limit, else 0"),
)


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


def register_gauges(meter: Meter, registry: ResultsRegistry, counts: SeriesCounts) -> None:
    """Create every dq.* ObservableGauge on `meter`, each observing `registry`."""
    for gauge in GAUGES:
        callback = _callback(registry, gauge.name, counts)
        meter.create_observable_gauge(gauge.name, callbacks=[callback], unit=gauge.unit,
                                      description=gauge.description)


def register_monitor_gauges(meter: Meter, counts: SeriesCounts, watch: OverflowWatch) -> None:
    """Create the dq.monitor.* gauges; call after `register_gauges` (they read its counts)."""
    series, overflow = MONITOR_GAUGES
    meter.create_observable_gauge(series.name, callbacks=[_series_callback(counts)],
                                  unit=series.unit, description=series.description)
    meter.create_observable_gauge(overflow.name, callbacks=[_overflow_callback(counts, watch)],
                                  unit=overflow.unit, description=overflow.description)


def _callback(registry: ResultsRegistry, metric: str,
              counts: SeriesCounts) -> Callable[[CallbackOptions], Iterable[Observation]]:
    points = POINTS[metric]

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        # The SDK drops a non-finite point and keeps reporting the old one: never hand it one.
        current = points(registry.snapshot())
        observations = [Observation(float(value), dict(attrs)) for value, attrs in current
                        if math.isfinite(value)]
        counts.set(metric, len(observations))
        return observations
    return observe


def _series_callback(counts: SeriesCounts) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {"dq.metric": metric}) for metric, count in counts.items()]
    return observe


def _overflow_callback(counts: SeriesCounts,
                       watch: OverflowWatch) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        # More points than the limit overflow in this very collection; the watch also knows
        # of overflows it saw in earlier ones (attribute sets the SDK still holds).
        too_many = any(count > watch.limit for _, count in counts.items())
        return [Observation(1 if too_many or watch.overflowing else 0)]
    return observe
