"""The console process's garbage collection (issue 11; dqmon.cli.console): off while a command
imports and reads its file, on (with the start-up objects frozen) while it runs, for run-once
and for the daemon alike; untouched when tests call `main` in their own process."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dqmon.cli import main

CHECKS = """\
version: 1
warehouses: {demo: {url: "sqlite:///%s"}}
tables:
  - name: t
    checks: [{row_count: {min: 1}}]
"""

# Runs `dqmon <args>` through the console entry point with the command's work replaced by a
# probe that notes the collector's state; prints it as JSON on stderr's last line.
PROBE = """\
import gc, json, sys
import dqmon.cli, dqmon.daemon, dqmon.runonce
seen = {}
def probe(*args, **kwargs):
    seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count())
    raise SystemExit(0)
dqmon.runonce.run_once = probe
dqmon.daemon.serve = probe
sys.argv = ["dqmon", *sys.argv[1:]]
try:
    dqmon.cli.console()
finally:
    print(json.dumps(seen), file=sys.stderr)
"""


def probed(*args: str) -> dict[str, object]:
    """Return the collector's state when the command's work begins, in a console process."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, timeout=60, check=False)
    return dict(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.fixture
def checks(tmp_path: Path) -> Path:
    """A one-table config over a SQLite file."""
    path = tmp_path / "checks.yaml"
    path.write_text(CHECKS % (tmp_path / "wh.db"), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["run-once"], ["run", "--listen", "127.0.0.1:0"]])
def test_the_collector_runs_with_the_start_up_frozen_once_a_command_works(
        checks: Path, command: list[str]) -> None:
    """run-once's scan and the daemon both start with the collector on and the objects of
    the start-up frozen out of its collections."""
    seen = probed(*command, "--config", str(checks))
    assert seen["enabled"] is True
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000


def test_main_in_a_test_process_leaves_the_collector_alone(checks: Path) -> None:
    """`main` (what tests call) neither turns the collector off nor freezes anything."""
    frozen = gc.get_freeze_count()
    with pytest.raises(SystemExit):
        main(["validate", "--config", str(checks)])
    assert gc.isenabled() and gc.get_freeze_count() == frozen
