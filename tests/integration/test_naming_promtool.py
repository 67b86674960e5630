"""Both naming modes (issue 13) against promtool: underscore rules are the committed ones and
pass `promtool check rules`; utf8 rules pass it too where promtool parses quoted names."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from dqmon.alerts import build_rules, render_rules
from dqmon.cli import main
from dqmon.config import load_config

from conftest import need_service

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = Path("/usr/bin/promtool")
CONFIGS = {"deploy": ROOT / "deploy" / "checks.yaml",
           "anomaly": ROOT / "deploy" / "rules" / "tests" / "anomaly" / "checks.yaml"}
FORMS = ("per-check", "generic")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; skip outside CI (fail in CI) when it is not installed."""
    if not PROMTOOL.exists():
        need_service("promtool", f"{PROMTOOL} is missing (Debian package `prometheus`)")
    return subprocess.run([str(PROMTOOL), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def major_version() -> int:
    """Return promtool's Prometheus major version (Debian 12 ships 2.42)."""
    found = re.search(r"version (\d+)\.", promtool("--version").stdout)
    assert found, "promtool --version printed no version"
    return int(found[1])


def write_rules(tmp_path: Path, config: str, form: str, naming: str) -> Path:
    """Write the rules of one config, form and naming through the CLI; return the file."""
    path = tmp_path / f"{config}-{form}-{naming}.yml"
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "--config", str(CONFIGS[config]), f"--{form}", "--naming", naming,
              "-o", str(path)])
    assert exit_.value.code == 0
    return path


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_underscore_rules_are_unchanged_and_pass_promtool(tmp_path: Path, config: str,
                                                          form: str) -> None:
    """`--naming underscore` writes what `dqmon rules` always wrote, and promtool accepts it."""
    path = write_rules(tmp_path, config, form, "underscore")
    loaded = load_config(CONFIGS[config], env={})
    assert path.read_text() == render_rules(loaded, form=form)  # type: ignore[arg-type]
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_utf8_rules_and_the_installed_promtool(tmp_path: Path, config: str, form: str) -> None:
    """promtool 3 accepts `--naming utf8` rules; promtool 2 rejects their quoted names.

    Prometheus 2 parses no quoted names (`{"dq.table"="x"}` is a syntax error before 3.0),
    so with the Debian 12 promtool (2.42) this asserts the rejection, which says the
    text test below (test_utf8_expressions_quote_every_dq_name) is what stands for it; on
    promtool 3 it asserts `promtool check rules` passes.
    """
    path = write_rules(tmp_path, config, form, "utf8")
    result = promtool("check", "rules", path)
    if major_version() >= 3:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0 and "dq." in result.stdout + result.stderr


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_utf8_expressions_quote_every_dq_name(config: str, form: str) -> None:
    """Tested as text because the installed promtool may predate 3.0: every dq.* metric sits
    quoted first in its braces, every dq.* label is quoted, no `dq_` name is left, and the
    expressions have the underscore ones' shape (same brackets and operators)."""
    loaded = load_config(CONFIGS[config], env={})
    utf8 = build_rules(loaded, form=form, naming="utf8")  # type: ignore[arg-type]
    classic = build_rules(loaded, form=form, naming="underscore")  # type: ignore[arg-type]
    for g8, g_ in zip(utf8["groups"], classic["groups"], strict=True):
        for r8, r_ in zip(g8["rules"], g_["rules"], strict=True):
            expr = r8["expr"]
            assert not re.search(r"(?<![\w:])dq_(?!slot\b)", expr), expr
            assert not re.search(r"(?<![\"\w:])dq\.", expr), expr  # dq.* only inside quotes
            assert re.findall(r"[()\[\]]", expr) == re.findall(r"[()\[\]]", r_["expr"])
            assert r8.get("record") == r_.get("record")
