"""Generic Prometheus rules (dqmon.alerts.generic, `dqmon rules --generic`): no network."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from dqmon.alerts import (
    GENERIC_ABOVE_CHECKS,
    RuleOptions,
    build_generic_rules,
    build_rules,
    choose_form,
    generic_window_s,
    render_rules,
)
from dqmon.alerts.common import ALERT_NAMES, VALUE_TEXT
from dqmon.alerts.generic import stale_limit_s, stale_lookback_s
from dqmon.cli import main
from dqmon.config import METRICS, Config, parse_config

CONFIG = """
version: 1
warehouses:
  main: {url: "sqlite:///x.db"}
  audit: {url: "sqlite:///y.db"}
  unused: {url: "sqlite:///z.db"}
defaults: {schedule: every 1m}
tables:
  - name: orders
    warehouse: main
    checks:
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 1000, max: 5000000}
      - validity: {name: email_format, column: email, regex: '^.+@.+$', severity: warning}
  - name: hourly
    warehouse: main
    schedule: every 10m
    checks:
      - row_count: {min: 1}
  - name: log
    warehouse: audit
    severity: warning
    checks:
      - row_count: {min: 1}
"""

IDENTITY = ("dq_warehouse, dq_table, dq_check, dq_column, dq_rule, dq_stat, dq_partition, "
            "dq_segment")
WHOLE_CHECK = "dq_warehouse, dq_table, dq_check, dq_column, dq_rule, dq_stat, dq_partition"
KIND_ALERTS = ["DQFreshness", "DQRowCount", "DQCompleteness", "DQValidity", "DQUniqueness",
               "DQSchemaMismatch", "DQCustomCheck", "DQVolume", "DQSchemaChange", "DQStatistic",
               "DQReference"]


def config(text: str = CONFIG) -> Config:
    """Parse a checks.yaml text."""
    return parse_config(text, "checks.yaml", env={})


def one_table(checks: int, schedule: str = "every 5m") -> str:
    """Return a checks.yaml with one table and `checks` completeness checks (one per column)."""
    columns = ", ".join(f"c{i}" for i in range(checks))
    return ('version: 1\nwarehouses: {main: {url: "sqlite:///x.db"}}\ntables:\n'
            f"  - name: t\n    schedule: {schedule}\n"
            f"    checks:\n      - completeness: {{columns: [{columns}]}}\n")


def scaled(cfg: Config, copies: int) -> Config:
    """Return `cfg` with its tables repeated `copies` times under new names (no YAML parse)."""
    tables = tuple(dataclasses.replace(t, name=f"{t.name}_{i}")
                   for i in range(copies) for t in cfg.tables)
    return dataclasses.replace(cfg, tables=tables)


def rules(cfg: Config, options: RuleOptions | None = None) -> list[dict[str, Any]]:
    """Return the rules of the generic file's one group."""
    groups = build_generic_rules(cfg, options or RuleOptions())["groups"]
    assert [g["name"] for g in groups] == ["dqmon.generic"]
    found: list[dict[str, Any]] = groups[0]["rules"]
    return found


def rule(cfg: Config, alert: str) -> dict[str, Any]:
    """Return the one generic rule called `alert`."""
    found = [r for r in rules(cfg) if r["alert"] == alert]
    assert len(found) == 1, found
    return found[0]


def test_the_rule_count_is_constant_and_alert_names_match_the_per_check_form() -> None:
    """15 rules, whatever the number of tables, named as the per-check alerts (+ DQCheckFailed)."""
    assert [r["alert"] for r in rules(config())] == [
        *KIND_ALERTS, "DQCheckFailed", "DQCheckError", "DQMonitorStale", "DQRowCountAnomaly"]
    assert len(rules(scaled(config(), 2000))) == 15


def test_every_check_kind_has_an_alert_name_and_a_value_format() -> None:
    """A kind added to METRICS without an alert name would break both forms: fail here first."""
    assert set(ALERT_NAMES) == set(METRICS) == set(VALUE_TEXT)


def test_row_count_and_volume_share_a_gauge_and_split_on_dq_source() -> None:
    """DQRowCount reads scanned row counts, DQVolume the catalog's (dq_source="metadata")."""
    assert 'last_over_time(dq_row_count{dq_source!="metadata"}[30m])' in rule(
        config(), "DQRowCount")["expr"]
    assert 'last_over_time(dq_row_count{dq_source="metadata"}[30m])' in rule(
        config(), "DQVolume")["expr"]
    assert rule(config(), "DQCheckFailed")["expr"].count("last_over_time(dq_row_count[") == 1


def test_the_file_names_no_table_so_adding_tables_changes_nothing() -> None:
    """Tables with the same schedules leave the generic file byte for byte the same."""
    small, large = config(), scaled(config(), 1000)
    assert render_rules(small, form="generic") == render_rules(large, form="generic")
    assert "orders_999" not in render_rules(large, form="generic")


def test_one_window_serves_every_check_three_periods_of_the_slowest_table() -> None:
    """The lookback is 3 x the longest period (hourly: every 10m -> 30m), at least 5m."""
    cfg = config()
    assert generic_window_s(cfg, RuleOptions()) == 1800
    assert stale_limit_s(cfg, RuleOptions()) == 1800
    assert generic_window_s(config(one_table(1, "every 1m")), RuleOptions()) == 300
    cron = config(one_table(1, "'0 6 * * 1-5'"))  # longest gap Friday -> Monday
    assert generic_window_s(cron, RuleOptions()) == 9 * 86400


def test_a_kind_alert_joins_the_value_to_failing_checks_that_did_run() -> None:
    """Value gauge * dq_check_passed == 0 (critical series first), unless dq_check_up == 0."""
    expr = rule(config(), "DQFreshness")["expr"]
    assert expr.startswith(f"max by ({IDENTITY}) (\n  last_over_time(dq_freshness_seconds[30m])\n)\n"
                           f"* on ({IDENTITY}) group_left (severity)\nlabel_replace(\n")
    assert 'last_over_time(dq_check_passed{dq_severity="critical"}[30m]) == 0' in expr
    assert f'\n  or on ({IDENTITY})\n' in expr
    assert 'last_over_time(dq_check_passed{dq_severity!="critical"}[30m]) == 0' in expr
    assert '"severity", "$1", "dq_severity", "(.*)"' in expr
    assert expr.endswith(f"unless on ({WHOLE_CHECK})\n  last_over_time(dq_check_up[30m]) == 0")


@pytest.mark.parametrize(("alert", "head"), [
    ("DQFreshness", "max by"), ("DQRowCount", "min by"), ("DQCompleteness", "min by"),
    ("DQSchemaMismatch", "max by"), ("DQCustomCheck", "max by"), ("DQStatistic", "max by"),
    ("DQReference", "min by")])
def test_values_from_several_instances_show_the_worst(alert: str, head: str) -> None:
    """Upper-bounded kinds show the highest value, lower-bounded ones the lowest."""
    assert rule(config(), alert)["expr"].startswith(head)


def test_every_selector_reads_through_last_over_time_and_names_no_table() -> None:
    """Sparse pushes have no staleness markers: no bare selectors, no dq_table matchers."""
    for r in rules(config()):
        assert "dq_table=" not in r["expr"], r["alert"]
        for metric in ("dq_check_passed", "dq_check_up", "dq_freshness_seconds"):
            bare = r["expr"].replace(f"last_over_time({metric}", "")
            assert f"{metric}[" not in bare and f"{metric}{{" not in bare, r["alert"]


def test_severity_comes_from_the_series_not_from_the_file() -> None:
    """Kind alerts get `severity` from the join; DQCheckError from dq_severity, as per-check."""
    assert "labels" not in rule(config(), "DQValidity")
    assert rule(config(), "DQCheckError")["labels"] == {"severity": "{{ $labels.dq_severity }}"}
    assert rule(config(), "DQCheckError")["for"] == "10m"
    assert rule(config(), "DQRowCountAnomaly")["labels"] == {"severity": "warning"}


def test_annotations_read_the_live_bounds_from_dq_check_threshold() -> None:
    """The summary queries dq_check_threshold by warehouse, table and check, quoted with %q."""
    summary = rule(config(), "DQFreshness")["annotations"]["summary"]
    assert summary.startswith("{{ $labels.dq_table }}.{{ $labels.dq_check }}"
                              "{{ with $labels.dq_segment }} (segment {{ . }}){{ end }} failed: "
                              "{{ $value | humanizeDuration }} breaks {{ $bounds := printf `")
    assert ("dq_check_threshold{dq_warehouse=%q,dq_table=%q,dq_check=%q}[30m]" in summary)
    assert "$labels.dq_warehouse $labels.dq_table $labels.dq_check | query }}" in summary
    assert 'min {{ .Value | printf "%.15g" }} s{{ end }}' in summary
    assert '{{ if eq (len $bounds) 2 }} and {{ end }}' in summary
    ratio = rule(config(), "DQValidity")["annotations"]
    assert '{{ $value | printf "%.4f" }}' in ratio["summary"]
    assert "(dq_validity_ratio); the threshold in checks.yaml is {{ $bounds" in ratio["description"]


def test_a_failure_without_any_value_has_its_own_alert() -> None:
    """DQCheckFailed: failing, not erroring, and no value gauge of any kind in the window."""
    expr = rule(config(), "DQCheckFailed")["expr"]
    assert expr.startswith(f"group by ({IDENTITY}, severity) (\n")
    for metric in ("dq_freshness_seconds", "dq_row_count", "dq_custom_value"):
        assert f"last_over_time({metric}[30m])" in expr


def test_stale_tables_are_judged_against_the_slowest_schedule() -> None:
    """time() - last run > 3 x longest period per table, looked for over limit + for + hold."""
    options = RuleOptions()
    assert stale_lookback_s(config(), options) == 1800 + 300 + 3600
    expr = rule(config(), "DQMonitorStale")["expr"]
    assert expr.startswith("max by (dq_table, severity) (\n")
    assert ("time() - max by (dq_warehouse, dq_table, dq_severity) (\n"
            '        last_over_time(dq_check_last_run_timestamp_seconds{dq_severity="critical"}'
            "[95m])\n      ) > 1800") in expr
    assert ("and on (dq_warehouse)\n    group by (dq_warehouse) (\n"
            "      last_over_time(dq_check_last_run_timestamp_seconds[30m])") in expr


def test_a_silent_warehouse_is_one_alert_with_its_highest_severity() -> None:
    """absent_over_time per warehouse that has tables; `audit` has only warning checks."""
    expr = rule(config(), "DQMonitorStale")["expr"]
    assert ('absent_over_time(dq_check_last_run_timestamp_seconds{dq_warehouse="main"}[30m]),\n'
            '  "severity", "critical", "", ""') in expr
    assert ('absent_over_time(dq_check_last_run_timestamp_seconds{dq_warehouse="audit"}[30m]),\n'
            '  "severity", "warning", "", ""') in expr
    assert "unused" not in expr


def test_warehouse_names_are_escaped_in_selectors() -> None:
    """A quote in a warehouse name cannot break out of the absent_over_time matcher."""
    cfg = config(CONFIG.replace("  audit: {url", '  "a\\"b": {url').replace(
        "warehouse: audit", 'warehouse: "a\\"b"'))
    assert 'dq_warehouse="a\\"b"' in rule(cfg, "DQMonitorStale")["expr"]


def test_row_count_anomaly_skips_partitioned_tables() -> None:
    """The generic anomaly reads unpartitioned row counts only: a lag-0 slice is still filling."""
    expr = rule(config(), "DQRowCountAnomaly")["expr"]
    assert 'avg_over_time(dq_row_count{dq_partition="",dq_source!="metadata"}[7d])' in expr
    assert expr.endswith("\n) > 0.3")


def test_tunables_apply_to_the_generic_rules() -> None:
    """for_s, error_for_s and stale_hold_s shape `for:` and the stale lookback."""
    options = RuleOptions(for_s=60, error_for_s=120, stale_hold_s=0)
    fors = {r["alert"]: r["for"] for r in rules(config(), options)}
    assert fors["DQFreshness"] == "1m" and fors["DQCheckError"] == "2m"
    stale = next(r for r in rules(config(), options) if r["alert"] == "DQMonitorStale")
    assert "timestamp_seconds{dq_severity=\"critical\"}[31m]" in stale["expr"]  # 30m + 1m + 0


@pytest.mark.parametrize(("checks", "form"), [
    (GENERIC_ABOVE_CHECKS, "per-check"), (GENERIC_ABOVE_CHECKS + 1, "generic")])
def test_auto_picks_generic_above_the_documented_size(checks: int, form: str) -> None:
    """More than GENERIC_ABOVE_CHECKS checks switch `auto` to the generic form."""
    cfg = config(one_table(checks))
    assert choose_form(cfg) == form
    groups = build_rules(cfg)["groups"]
    assert (groups[0]["name"] == "dqmon.generic") == (form == "generic")


def test_a_file_that_discovers_tables_gets_the_generic_form() -> None:
    """Discovered tables are only known at run time; their block's schedule sets the window."""
    cfg = config(CONFIG.replace("defaults:", """discover:
  - warehouse: audit
    schemas: [raw]
    schedule: every 1h
    checks:
      - volume: {min: 1}
defaults:"""))
    assert choose_form(cfg) == "generic"
    assert generic_window_s(cfg, RuleOptions()) == 3 * 3600
    assert '"severity", "critical", "", ""' in rule(cfg, "DQMonitorStale")["expr"].split(
        'dq_warehouse="audit"')[1]


def test_an_explicit_form_overrides_auto() -> None:
    """form="generic" on a small file and form="per-check" on a large one are honoured."""
    assert choose_form(config(), "generic") == "generic"
    large = scaled(config(), 200)
    assert choose_form(large) == "generic"
    assert choose_form(large, "per-check") == "per-check"
    assert len(build_rules(large, form="per-check")["groups"]) == 600


def test_generic_file_says_how_it_was_made_and_round_trips() -> None:
    """The header names `--generic`; the YAML parses back to build_rules()."""
    cfg = config()
    text = render_rules(cfg, form="generic")
    assert text.startswith("# Generated by `dqmon rules --generic` from checks.yaml")
    assert yaml.safe_load(text) == build_rules(cfg, form="generic")


@pytest.mark.parametrize(("flags", "group"), [
    (["--generic"], "dqmon.generic"), (["--per-check"], "dqmon.t"), ([], "dqmon.generic")])
def test_rules_command_takes_the_form_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            flags: list[str], group: str) -> None:
    """`dqmon rules` on 600 checks: generic by default, per-check when asked."""
    source = tmp_path / "checks.yaml"
    source.write_text(one_table(600), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "--config", str(source), *flags])
    assert exit_.value.code == 0
    assert f"groups:\n- name: {group}\n" in capsys.readouterr().out


def test_rules_command_refuses_both_forms(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """--generic with --per-check is a usage error (exit 2), said on stderr."""
    source = tmp_path / "checks.yaml"
    source.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "--config", str(source), "--generic", "--per-check"])
    assert exit_.value.code == 2
    assert "--generic and --per-check" in capsys.readouterr().err


def test_per_check_rules_cover_the_metadata_kinds_too() -> None:
    """volume and schema_change on a listed table get DQVolume and DQSchemaChange per check."""
    cfg = config('''
version: 1
warehouses: {main: {url: "postgresql://x/y"}}
tables:
  - name: orders
    table: public.orders
    checks:
      - volume: {min: 1}
      - schema_change: {}
''')
    found = {r["alert"]: r["expr"] for r in build_rules(cfg)["groups"][0]["rules"]}
    assert 'last_over_time(dq_row_count{dq_table="orders",dq_check="volume"}[15m])' in \
        found["DQVolume"]
    assert found["DQVolume"].endswith(") < 1")
    assert found["DQSchemaChange"].endswith(") > 0")


def test_statistic_and_reference_kinds_alert_on_their_value_gauges() -> None:
    """DQStatistic reads dq_statistic_value and names its dq_stat; DQReference reads the ratio."""
    statistic = rule(config(), "DQStatistic")
    assert statistic["expr"].startswith(
        f"max by ({IDENTITY}) (\n  last_over_time(dq_statistic_value[30m])\n)")
    assert "Check {{ $labels.dq_check }} (statistic {{ $labels.dq_stat }}) on table" in \
        statistic["annotations"]["description"]
    assert '{{ $value | printf "%.6g" }}' in statistic["annotations"]["summary"]
    reference = rule(config(), "DQReference")
    assert "last_over_time(dq_reference_ratio[30m])" in reference["expr"]
    assert "(dq_reference_ratio); the threshold" in reference["annotations"]["description"]
    for metric in ("dq_statistic_value", "dq_reference_ratio"):
        assert f"last_over_time({metric}[30m])" in rule(config(), "DQCheckFailed")["expr"]


def test_segments_stay_apart_but_an_erroring_check_silences_them() -> None:
    """Joins keep dq_segment (one alert per segment); the `unless` on dq_check_up == 0 matches
    without it, since an errored scan reports no segments and theirs keep the last verdict."""
    expr = rule(config(), "DQValidity")["expr"]
    assert f"* on ({IDENTITY}) group_left (severity)" in expr
    assert f"group by ({IDENTITY}, dq_severity) (" in expr
    assert f"unless on ({WHOLE_CHECK})\n" in expr
    assert "{{ with $labels.dq_segment }} (segment {{ . }}){{ end }}" in \
        rule(config(), "DQValidity")["annotations"]["description"]
