"""The SDK's cardinality limit: set high once, and any series it still folds away reported loudly.

opentelemetry-sdk keeps at most 2,000 attribute sets per instrument by default and folds the
rest into one `otel.metric.overflow=true` point, silently (SPEC section 11, issue 9). The
limit is fixed when an instrument is first collected, so it cannot follow a reload to a
bigger config: dqmon sets it once, far above any config, through a View. `OverflowWatch`
looks at every collection dqmon's readers export and warns once per outage; the
`dq.monitor.*` gauges publish the counts and the outcome.
"""

from __future__ import annotations

import inspect
import threading

from opentelemetry.sdk.metrics.export import Metric, MetricsData
from opentelemetry.sdk.metrics.view import View

from dqmon.logs import get_logger

# Far above any config (10,000 tables x a few checks x 3 partition slices is ~10^5 per gauge).
# The SDK only compares the count of attribute sets with the limit when it meets a new one,
# so a high limit costs nothing by itself (docs/telemetry.md, "Cardinality").
CARDINALITY_LIMIT = 1_000_000
OVERFLOW_ATTRIBUTE = "otel.metric.overflow"

log = get_logger(__name__)


def limit_views(meter_name: str, limit: int) -> list[View]:
    """Return the View that gives every instrument of `meter_name` the cardinality `limit`."""
    if "aggregation_cardinality_limit" not in inspect.signature(View).parameters:
        # An SDK without the parameter has no settable limit; the watch still reports overflow.
        return []
    return [View(instrument_name="*", meter_name=meter_name,
                 aggregation_cardinality_limit=limit)]


def overflowing_metrics(data: MetricsData | None) -> list[str]:
    """Return the names of the metrics in `data` that carry an overflow point."""
    if data is None:
        return []
    metrics = (m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
    return sorted({m.name for m in metrics if _has_overflow(m)})


def _has_overflow(metric: Metric) -> bool:
    return any(OVERFLOW_ATTRIBUTE in (point.attributes or {}) for point in metric.data.data_points)


class OverflowWatch:
    """Tells which export sources saw an overflow point; warns once per outage, not per export."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._overflowing: set[str] = set()

    def inspect(self, source: str, data: MetricsData | None) -> None:
        """Look at one collection exported to `source`; log only when its state changes."""
        metrics = overflowing_metrics(data)
        with self._lock:
            was = source in self._overflowing
            if metrics:
                self._overflowing.add(source)
            else:
                self._overflowing.discard(source)
        if metrics and not was:
            log.warning("series lost to the OpenTelemetry cardinality limit", source=source,
                        metrics=",".join(metrics), limit=self.limit,
                        effect="points past the limit are folded into otel.metric.overflow")
        elif was and not metrics:
            log.info("no series lost to the OpenTelemetry cardinality limit any more",
                     source=source)

    @property
    def overflowing(self) -> bool:
        """Tell whether the latest collection of any source had an overflow point."""
        with self._lock:
            return bool(self._overflowing)


class SeriesCounts:
    """The number of points each gauge reported at its latest collection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def set(self, metric: str, count: int) -> None:
        """Record how many points `metric` just reported."""
        with self._lock:
            self._counts[metric] = count

    def items(self) -> list[tuple[str, int]]:
        """Return (metric, count) for every gauge collected so far."""
        with self._lock:
            return list(self._counts.items())
