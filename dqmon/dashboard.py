"""A Grafana dashboard over dqmon's metrics, derived from a `Config` (SPEC sections 3 and 5).

Queries read gauges the way the alerting rules do (`last_over_time` over the config's
longest lookback, aggregated by dq.* labels), so sparse `run-once` pushes draw steady
lines and a restarted or sharded monitor draws one line per check, not one per instance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dqmon.alerts import (
    CHECK_DURATION,
    CHECK_LAST_RUN,
    CHECK_PASSED,
    CHECK_THRESHOLD,
    CHECK_UP,
    RuleOptions,
    duration,
    prom_name,
    window_s,
)
from dqmon.config import METRICS, Config

UID = "dqmon"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TABLES = 'dq_table=~"$dq_table"'
CHECK_LEGEND = "{{dq_table}}.{{dq_check}} {{dq_partition}}"
PASS_FAIL = [{"type": "value", "options": {
    "0": {"text": "FAIL", "color": "red", "index": 0},
    "1": {"text": "PASS", "color": "green", "index": 1},
}}]


def lookback(config: Config, options: RuleOptions | None = None) -> str:
    """Return the longest last_over_time window of the rules, as a Prometheus duration."""
    options = options or RuleOptions()
    seconds = max((window_s(t, options) for t in config.tables), default=options.min_window_s)
    return duration(seconds)


@dataclass
class Layout:
    """Hands out panel ids and grid positions, left to right, top to bottom."""

    window: str
    panels: list[dict[str, Any]] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_h: int = 0

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        """Place `panel` w columns wide, wrapping to a new line when the row is full."""
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str) -> None:
        """Start a new section with a row header."""
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0

    def latest(self, metric: str, by: str = "dq_table, dq_check, dq_partition",
               agg: str = "max", extra: str = "") -> str:
        """Return `agg by (...) (last_over_time(metric{dq_table=~"$dq_table"}[window]))`."""
        matchers = f"{TABLES},{extra}" if extra else TABLES
        return f"{agg} by ({by}) (last_over_time({metric}{{{matchers}}}[{self.window}]))"


def target(ref: str, expr: str, legend: str = CHECK_LEGEND, *,
           instant: bool = False) -> dict[str, Any]:
    """Return one Prometheus query of a panel."""
    return {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
            "instant": instant, "range": not instant}


def panel(kind: str, title: str, targets: list[dict[str, Any]], *, unit: str = "short",
          description: str = "", **extra: Any) -> dict[str, Any]:
    """Return a panel of `kind` with its queries and unit."""
    defaults: dict[str, Any] = {"unit": unit}
    defaults.update(extra.pop("defaults", {}))
    return {"type": kind, "title": title, "description": description, "datasource": DATASOURCE,
            "targets": targets, "fieldConfig": {"defaults": defaults,
                                                "overrides": extra.pop("overrides", [])},
            "options": extra.pop("options", {}), **extra}


def threshold_line(layout: Layout, value_metric: str, bound: str, ref: str) -> dict[str, Any]:
    """Return the dq_check_threshold query of one bound, only for checks of `value_metric`."""
    by = "dq_table, dq_check"
    expr = (f"{layout.latest(CHECK_THRESHOLD, by, extra=f'dq_bound={json.dumps(bound)}')}\n"
            f"and on ({by})\n{layout.latest(value_metric, by)}")
    return target(ref, expr, f"{{{{dq_table}}}}.{{{{dq_check}}}} {bound} threshold")


DASHED_RED = {"matcher": {"id": "byRegexp", "options": ".* threshold$"}, "properties": [
    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
    {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
    {"id": "custom.fillOpacity", "value": 0},
]}


def value_panel(layout: Layout, title: str, kind: str, unit: str, bounds: tuple[str, ...],
                **extra: Any) -> dict[str, Any]:
    """Return a time series of one check kind's value gauge with its threshold lines."""
    metric = prom_name(METRICS[kind])
    queries = [target("A", layout.latest(metric))]
    queries += [threshold_line(layout, metric, b, chr(ord("B") + i)) for i, b in enumerate(bounds)]
    return panel("timeseries", title, queries, unit=unit, overrides=[DASHED_RED],
                 description=f"{metric} per check; dashed: dq_check_threshold", **extra)


# --- sections --------------------------------------------------------------------------------

def overview(layout: Layout) -> None:
    """Add the status section: counts of failing and erroring checks, and a status table."""
    layout.row("Check status")
    red_from_1 = {"thresholds": {"mode": "absolute", "steps": [
        {"color": "green", "value": None}, {"color": "red", "value": 1}]}}
    by = "dq_table, dq_check"
    for title, metric in (("Failing checks", CHECK_PASSED), ("Checks that cannot run", CHECK_UP)):
        expr = f"count({layout.latest(metric, by, agg='min')} == 0) or vector(0)"
        layout.add(panel("stat", title, [target("A", expr, "", instant=True)],
                         defaults=red_from_1, description=f"checks whose {metric} is 0"), 4)
    status = layout.latest(CHECK_PASSED, "dq_table, dq_check, dq_severity", agg="min")
    table = panel("table", "Check status per table", [
        target("A", status, "", instant=True) | {"format": "table"}],
        defaults={"mappings": PASS_FAIL, "custom": {"cellOptions": {"type": "color-background"}}},
        transformations=[{"id": "organize", "options": {
            "excludeByName": {"Time": True},
            "renameByName": {"Value": "status", "dq_table": "table", "dq_check": "check",
                             "dq_severity": "severity"}}}],
        options={"sortBy": [{"displayName": "status", "desc": False}]})
    layout.add(table, 16, 10)
    timeline = panel("state-timeline", "Check status over time",
                     [target("A", layout.latest(CHECK_PASSED, by, agg="min"),
                             "{{dq_table}}.{{dq_check}}")],
                     defaults={"mappings": PASS_FAIL, "color": {"mode": "thresholds"}},
                     options={"showValue": "never", "mergeValues": True})
    layout.add(timeline, 24, 10)


def values(layout: Layout) -> None:
    """Add freshness, the three ratios, row counts, schema mismatches and custom values."""
    layout.row("Freshness and volume")
    layout.add(value_panel(layout, "Freshness", "freshness", "s", ("max",)), 12)
    layout.add(value_panel(layout, "Row count", "row_count", "short", ("min", "max")), 12)
    layout.row("Ratios")
    ratio = {"min": 0, "max": 1}
    for title, kind in (("Completeness", "completeness"), ("Validity", "validity"),
                        ("Uniqueness", "uniqueness")):
        layout.add(value_panel(layout, title, kind, "percentunit", ("min",), defaults=ratio), 8)
    layout.add(value_panel(layout, "Schema mismatches", "schema", "short", ()), 12)
    layout.add(value_panel(layout, "Custom checks", "custom", "short", ("min", "max")), 12)


def runs(layout: Layout) -> None:
    """Add the monitor's own health: errors, durations and time since the last run."""
    layout.row("Runs")
    by = "dq_table, dq_check"
    errors = f"count by (dq_table) ({layout.latest(CHECK_UP, by, agg='min')} == 0)"
    layout.add(panel("timeseries", "Check errors", [target("A", errors, "{{dq_table}}")],
                     description="checks per table whose dq_check_up is 0",
                     defaults={"custom": {"drawStyle": "bars", "fillOpacity": 60}}), 8)
    layout.add(panel("timeseries", "Check duration",
                     [target("A", layout.latest(CHECK_DURATION, by), "{{dq_table}}.{{dq_check}}")],
                     unit="s", description=CHECK_DURATION), 8)
    age = f"time() - {layout.latest(CHECK_LAST_RUN, 'dq_table')}"
    layout.add(panel("timeseries", "Time since the last run", [target("A", age, "{{dq_table}}")],
                     unit="s", description=f"now minus {CHECK_LAST_RUN}"), 8)


# --- the dashboard ---------------------------------------------------------------------------

def templating() -> dict[str, Any]:
    """Return the datasource and dq_table variables."""
    datasource = {"name": "datasource", "label": "Data source", "type": "datasource",
                  "query": "prometheus", "current": {}, "hide": 0}
    table = {"name": "dq_table", "label": "Table", "type": "query", "datasource": DATASOURCE,
             "query": {"query": f"label_values({CHECK_UP}, dq_table)", "refId": "tables"},
             "definition": f"label_values({CHECK_UP}, dq_table)", "refresh": 2,
             "multi": True, "includeAll": True, "allValue": ".*", "sort": 1,
             "current": {"text": "All", "value": "$__all"}}
    return {"list": [datasource, table]}


def build_dashboard(config: Config, options: RuleOptions | None = None) -> dict[str, Any]:
    """Return the Grafana dashboard model for `config`."""
    layout = Layout(lookback(config, options))
    for section in (overview, values, runs):
        section(layout)
    tables = ", ".join(t.name for t in config.tables)
    return {
        "uid": UID, "title": "dqmon: data quality", "tags": ["dqmon", "data-quality"],
        "description": f"Generated by `dqmon dashboard` (tables: {tables})",
        "editable": True, "timezone": "browser", "refresh": "1m", "schemaVersion": 39,
        "version": 1, "time": {"from": "now-24h", "to": "now"}, "graphTooltip": 1,
        "templating": templating(), "annotations": {"list": []}, "panels": layout.panels,
    }


def render_dashboard(config: Config, options: RuleOptions | None = None) -> str:
    """Return the dashboard as indented JSON text."""
    return json.dumps(build_dashboard(config, options), indent=2, ensure_ascii=False) + "\n"
