"""The generated rules and dashboard queries through Debian's promtool: syntax checks and the
committed rule unit tests (deploy/rules/tests/*.yml) that make each alert fire and resolve."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from dqmon.alerts import RuleOptions, dump_yaml, render_rules
from dqmon.cli import main
from dqmon.config import Config, load_config, parse_config
from dqmon.dashboard import build_dashboard

from conftest import need_service

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMTOOL = Path("/usr/bin/promtool")
# SPEC 8's check kinds and a segmented table, with the rule file generated from it.
KINDS = DEPLOY / "rules" / "tests" / "kinds"

# Names that need escaping in PromQL strings, YAML and Go templates alike.
TRICKY = """
version: 1
warehouses:
  main: {url: "sqlite:///x.db"}
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
                          timeout=120, check=False)


def write(path: Path, text: str) -> Path:
    """Write text to path and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("source", [ROOT / "checks.yaml", DEPLOY / "checks.yaml",
                                    KINDS / "checks.yaml"], ids=["repo", "deploy", "kinds"])
def test_generated_rules_pass_promtool_check(tmp_path: Path, source: Path) -> None:
    """`promtool check rules` accepts the rules of the repo's, deploy/'s and the kinds' file."""
    config = load_config(source, env={})
    rules = write(tmp_path / "rules.yml", render_rules(config))
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in yaml.safe_load(rules.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_committed_kinds_rules_are_what_the_command_writes(
        capsys: pytest.CaptureFixture[str]) -> None:
    """deploy/rules/tests/kinds/dqmon-rules.yml is `dqmon rules` of the checks.yaml beside it."""
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "--config", str(KINDS / "checks.yaml")])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == (KINDS / "dqmon-rules.yml").read_text(encoding="utf-8")


def test_committed_rule_unit_tests_pass() -> None:
    """deploy/rules/tests/*.yml (fire, resolve, stale monitor, row-count anomaly, statistic,
    reference, max_ratio, segments) all pass."""
    tests = sorted((DEPLOY / "rules" / "tests").glob("*.yml"))
    per_check = ["check-alerts.yml", "monitor-alerts.yml", "row-count-anomaly.yml",
                 "kinds-alerts.yml"]
    assert [t.name for t in tests] == sorted([*per_check, *(f"generic-{n}" for n in per_check)])
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_names_that_need_escaping_still_fire(tmp_path: Path) -> None:
    """A table named with quotes, a backslash and `{{` is matched and labelled exactly."""
    config = parse_config(TRICKY, "checks.yaml", env={})
    rules = write(tmp_path / "rules.yml", render_rules(config, RuleOptions(for_s=60)))
    assert promtool("check", "rules", rules).returncode == 0
    table, check = 'we"ird\\tab {{x}}', "fresh'ness"
    series = ('dq_freshness_seconds{dq_table="we\\"ird\\\\tab {{x}}",dq_check="fresh\'ness",'
              'instance="a"}')
    expected = {"exp_labels": {"severity": "critical", "dq_table": table, "dq_check": check},
                "exp_annotations": {
                    "summary": f"{table}.{check} failed: 2h 0m 0s breaks max 3600 s",
                    "description": f"Check {check} (freshness) on table {table} measured 2h 0m 0s "
                                   "(dq_freshness_seconds); the threshold in checks.yaml is "
                                   "max 3600 s."}}
    unit = write(tmp_path / "test.yml", dump_yaml({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [{"series": series, "values": "7200x5"}],
                   "alert_rule_test": [{"eval_time": "1m", "alertname": "DQFreshness",
                                        "exp_alerts": [expected]}]}]}))
    result = promtool("test", "rules", unit)
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_as_rules(config: Config) -> str:
    """Wrap every dashboard query in a recording rule, Grafana's variables filled in."""
    exprs = [t["expr"] for p in build_dashboard(config)["panels"] for t in p.get("targets", [])]
    rules = [{"record": f"dashboard:query_{i}",
              "expr": e.replace("$dq_table", ".*").replace("$dq_segment", ".*")}
             for i, e in enumerate(exprs)]
    return dump_yaml({"groups": [{"name": "dashboard", "rules": rules}]})


@pytest.mark.parametrize("source", [DEPLOY / "checks.yaml", KINDS / "checks.yaml"],
                         ids=["deploy", "kinds-with-segments"])
def test_dashboard_queries_are_valid_promql(tmp_path: Path, source: Path) -> None:
    """Every panel query of deploy/'s and of a segmented dashboard parses as PromQL."""
    config = load_config(source, env={})
    rules = write(tmp_path / "dashboard.yml", dashboard_as_rules(config))
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    queries = sum(len(p.get("targets", [])) for p in build_dashboard(config)["panels"])
    assert f"SUCCESS: {queries} rules found" in result.stdout


def test_deploy_prometheus_config_is_valid() -> None:
    """`promtool check config` accepts deploy/prometheus.yml and finds the generated rule file."""
    result = promtool("check", "config", DEPLOY / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
