"""The learned-baseline rules (issue 12) through Debian's promtool: the committed rule files
are what deploy/generate.py writes, promtool accepts them, and the committed unit tests
(deploy/rules/tests/anomaly/*-alerts.yml: flat, spike, direction, weekly season, young
series, erroring check) pass in both forms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dqmon.alerts import dump_yaml
from dqmon.config import load_config
from dqmon.dashboard import build_dashboard

from conftest import need_service

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
ANOMALY = ROOT / "deploy" / "rules" / "tests" / "anomaly"
PROMTOOL = Path("/usr/bin/promtool")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; skip outside CI (fail in CI) when it is not installed."""
    if not PROMTOOL.exists():
        need_service("promtool", f"{PROMTOOL} is missing (Debian package `prometheus`)")
    return subprocess.run([str(PROMTOOL), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False, cwd=ANOMALY)


def test_committed_anomaly_rule_files_are_current() -> None:
    """deploy/generate.py --check finds nothing to rewrite (the anomaly files included)."""
    result = subprocess.run([sys.executable, str(ROOT / "deploy" / "generate.py"), "--check"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["dqmon-rules.yml", "dqmon-generic-rules.yml"])
def test_anomaly_rules_pass_promtool_check(name: str) -> None:
    """`promtool check rules` accepts both forms of the anomaly fixture's rules."""
    result = promtool("check", "rules", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout + result.stderr


def test_committed_anomaly_unit_tests_pass() -> None:
    """Both forms: flat quiet, spike fires on the 2nd evaluation, a drop under direction up is
    quiet, weekly Monday peak quiet and Wednesday peak fires, young and erroring quiet."""
    tests = sorted(p.name for p in ANOMALY.glob("*-alerts.yml"))
    assert tests == ["anomaly-alerts.yml", "generic-anomaly-alerts.yml"]
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 2


def test_dashboard_band_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every panel query of a dashboard with bands parses as PromQL."""
    config = load_config(ANOMALY / "checks.yaml", env={})
    exprs = [t["expr"] for p in build_dashboard(config)["panels"] for t in p.get("targets", [])]
    assert any("dq:anomaly_upper" in e for e in exprs)
    rules = [{"record": f"dashboard:query_{i}",
              "expr": e.replace("$dq_table", ".*").replace("$dq_segment", ".*")}
             for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard.yml"
    path.write_text(dump_yaml({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
