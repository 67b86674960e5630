"""Prometheus rules derived from checks.yaml (dqmon.alerts, `dqmon rules`): no network."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dqmon.alerts import (
    RuleOptions,
    build_rules,
    duration,
    number,
    quote,
    render_rules,
    selector,
    template_literal,
    window_s,
)
from dqmon.cli import main
from dqmon.config import Config, parse_config
from dqmon.dashboard import render_dashboard

CONFIG = """
version: 1
warehouses:
  main: {url: "sqlite:///x.db"}
defaults: {schedule: every 1m}
tables:
  - name: orders
    checks:
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 1000, max: 5000000}
      - completeness: {columns: [order_id, amount], min_ratio: 0.999}
      - validity: {name: email_format, column: email, regex: '^.+@.+$', severity: warning}
      - uniqueness: {columns: [order_id, line]}
      - schema: {columns: {order_id: integer}}
      - custom: {name: late, sql: "select 1", max: 10}
  - name: daily
    schedule: "0 6 * * 1-5"
    partition: {column: day, granularity: day, lag: 0}
    checks:
      - row_count: {}
      - row_count: {name: rows_min, min: 1}
  - name: hourly
    schedule: every 10m
    partition: {column: hour, granularity: hour, lag: 1}
    checks:
      - row_count: {min: 1}
"""

IDENTITY = ("dq_warehouse, dq_table, dq_check, dq_column, dq_rule, dq_stat, dq_partition, "
            "dq_segment")


def config(text: str = CONFIG) -> Config:
    """Parse a checks.yaml text."""
    return parse_config(text, "checks.yaml", env={})


def rules_of(cfg: Config, table: str, options: RuleOptions | None = None) -> list[dict[str, Any]]:
    """Return the rules of one table's group."""
    groups = build_rules(cfg, options)["groups"]
    return next(g["rules"] for g in groups if g["name"] == f"dqmon.{table}")


def rule(cfg: Config, table: str, alert: str, check: str | None = None) -> dict[str, Any]:
    """Return the one rule of `table` called `alert` (for `check`, when given)."""
    found = [r for r in rules_of(cfg, table) if r["alert"] == alert
             and (check is None or r["labels"].get("dq_check") == check)]
    assert len(found) == 1, found
    return found[0]


def test_label_values_are_escaped_as_promql_strings() -> None:
    """Quotes, backslashes and newlines in names cannot break out of the label matcher."""
    assert quote('we"ird\\na\nme') == '"we\\"ird\\\\na\\nme"'
    assert selector("dq_row_count", dq_table='a"b', dq_check="c") == \
        'dq_row_count{dq_table="a\\"b",dq_check="c"}'
    assert selector("up") == "up"


@pytest.mark.parametrize(("seconds", "text"), [
    (300, "5m"), (7200, "2h"), (7 * 86400, "7d"), (90, "90s"), (1.5, "1500ms"), (0, "1ms"),
    (3 * 86400 + 60, "4321m"),
])
def test_durations_use_the_largest_exact_prometheus_unit(seconds: float, text: str) -> None:
    """Durations print in the largest unit that divides them exactly, never rounded."""
    assert duration(seconds) == text


@pytest.mark.parametrize(("value", "text"), [
    (1000, "1000"), (0.999, "0.999"), (7200.0, "7200"), (1e-07, "1e-07"), (math.inf, "+Inf"),
    (-2.5, "-2.5"), (1e20, "1e+20"),
])
def test_thresholds_print_as_exact_promql_numbers(value: float, text: str) -> None:
    """Thresholds keep every digit (0.9999999 must not become 1)."""
    assert number(value) == text


def test_freshness_alert_compares_the_latest_value_with_max_age() -> None:
    """The freshness alert reads last_over_time over 3 periods (at least 5m), by dq labels only."""
    r = rule(config(), "orders", "DQFreshness")
    assert r["expr"] == (
        f"max by ({IDENTITY}) (\n"
        '  last_over_time(dq_freshness_seconds{dq_table="orders",dq_check="freshness"}[5m])\n'
        ") > 7200")
    assert r["for"] == "5m"
    assert r["labels"] == {"severity": "critical", "dq_table": "orders", "dq_check": "freshness"}
    assert "max 7200 s" in r["annotations"]["summary"]
    assert "{{ $value | humanizeDuration }}" in r["annotations"]["description"]


def test_a_check_with_both_bounds_alerts_below_min_or_above_max() -> None:
    """row_count with min and max is one alert: min-aggregated < min OR max-aggregated > max."""
    expr = rule(config(), "orders", "DQRowCount")["expr"]
    low, high = expr.split("\nor\n")
    assert low.startswith(f"min by ({IDENTITY}) (") and low.endswith(") < 1000")
    assert high.startswith(f"max by ({IDENTITY}) (") and high.endswith(") > 5000000")
    assert 'dq_row_count{dq_table="orders",dq_check="row_count"}' in low


def test_every_bounded_check_gets_one_alert_named_after_its_kind() -> None:
    """Each check with a bound yields one alert; completeness yields one per column."""
    checks = [(r["alert"], r["labels"]["dq_check"]) for r in rules_of(config(), "orders")
              if "dq_check" in r["labels"] and r["alert"] != "DQRowCountAnomaly"]
    assert checks == [
        ("DQFreshness", "freshness"), ("DQRowCount", "row_count"),
        ("DQCompleteness", "completeness_order_id"), ("DQCompleteness", "completeness_amount"),
        ("DQValidity", "email_format"), ("DQUniqueness", "uniqueness_order_id_line"),
        ("DQSchemaMismatch", "schema"), ("DQCustomCheck", "late"),
    ]


def test_ratio_alerts_use_the_default_bound_and_the_check_severity() -> None:
    """A validity check without min_ratio alerts below 1, with its own severity."""
    r = rule(config(), "orders", "DQValidity")
    assert r["expr"].endswith(") < 1")
    assert 'dq_validity_ratio{dq_table="orders",dq_check="email_format"}' in r["expr"]
    assert r["labels"]["severity"] == "warning"


def test_a_check_without_bounds_gets_no_alert() -> None:
    """row_count with neither min nor max has nothing to compare, so no DQRowCount alert."""
    checks = [r["labels"]["dq_check"] for r in rules_of(config(), "daily")
              if r["alert"] == "DQRowCount"]
    assert checks == ["rows_min"]


def test_stale_monitor_alert_ors_the_age_with_absence() -> None:
    """DQMonitorStale: now - last run > 3 periods, OR no last-run sample in the lookback."""
    r = rule(config(), "hourly", "DQMonitorStale")
    assert r["expr"] == (
        "time() - max by (dq_table) (\n"
        '  last_over_time(dq_check_last_run_timestamp_seconds{dq_table="hourly"}[30m])\n'
        ") > 1800\n"
        'or absent_over_time(dq_check_last_run_timestamp_seconds{dq_table="hourly"}[30m])')
    assert r["labels"] == {"severity": "critical", "dq_table": "hourly"}


def test_stale_limit_for_cron_is_three_times_the_longest_gap() -> None:
    """A weekday 06:00 cron's longest gap is Friday to Monday (3 days): stale after 9 days."""
    cfg = config()
    table = cfg.table("daily")
    assert table is not None
    assert window_s(table, RuleOptions()) == 9 * 86400
    assert ") > 777600\n" in rule(cfg, "daily", "DQMonitorStale")["expr"]


def test_check_error_alert_takes_severity_from_the_series() -> None:
    """DQCheckError fires on dq_check_up == 0 for 10m, with the check's own dq_severity."""
    r = rule(config(), "orders", "DQCheckError")
    assert r["expr"] == (f"min by ({IDENTITY}, dq_severity) (\n"
                         '  last_over_time(dq_check_up{dq_table="orders"}[5m])\n) == 0')
    assert r["for"] == "10m"
    assert r["labels"]["severity"] == "{{ $labels.dq_severity }}"


def test_row_count_anomaly_compares_with_the_seven_day_average() -> None:
    """DQRowCountAnomaly: |latest / 7d average - 1| > 0.3, partitions folded together."""
    r = rule(config(), "hourly", "DQRowCountAnomaly")
    by = "dq_warehouse, dq_table, dq_check, dq_column, dq_rule, dq_stat, dq_segment"
    assert f"avg by ({by}) (\n" in r["expr"]
    assert 'avg_over_time(dq_row_count{dq_table="hourly",dq_check="row_count"}[7d])' in r["expr"]
    assert r["expr"].startswith("abs(\n") and r["expr"].endswith("\n) > 0.3")
    assert r["labels"]["severity"] == "warning"


def test_no_anomaly_alert_on_the_current_partition_slice() -> None:
    """A lag-0 partition is still filling up, so its row count is never called anomalous."""
    assert not [r for r in rules_of(config(), "daily") if r["alert"] == "DQRowCountAnomaly"]


def test_for_can_be_shortened_for_tests() -> None:
    """RuleOptions.for_s sets `for:` of check, stale and anomaly alerts."""
    options = RuleOptions(for_s=1, error_for_s=2)
    fors = {(r["alert"], r["for"]) for r in rules_of(config(), "hourly", options)}
    assert fors == {("DQRowCount", "1s"), ("DQCheckError", "2s"), ("DQMonitorStale", "1s"),
                    ("DQRowCountAnomaly", "1s")}


def test_template_delimiters_in_names_stay_literal() -> None:
    """A `{{` in a table name is escaped in templated alert labels."""
    assert template_literal("a{{b}}") == 'a{{ "{{" }}b}}'
    cfg = config(CONFIG.replace("name: hourly", 'name: "we\\"ird {{x}}"'))
    r = rule(cfg, 'we"ird {{x}}', "DQRowCount")
    assert r["labels"]["dq_table"] == 'we"ird {{ "{{" }}x}}'
    assert 'dq_table="we\\"ird {{x}}"' in r["expr"]


def test_rule_file_has_one_group_per_table_and_round_trips() -> None:
    """The YAML text parses back to exactly build_rules(), groups in file order."""
    cfg = config()
    text = render_rules(cfg)
    assert text.startswith("# Generated by `dqmon rules` from checks.yaml")
    assert yaml.safe_load(text) == build_rules(cfg)
    assert [g["name"] for g in build_rules(cfg)["groups"]] == [
        "dqmon.orders", "dqmon.daily", "dqmon.hourly"]


@pytest.mark.parametrize(("command", "render"), [("rules", render_rules),
                                                  ("dashboard", render_dashboard)])
def test_generator_commands_write_the_file(tmp_path: Path, command: str,
                                           render: Callable[[Config], str]) -> None:
    """`dqmon rules|dashboard --config F -o OUT` writes render_*(F) and exits 0."""
    source = tmp_path / "checks.yaml"
    source.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "generated"
    with pytest.raises(SystemExit) as exit_:
        main([command, "--config", str(source), "-o", str(out)])
    assert exit_.value.code == 0
    assert out.read_text(encoding="utf-8") == render(config())


def test_rules_command_prints_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without -o the rules go to stdout."""
    source = tmp_path / "checks.yaml"
    source.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "--config", str(source)])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == render_rules(config())


@pytest.mark.parametrize("command", ["rules", "dashboard"])
def test_generators_exit_2_on_a_config_error(tmp_path: Path, command: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A broken checks.yaml makes `rules` and `dashboard` exit 2 with a located message."""
    source = tmp_path / "checks.yaml"
    source.write_text(CONFIG.replace("max_age: 2h", "max_age: soon"), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main([command, "--config", str(source)])
    assert exit_.value.code == 2
    assert "checks.yaml:" in capsys.readouterr().err


def test_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    """-o into a missing directory exits 2 instead of a traceback."""
    source = tmp_path / "checks.yaml"
    source.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "--config", str(source), "-o", str(tmp_path / "no" / "such.yml")])
    assert exit_.value.code == 2
