"""The generic rules (`dqmon rules --generic`, issue 9) through Debian's promtool: the committed
file is current, promtool accepts the rules at any size, the committed rule unit tests
(deploy/rules/tests/generic-*.yml) pass, and a failure alerts with the same labels and
annotations in both forms."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dqmon.alerts import RuleOptions, dump_yaml, render_rules
from dqmon.cli import main
from dqmon.config import Config, load_config, parse_config

from conftest import need_service

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GENERIC = DEPLOY / "rules" / "dqmon-generic-rules.yml"
KINDS = DEPLOY / "rules" / "tests" / "kinds" / "checks.yaml"  # SPEC 8's kinds, segmented
PROMTOOL = Path("/usr/bin/promtool")

# Names that need escaping in PromQL strings, YAML and Go templates alike; the generic
# annotations quote them back into PromQL with printf %q.
TRICKY = """
version: 1
warehouses:
  'w"h': {url: "sqlite:///x.db"}
tables:
  - name: 'we"ird\\tab {{x}}'
    schedule: every 1m
    checks:
      - freshness: {name: "fresh'ness", column: created_at, max_age: 1h}
"""


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; skip outside CI (fail in CI) when it is not installed."""
    if not PROMTOOL.exists():
        need_service("promtool", f"{PROMTOOL} is missing (Debian package `prometheus`)")
    return subprocess.run([str(PROMTOOL), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def write(path: Path, text: str) -> Path:
    """Write text to path and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    """Return one promtool input series with PromQL-escaped label values."""
    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"')
    matchers = ",".join(f'{k}="{escaped(v)}"' for k, v in labels.items())
    return {"series": f"{metric}{{{matchers}}}", "values": values}


def check_series(metric: str, check: dict[str, str], value: float,
                 bounds: dict[str, float], passed: int = 0) -> list[dict[str, str]]:
    """Return what dqmon exports for one critical check (failing unless `passed`)."""
    status = {**check, "dq_severity": "critical", "instance": "dqmon:9464"}
    return [series(metric, {**check, "instance": "dqmon:9464"}, f"{value}x10"),
            series("dq_check_passed", status, f"{passed}x10"),
            series("dq_check_up", status, "1x10"),
            *[series("dq_check_threshold", {**status, "dq_bound": b}, f"{v}x10")
              for b, v in bounds.items()]]


def unit_test(rule_file: str, inputs: list[dict[str, str]], alert: str,
              expected: list[dict[str, Any]], eval_time: str = "5m") -> str:
    """Return a promtool rule test file: `alert` at `eval_time` is exactly `expected`."""
    return dump_yaml({"rule_files": [rule_file], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": inputs,
        "alert_rule_test": [{"eval_time": eval_time, "alertname": alert,
                             "exp_alerts": expected}]}]})


def scaled(config: Config, copies: int) -> Config:
    """Return `config` with its tables repeated `copies` times under new names."""
    tables = tuple(dataclasses.replace(t, name=f"{t.name}_{i}")
                   for i in range(copies) for t in config.tables)
    return dataclasses.replace(config, tables=tables)


def test_committed_generic_file_is_what_the_command_writes(
        capsys: pytest.CaptureFixture[str]) -> None:
    """deploy/rules/dqmon-generic-rules.yml is `dqmon rules --generic` of deploy/checks.yaml."""
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "--generic", "--config", str(DEPLOY / "checks.yaml")])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == GENERIC.read_text(encoding="utf-8")


@pytest.mark.prometheus
@pytest.mark.parametrize("copies", [1, 2000], ids=["deploy", "deploy-x2000"])
def test_generic_rules_pass_promtool_check_at_any_size(tmp_path: Path, copies: int) -> None:
    """`promtool check rules` finds the same 15 rules for 3 tables and for 6,000."""
    config = scaled(load_config(DEPLOY / "checks.yaml", env={}), copies)
    rules = write(tmp_path / "rules.yml", render_rules(config, form="generic"))
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 15 rules found" in result.stdout


@pytest.mark.prometheus
def test_committed_generic_rule_unit_tests_pass() -> None:
    """deploy/rules/tests/generic-*.yml (failing, erroring, stale, bounds, severity, statistic,
    reference, segments) pass."""
    tests = sorted((DEPLOY / "rules" / "tests").glob("generic-*.yml"))
    assert [t.name for t in tests] == ["generic-check-alerts.yml", "generic-kinds-alerts.yml",
                                       "generic-monitor-alerts.yml",
                                       "generic-row-count-anomaly.yml"]
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


@pytest.mark.prometheus
@pytest.mark.parametrize("form", ["per-check", "generic"])
def test_both_forms_raise_the_same_alert(tmp_path: Path, form: str) -> None:
    """One failing check, the same input: both forms fire one alert, equal labels and text."""
    config = load_config(DEPLOY / "checks.yaml", env={})
    write(tmp_path / "rules.yml", render_rules(config, RuleOptions(for_s=60), form=form))
    check = {"dq_warehouse": "shop", "dq_table": "orders", "dq_check": "row_count"}
    expected = [{"exp_labels": {"severity": "critical", **check}, "exp_annotations": {
        "summary": "orders.row_count failed: 200 breaks min 1000",
        "description": "Check row_count (row_count) on table orders measured 200 (dq_row_count); "
                       "the threshold in checks.yaml is min 1000."}}]
    inputs = check_series("dq_row_count", check, 200, {"min": 1000})
    test = write(tmp_path / "test.yml", unit_test("rules.yml", inputs, "DQRowCount", expected))
    result = promtool("test", "rules", test)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.parametrize("form", ["per-check", "generic"])
def test_both_forms_raise_the_same_segment_alert(tmp_path: Path, form: str) -> None:
    """A statistic failing in one segment only: both forms fire one alert for that segment,
    with dq_stat and dq_segment, and equal text."""
    config = load_config(KINDS, env={})
    write(tmp_path / "rules.yml", render_rules(config, RuleOptions(for_s=60), form=form))
    check = {"dq_warehouse": "shop", "dq_table": "orders", "dq_check": "avg_amount",
             "dq_column": "amount", "dq_stat": "avg"}
    bounds = {"min": 10.0, "max": 500.0}
    inputs = [*check_series("dq_statistic_value", check, 120, bounds, passed=1),
              *check_series("dq_statistic_value", {**check, "dq_segment": "DE"}, 750, bounds),
              *check_series("dq_statistic_value", {**check, "dq_segment": "FR"}, 80, bounds,
                            passed=1)]
    expected = [{"exp_labels": {"severity": "critical", **check, "dq_segment": "DE"},
                 "exp_annotations": {
        "summary": "orders.avg_amount (segment DE) failed: 750 breaks min 10 and max 500",
        "description": "Check avg_amount (statistic avg) on table orders (segment DE) measured "
                       "750 (dq_statistic_value); the threshold in checks.yaml is min 10 and "
                       "max 500."}}]
    test = write(tmp_path / "test.yml", unit_test("rules.yml", inputs, "DQStatistic", expected))
    result = promtool("test", "rules", test)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_names_that_need_escaping_still_fire_with_their_bounds(tmp_path: Path) -> None:
    """Quotes, a backslash and `{{` in names: matched, labelled, and the bound still found."""
    config = parse_config(TRICKY, "checks.yaml", env={})
    rules = write(tmp_path / "rules.yml", render_rules(config, RuleOptions(for_s=60),
                                                      form="generic"))
    assert promtool("check", "rules", rules).returncode == 0
    table, check = 'we"ird\\tab {{x}}', "fresh'ness"
    labels = {"dq_warehouse": 'w"h', "dq_table": table, "dq_check": check,
              "dq_column": "created_at"}
    expected = [{"exp_labels": {"severity": "critical", **labels}, "exp_annotations": {
        "summary": f"{table}.{check} failed: 2h 0m 0s breaks max 3600 s",
        "description": f"Check {check} (freshness) on table {table} measured 2h 0m 0s "
                       "(dq_freshness_seconds); the threshold in checks.yaml is max 3600 s."}}]
    inputs = check_series("dq_freshness_seconds", labels, 7200, {"max": 3600})
    test = write(tmp_path / "test.yml", unit_test("rules.yml", inputs, "DQFreshness", expected,
                                                  eval_time="2m"))
    result = promtool("test", "rules", test)
    assert result.returncode == 0, result.stdout + result.stderr
