"""Learned baselines (SPEC 10, issue 12) without Prometheus: the `anomaly:` settings, the
shared recording rules, the DQAnomaly alerts and the dashboard's band."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dqmon.alerts import RuleOptions, build_rules
from dqmon.alerts.anomaly import BASELINE_GROUP
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


def test_baselines_read_only_the_watched_checks() -> None:
    """The recording rules select watched checks by name: an unwatched one is never read."""
    cfg = config("      - row_count: {anomaly: {}}\n"
                 "      - row_count: {name: other_count}")
    mean = group(cfg, BASELINE_GROUP)["rules"][0]["expr"]
    assert 'dq_row_count{dq_table=~"orders",dq_check=~"row_count"}' in mean
    assert "other_count" not in mean


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
    ("weekly", "14d", ["10050m", "20130m"]),
    ("daily", "3d", ["1410m", "2850m", "4290m"])])
def test_seasonal_baselines_pool_the_same_time_in_earlier_periods(
        season: str, window: str, offsets: list[str]) -> None:
    """A seasonal baseline reads an hour centred on the same time of each earlier period."""
    cfg = config(f"      - row_count: {{anomaly: {{window: {window}, min_history: 1d, "
                 f"seasonality: {season}}}}}")
    mean = group(cfg, BASELINE_GROUP)["rules"][0]
    assert mean["record"] == f"dq:dq_row_count:mean_{window}_{season}"
    assert [f"[1h:5m] offset {o})" in mean["expr"] for o in offsets] == [True] * len(offsets)
    assert mean["expr"].count("offset") == len(offsets)


def test_alert_waits_for_min_history_and_skips_erroring_checks() -> None:
    """DQAnomaly needs a sample min_history old and no dq_check_up == 0, for two evaluations."""
    [rule] = anomalies(config("      - freshness: {column: c, max_age: 1h, severity: warning,\n"
                              "                    anomaly: {min_history: 2d}}"))
    assert "present_over_time(dq_freshness_seconds" in rule["expr"]
    assert "[15m] offset 2d)" in rule["expr"]
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
