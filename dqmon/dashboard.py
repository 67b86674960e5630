"""A Grafana dashboard over dqmon's metrics, derived from a `Config` (SPEC sections 3 and 5).

Queries read gauges the way the alerting rules do (`last_over_time` over the config's
longest lookback, aggregated by dq.* labels), so sparse `run-once` pushes draw steady
lines and a restarted or sharded monitor draws one line per check, not one per instance.
When a table has `segment_by` (SPEC 8), a `dq_segment` variable filters the panels of the
kinds the scan computes per segment; its "All" (`.*`) keeps the whole-table series, which
have no `dq_segment`.
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
from dqmon.alerts.anomaly import Watch, watches
from dqmon.alerts.naming import Naming, translate, translate_label, translate_legend
from dqmon.config import AGGREGATE_KINDS, METRICS, Config

UID = "dqmon"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TABLES = 'dq_table=~"$dq_table"'
SEGMENTS = 'dq_segment=~"$dq_segment"'
CHECK_LABELS = "dq_table, dq_check, dq_partition, dq_segment"
CHECK_LEGEND = "{{dq_table}}.{{dq_check}} {{dq_partition}} {{dq_segment}}"
RATIO = {"min": 0, "max": 1}
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
    segments: bool = False  # a table has segment_by: the $dq_segment variable exists
    watches: tuple[Watch, ...] = ()  # anomaly-watched checks: their band is drawn (SPEC 10)
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

    def latest(self, metric: str, by: str = CHECK_LABELS, agg: str = "max",
               extra: str = "") -> str:
        """Return `agg by (...) (last_over_time(metric{dq_table=~"$dq_table"}[window]))`."""
        matchers = f"{TABLES},{extra}" if extra else TABLES
        return f"{agg} by ({by}) (last_over_time({metric}{{{matchers}}}[{self.window}]))"

    def segment_filter(self, kind: str) -> str:
        """Return the $dq_segment matcher for a kind the scan computes per segment, or ""."""
        return SEGMENTS if self.segments and kind in AGGREGATE_KINDS else ""


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
    """Return a time series of one check kind's value gauge with its threshold lines and,
    behind anomaly-watched checks, their learned band (SPEC 10)."""
    metric = prom_name(METRICS[kind])
    queries = [target("A", layout.latest(metric, extra=layout.segment_filter(kind)))]
    queries += [threshold_line(layout, metric, b, chr(ord("B") + i)) for i, b in enumerate(bounds)]
    watched = sorted({(w.table.name, w.check.name) for w in layout.watches if w.metric == metric})
    overrides, description = [DASHED_RED], f"{metric} per check; dashed: dq_check_threshold"
    if watched:
        queries += [band_line(layout, metric, edge, ref) for edge, ref in (("lower", "Y"),
                                                                          ("upper", "Z"))]
        overrides += [BAND_STYLE, *(band_fill(f"{t}.{c}") for t, c in watched)]
        description += "; shaded: the learned band of anomaly-watched checks"
    return panel("timeseries", title, queries, unit=unit, overrides=overrides,
                 description=description, **extra)


def band_line(layout: Layout, value_metric: str, edge: str, ref: str) -> dict[str, Any]:
    """Return one edge of the learned band (dq:anomaly_lower/upper) of `value_metric`'s checks."""
    by = "dq_table, dq_check"
    band = f"max by ({by}) (dq:anomaly_{edge}{{{TABLES}}})"
    expr = f"{band}\nand on ({by})\n{layout.latest(value_metric, by)}"
    return target(ref, expr, f"{{{{dq_table}}}}.{{{{dq_check}}}} band {edge}")


BAND_STYLE = {"matcher": {"id": "byRegexp", "options": ".* band (lower|upper)$"}, "properties": [
    {"id": "custom.lineWidth", "value": 0},
    {"id": "color", "value": {"mode": "fixed", "fixedColor": "rgba(128, 128, 128, 0.5)"}},
    {"id": "custom.hideFrom", "value": {"legend": True, "tooltip": False, "viz": False}},
]}


def band_fill(check: str) -> dict[str, Any]:
    """Return the override that shades one check's band (Grafana fills between two series)."""
    return {"matcher": {"id": "byName", "options": f"{check} band upper"}, "properties": [
        {"id": "custom.fillBelowTo", "value": f"{check} band lower"},
        {"id": "custom.fillOpacity", "value": 20},
    ]}


# --- sections --------------------------------------------------------------------------------

def overview(layout: Layout) -> None:
    """Add the status section: counts of failing and erroring checks, and a status table.

    Segments fold into their check (`min`): a check with a failing segment shows FAIL.
    """
    layout.row("Check status")
    red_from_1 = {"thresholds": {"mode": "absolute", "steps": [
        {"color": "green", "value": None}, {"color": "red", "value": 1}]}}
    by = "dq_table, dq_check"
    for title, metric in (("Failing checks", CHECK_PASSED), ("Checks that cannot run", CHECK_UP)):
        expr = f"count({layout.latest(metric, by, agg='min')} == 0) or vector(0)"
        layout.add(panel("stat", title, [target("A", expr, "", instant=True)],
                         defaults=red_from_1, description=f"checks whose {metric} is 0"), 4)
    status = layout.latest(CHECK_PASSED, "dq_table, dq_check, dq_severity", agg="min")
    layout.add(status_table("Check status per table", status), 16, 10)
    timeline = panel("state-timeline", "Check status over time",
                     [target("A", layout.latest(CHECK_PASSED, by, agg="min"),
                             "{{dq_table}}.{{dq_check}}")],
                     defaults={"mappings": PASS_FAIL, "color": {"mode": "thresholds"}},
                     options={"showValue": "never", "mergeValues": True})
    layout.add(timeline, 24, 10)


def status_table(title: str, expr: str) -> dict[str, Any]:
    """Return a table of PASS/FAIL per series of `expr` (dq_check_passed), failures first."""
    return panel("table", title, [target("A", expr, "", instant=True) | {"format": "table"}],
                 defaults={"mappings": PASS_FAIL,
                           "custom": {"cellOptions": {"type": "color-background"}}},
                 transformations=[{"id": "organize", "options": {
                     "excludeByName": {"Time": True},
                     "renameByName": {"Value": "status", "dq_table": "table",
                                      "dq_check": "check", "dq_severity": "severity",
                                      "dq_segment": "segment"}}}],
                 options={"sortBy": [{"displayName": "status", "desc": False}]})


def values(layout: Layout) -> None:
    """Add freshness, the three ratios, row counts, schema mismatches and custom values."""
    layout.row("Freshness and volume")
    layout.add(value_panel(layout, "Freshness", "freshness", "s", ("max",)), 12)
    layout.add(value_panel(layout, "Row count", "row_count", "short", ("min", "max")), 12)
    layout.row("Ratios")
    for title, kind in (("Completeness", "completeness"), ("Validity", "validity"),
                        ("Uniqueness", "uniqueness")):
        layout.add(value_panel(layout, title, kind, "percentunit", ("min", "max"),
                               defaults=RATIO), 8)
    layout.add(value_panel(layout, "Schema mismatches", "schema", "short", ()), 12)
    layout.add(value_panel(layout, "Custom checks", "custom", "short", ("min", "max")), 12)


def statistics(layout: Layout) -> None:
    """Add statistic values and reference ratios with their threshold lines (SPEC 8)."""
    layout.row("Statistics and references")
    layout.add(value_panel(layout, "Statistics", "statistic", "short", ("min", "max")), 12)
    layout.add(value_panel(layout, "Reference integrity", "reference", "percentunit",
                           ("min", "max"), defaults=RATIO), 12)


def segments(layout: Layout) -> None:
    """Add the verdict of every segment of the segmented tables (SPEC 8), per $dq_segment."""
    if not layout.segments:
        return
    layout.row("Segments")
    status = layout.latest(CHECK_PASSED, "dq_table, dq_check, dq_segment", agg="min",
                           extra=f'dq_segment!="",{SEGMENTS}')
    layout.add(status_table("Check status per segment", status), 24, 10)


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

def query_variable(name: str, label: str, query: str) -> dict[str, Any]:
    """Return a multi-value template variable over label values, "All" (`.*`) by default."""
    return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
            "multi": True, "includeAll": True, "allValue": ".*", "sort": 1,
            "current": {"text": "All", "value": "$__all"}}


def templating(segmented: bool = False) -> dict[str, Any]:
    """Return the datasource and dq_table variables, and dq_segment when tables have segments.

    `.*` also matches a missing label, so "All" segments keeps the whole-table series.
    """
    datasource = {"name": "datasource", "label": "Data source", "type": "datasource",
                  "query": "prometheus", "current": {}, "hide": 0}
    table = query_variable("dq_table", "Table", f"label_values({CHECK_UP}, dq_table)")
    segment = query_variable("dq_segment", "Segment",
                             f"label_values({CHECK_UP}{{{TABLES}}}, dq_segment)")
    return {"list": [datasource, table, *([segment] if segmented else [])]}


def build_dashboard(config: Config, options: RuleOptions | None = None,
                    naming: Naming | None = None) -> dict[str, Any]:
    """Return the Grafana dashboard model for `config`, its queries' names in `naming`
    (default: the file's `naming:`)."""
    segmented = any(t.segment_by is not None for t in config.tables)
    layout = Layout(lookback(config, options), segmented, tuple(watches(list(config.tables))))
    for section in (overview, values, statistics, segments, runs):
        section(layout)
    tables = ", ".join(t.name for t in config.tables)
    return {
        "uid": UID, "title": "dqmon: data quality", "tags": ["dqmon", "data-quality"],
        "description": f"Generated by `dqmon dashboard` (tables: {tables})",
        "editable": True, "timezone": "browser", "refresh": "1m", "schemaVersion": 39,
        "version": 1, "time": {"from": "now-24h", "to": "now"}, "graphTooltip": 1,
        "templating": named_templating(templating(segmented), naming or config.naming),
        "annotations": {"list": []},
        "panels": [named_panel(p, naming or config.naming) for p in layout.panels],
    }


def render_dashboard(config: Config, options: RuleOptions | None = None,
                     naming: Naming | None = None) -> str:
    """Return the dashboard as indented JSON text."""
    dashboard = build_dashboard(config, options, naming)
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


# --- naming (issue 13) -----------------------------------------------------------------------

def named_target(query: dict[str, Any], naming: Naming) -> dict[str, Any]:
    """Return one panel query with its expression and legend in `naming`."""
    return query | {"expr": translate(query["expr"], naming),
                    "legendFormat": translate_legend(query["legendFormat"], naming)}


def named_panel(panel: dict[str, Any], naming: Naming) -> dict[str, Any]:
    """Return a panel whose queries and table columns use `naming`."""
    if naming == "underscore" or "targets" not in panel:
        return panel
    out = panel | {"targets": [named_target(t, naming) for t in panel["targets"]]}
    if "transformations" in panel:
        out["transformations"] = [named_columns(step, naming) for step in panel["transformations"]]
    return out


def named_columns(step: dict[str, Any], naming: Naming) -> dict[str, Any]:
    """Return a table transformation whose label columns are renamed under `naming`."""
    renames = step["options"].get("renameByName", {})
    named = {translate_label(k, naming): v for k, v in renames.items()}
    return step | {"options": step["options"] | {"renameByName": named}}


def named_templating(variables: dict[str, Any], naming: Naming) -> dict[str, Any]:
    """Return the template variables with their `label_values` queries in `naming`."""
    for variable in variables["list"]:
        if variable["type"] == "query":
            query = translate(variable["definition"], naming)
            variable["query"]["query"] = variable["definition"] = query
    return variables
