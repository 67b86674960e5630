"""The Grafana dashboard derived from checks.yaml (dqmon.dashboard, `dqmon dashboard`)."""

from __future__ import annotations

import json
import re
from typing import Any

from dqmon.config import Config, parse_config
from dqmon.dashboard import build_dashboard, lookback, render_dashboard

# SPEC section 3: the Prometheus names of every gauge dqmon publishes.
SPEC_METRICS = {
    "dq_freshness_seconds", "dq_row_count", "dq_completeness_ratio", "dq_validity_ratio",
    "dq_uniqueness_ratio", "dq_schema_mismatches", "dq_custom_value", "dq_check_passed",
    "dq_check_up", "dq_check_duration_seconds", "dq_check_last_run_timestamp_seconds",
    "dq_check_threshold", "dq_statistic_value", "dq_reference_ratio",
}
SPEC_LABELS = {"dq_warehouse", "dq_table", "dq_check", "dq_column", "dq_rule", "dq_partition",
               "dq_severity", "dq_bound", "dq_stat", "dq_segment"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "and", "or", "unless", "group_left",
                "group_right", "bool", "offset"}

CONFIG = """
version: 1
warehouses:
  main: {url: "sqlite:///x.db"}
tables:
  - name: orders
    schedule: every 1m
    checks:
      - freshness: {column: created_at, max_age: 2h}
  - name: customers
    schedule: every 20m
    checks:
      - row_count: {min: 1}
"""


def config() -> Config:
    """Parse the test's checks.yaml."""
    return parse_config(CONFIG, "checks.yaml", env={})


def panels() -> list[dict[str, Any]]:
    """Return the dashboard's panels, rows excluded."""
    return [p for p in build_dashboard(config())["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    """Return every query expression of every panel."""
    return [t["expr"] for p in panels() for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects (not labels, functions, keywords)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)  # matchers and ranges
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", bare)  # grouping labels
    words = re.findall(r"(?<![\w:])[A-Za-z_:][\w:]*+(?!\s*\()", bare)  # not before "("
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d.*|e\d+", w)}


def test_metric_name_extraction_sees_selectors_only() -> None:
    """The test's own PromQL reader finds metrics and skips labels, functions and keywords."""
    assert metric_names('count(max by (dq_table) (last_over_time(dq_check_up{dq_table=~"a"}'
                        '[5m])) == 0) or vector(0)') == {"dq_check_up"}
    assert metric_names("time() - x and on (a) y") == {"x", "y"}


def test_every_panel_queries_only_spec_metrics() -> None:
    """Each panel expression names at least one metric, and all of them are in SPEC section 3."""
    for expr in exprs():
        names = metric_names(expr)
        assert names, expr
        assert names <= SPEC_METRICS, expr


def test_every_label_a_panel_uses_is_a_spec_label() -> None:
    """Grouping, matching and legends use dq.* labels only (never instance or job)."""
    for p in panels():
        for t in p["targets"]:
            used = set(re.findall(r"\b(dq_[a-z_]+)\s*(?:=~|=|,|\))", t["expr"]))
            used |= set(re.findall(r"\{\{(\w+)\}\}", t["legendFormat"]))
            assert used - SPEC_METRICS <= SPEC_LABELS, (p["title"], used)


def test_the_dashboard_covers_what_the_issue_asks() -> None:
    """Status, freshness, the ratios, row counts, statistics, references, errors and durations
    each have a panel."""
    titles = [p["title"] for p in panels()]
    for title in ("Check status per table", "Freshness", "Completeness", "Validity",
                  "Uniqueness", "Row count", "Statistics", "Reference integrity", "Check errors",
                  "Check duration"):
        assert title in titles
    used = set().union(*(metric_names(e) for e in exprs()))
    assert used == SPEC_METRICS


def test_every_query_follows_the_table_variable() -> None:
    """Each query selects dq_table=~"$dq_table", and the variable lists dqmon's tables."""
    for expr in exprs():
        assert 'dq_table=~"$dq_table"' in expr, expr
    variables = {v["name"]: v for v in build_dashboard(config())["templating"]["list"]}
    assert variables["dq_table"]["query"]["query"] == "label_values(dq_check_up, dq_table)"
    assert variables["dq_table"]["includeAll"] is True
    assert variables["datasource"]["query"] == "prometheus"


def test_freshness_panel_draws_the_configured_threshold() -> None:
    """Freshness has a second query: dq_check_threshold{dq_bound="max"} of freshness checks."""
    freshness = next(p for p in panels() if p["title"] == "Freshness")
    value, line = freshness["targets"]
    assert "dq_freshness_seconds" in value["expr"]
    assert 'dq_check_threshold{dq_table=~"$dq_table",dq_bound="max"}' in line["expr"]
    assert "and on (dq_table, dq_check)" in line["expr"]
    assert line["legendFormat"].endswith("threshold")
    assert freshness["fieldConfig"]["defaults"]["unit"] == "s"


def test_lookback_is_the_longest_rule_window() -> None:
    """Queries hold sparse pushes as long as the rules do: 3 x 20m = 1h here."""
    assert lookback(config()) == "1h"
    assert all("[1h]" in e for e in exprs())


def test_panels_tile_the_grid_without_overlap() -> None:
    """Panel ids are unique and no two panels share a grid cell of the 24-column grid."""
    cells: set[tuple[int, int]] = set()
    all_panels = build_dashboard(config())["panels"]
    assert len({p["id"] for p in all_panels}) == len(all_panels)
    for p in all_panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, p["title"]
        cells |= mine


def test_dashboard_text_is_the_model_as_json() -> None:
    """render_dashboard() is indented JSON that parses back to build_dashboard()."""
    text = render_dashboard(config())
    assert text.endswith("}\n")
    model = json.loads(text)
    assert model == build_dashboard(config())
    assert model["uid"] == "dqmon"
    assert model["title"] == "dqmon: data quality"
