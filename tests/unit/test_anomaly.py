"""Learned baselines (SPEC 10, issue 12) without Prometheus: the `anomaly:` settings, the
shared hourly summaries and baselines, the DQAnomaly alerts and the dashboard's band."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dqmon.alerts import RuleOptions, build_rules, render_rules
from dqmon.alerts.anomaly import BASELINE_GROUP, SUMMARY_GROUP
from dqmon.config import Config, parse_config
from dqmon.dashboard import build_dashboard

BASE = """
version: 1
warehouses:
  main: {url: "sqlite:///x.db"}
tables:
  - name: orders
    checks:
%s
"""


def config(checks: str) -> Config:
    """Parse a one-table config with the given check lines (8-space indented)."""
    return parse_config(BASE % checks, "checks.yaml", env={})


def scaled(cfg: Config, copies: int) -> Config:
    """Return `cfg` with its tables repeated under new names."""
    tables = tuple(dataclasses.replace(t, name=f"{t.name}_{i}")
                   for i in range(copies) for t in cfg.tables)
    return dataclasses.replace(cfg, tables=tables)


def rules_of(cfg: Config, form: str) -> list[dict[str, Any]]:
    """Return every rule of the file `dqmon rules` writes in `form`."""
    return [r for g in build_rules(cfg, RuleOptions(), form)["groups"]  # type: ignore[arg-type]
            for r in g["rules"]]


def group(cfg: Config, name: str, form: str = "per-check") -> dict[str, Any]:
    """Return the rule group called `name`."""
    groups = build_rules(cfg, RuleOptions(), form)["groups"]  # type: ignore[arg-type]
    return next(g for g in groups if g["name"] == name)


def anomalies(cfg: Config, form: str = "per-check") -> list[dict[str, Any]]:
    """Return the DQAnomaly rules."""
    return [r for r in rules_of(cfg, form) if r.get("alert") == "DQAnomaly"]


def test_empty_anomaly_mapping_takes_the_documented_defaults() -> None:
    """`anomaly: {}` means 14d window, sensitivity 3, no seasonality, 3d history, both ways."""
    [check] = config("      - row_count: {anomaly: {}}").tables[0].checks
    assert check.anomaly is not None
    assert (check.anomaly.window, check.anomaly.sensitivity, check.anomaly.seasonality,
            check.anomaly.min_history, check.anomaly.direction) == (14 * 86400, 3, "none",
                                                                    3 * 86400, "both")


def test_a_check_without_anomaly_gets_no_baseline_and_no_alert() -> None:
    """Nothing watched: the rule file has no baseline group and no DQAnomaly."""
    cfg = config("      - row_count: {min: 1}")
    assert cfg.tables[0].checks[0].anomaly is None
    for form in ("per-check", "generic"):
        groups = build_rules(cfg, RuleOptions(), form)["groups"]  # type: ignore[arg-type]
        assert BASELINE_GROUP not in [g["name"] for g in groups]
        assert anomalies(cfg, form) == []


@pytest.mark.parametrize("form", ["per-check", "generic"])
def test_baseline_rules_do_not_grow_with_the_number_of_checks(form: str) -> None:
    """The baselines are shared per metric and window: 1 table or 500, the same rules."""
    cfg = config("      - row_count: {anomaly: {}}\n"
                 "      - completeness: {columns: [a, b], anomaly: {window: 7d}}")
    one, many = group(cfg, BASELINE_GROUP, form), group(scaled(cfg, 500), BASELINE_GROUP, form)
    assert [r["record"] for r in one["rules"]] == [r["record"] for r in many["rules"]]
    assert [r["record"] for r in one["rules"]][:4] == [
        "dq:dq_completeness_ratio:mean_7d", "dq:dq_completeness_ratio:stddev_7d",
        "dq:dq_row_count:mean_14d", "dq:dq_row_count:stddev_14d"]


def test_generic_form_has_one_anomaly_alert_for_every_check() -> None:
    """`--generic` writes one DQAnomaly rule whatever the number of watched checks."""
    cfg = scaled(config("      - row_count: {anomaly: {}}"), 300)
    assert len(anomalies(cfg, "generic")) == 1
    assert len(anomalies(cfg, "per-check")) == 300


def test_summaries_read_only_the_watched_checks_and_baselines_only_the_summaries() -> None:
    """The hourly summaries select watched checks by name (an unwatched one is never read);
    the baselines read the summaries, never the raw samples."""
    cfg = config("      - row_count: {anomaly: {}}\n"
                 "      - row_count: {name: other_count}")
    summaries = group(cfg, SUMMARY_GROUP)
    assert summaries["interval"] == "1h"
    assert [r["record"] for r in summaries["rules"]] == ["dq:dq_row_count:avg_1h",
                                                        "dq:dq_row_count:stdvar_1h"]
    assert summaries["rules"][0]["expr"] == (
        "avg_over_time((max by (dq_warehouse, dq_table, dq_check, dq_column, dq_rule, dq_stat, "
        'dq_segment) (dq_row_count{dq_table=~"orders",dq_check=~"row_count"}))[1h:5m])')
    mean, stddev = (r["expr"] for r in group(cfg, BASELINE_GROUP)["rules"][:2])
    assert mean == ('avg_over_time(dq:dq_row_count:avg_1h{dq_table=~"orders",'
                    'dq_check=~"row_count"}[14d] offset 1h)')
    assert "avg_over_time(dq:dq_row_count:stdvar_1h{" in stddev
    assert "stdvar_over_time(dq:dq_row_count:avg_1h{" in stddev
    assert "other_count" not in str(build_rules(cfg, RuleOptions(), "per-check")["groups"][:2])
    assert "dq_row_count{" not in mean + stddev


@pytest.mark.parametrize("form", ["per-check", "generic"])
def test_summaries_do_not_grow_with_the_number_of_checks(form: str) -> None:
    """Two summaries per watched gauge, for 1 table or 500, evaluated once an hour."""
    cfg = config("      - row_count: {anomaly: {}}\n"
                 "      - completeness: {columns: [a, b], anomaly: {window: 7d}}")
    one, many = group(cfg, SUMMARY_GROUP, form), group(scaled(cfg, 500), SUMMARY_GROUP, form)
    assert [r["record"] for r in one["rules"]] == [r["record"] for r in many["rules"]] == [
        "dq:dq_completeness_ratio:avg_1h", "dq:dq_completeness_ratio:stdvar_1h",
        "dq:dq_row_count:avg_1h", "dq:dq_row_count:stdvar_1h"]


def test_backfill_writes_only_the_summaries() -> None:
    """`dqmon rules --backfill` is the summaries' group alone: promtool replays it over
    history; the baselines read it at every evaluation and need no replay."""
    cfg = config("      - row_count: {anomaly: {}}")
    text = render_rules(cfg, backfill=True)
    assert text.startswith("# Generated by `dqmon rules --backfill`")
    assert text.count("- name: ") == 1 and f"- name: {SUMMARY_GROUP}" in text
    assert "alert:" not in text


@pytest.mark.parametrize(("direction", "kept", "dropped"), [
    ("up", ") > 3", ") < -3"), ("down", ") < -3", ") > 3")])
def test_direction_keeps_one_side_of_the_band(direction: str, kept: str, dropped: str) -> None:
    """direction: up alerts only above the band, down only below it."""
    cfg = config(f"      - row_count: {{anomaly: {{direction: {direction}}}}}")
    [rule] = anomalies(cfg)
    assert kept in rule["expr"] and dropped not in rule["expr"]


def test_both_directions_compare_the_z_score_both_ways() -> None:
    """The default compares z > sensitivity or z < -sensitivity."""
    [rule] = anomalies(config("      - row_count: {anomaly: {sensitivity: 2.5}}"))
    lines = [line.strip() for line in rule["expr"].splitlines()]
    assert lines.count(") > 2.5") == 1 and lines.count(") < -2.5") == 1
    assert lines[lines.index(") > 2.5") + 1] == "or"


@pytest.mark.parametrize(("season", "window", "offsets"), [
    ("weekly", "14d", ["167h", "335h"]),
    ("daily", "3d", ["23h", "47h", "71h"])])
def test_seasonal_baselines_pool_the_same_time_in_earlier_periods(
        season: str, window: str, offsets: list[str]) -> None:
    """A seasonal baseline reads, in each earlier period, the hourly summary that ends in the
    hour after the same time: centred within half an hour of it."""
    cfg = config(f"      - row_count: {{anomaly: {{window: {window}, min_history: 1d, "
                 f"seasonality: {season}}}}}")
    mean = group(cfg, BASELINE_GROUP)["rules"][0]
    assert mean["record"] == f"dq:dq_row_count:mean_{window}_{season}"
    assert [f"[1h] offset {o})" in mean["expr"] for o in offsets] == [True] * len(offsets)
    assert mean["expr"].count("offset") == len(offsets)


def test_alert_waits_for_min_history_and_skips_erroring_checks() -> None:
    """DQAnomaly needs an hourly summary min_history old within the window and no
    dq_check_up == 0, for two evaluations."""
    [rule] = anomalies(config("      - freshness: {column: c, max_age: 1h, severity: warning,\n"
                              "                    anomaly: {min_history: 2d}}"))
    assert ('present_over_time(dq:dq_freshness_seconds:avg_1h{dq_table="orders",'
            'dq_check="freshness"}[12d] offset 2d)') in rule["expr"]
    assert "unless on (" in rule["expr"] and "dq_check_up" in rule["expr"]
    assert rule["for"] == "1m"
    assert rule["labels"] == {"severity": "warning", "dq_table": "orders", "dq_check": "freshness"}


def test_dashboard_draws_the_band_behind_watched_checks_only() -> None:
    """The row-count panel gets the band and a fill for orders.row_count; others do not."""
    cfg = config("      - row_count: {anomaly: {}}\n"
                 "      - freshness: {column: c, max_age: 1h}")
    panels = {p["title"]: p for p in build_dashboard(cfg)["panels"]}
    rows = [t["expr"] for t in panels["Row count"]["targets"]]
    assert any("dq:anomaly_lower" in e for e in rows) and any("dq:anomaly_upper" in e for e in rows)
    fills = [o for o in panels["Row count"]["fieldConfig"]["overrides"]
             if o["matcher"]["options"] == "orders.row_count band upper"]
    assert fills[0]["properties"][0] == {"id": "custom.fillBelowTo",
                                         "value": "orders.row_count band lower"}
    assert not any("anomaly" in t["expr"] for t in panels["Freshness"]["targets"])
