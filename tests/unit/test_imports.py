"""What importing the command line costs (issue 11): no exporter, gRPC or scheduler at import.

Orchestrators start `dqmon run-once` thousands of times a day; whatever a command does not
need must not be imported before it runs. Each check runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Imported only by the commands that use them (telemetry export, the daemon, lineage).
FORBIDDEN = ("opentelemetry.exporter", "grpc", "apscheduler", "prometheus_client",
             "openlineage")


def modules_after(statement: str) -> set[str]:
    """Return sys.modules after running `statement` in a new interpreter."""
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out))


def offending(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("statement", ["import dqmon.cli", "import dqmon.config",
                                       "import dqmon.scan"])
def test_import_pulls_no_exporter_grpc_or_scheduler(statement: str) -> None:
    """`import dqmon.cli` (and what run-once needs) imports none of FORBIDDEN."""
    assert offending(modules_after(statement), FORBIDDEN) == []


def test_the_version_needs_no_package_metadata_lookup() -> None:
    """`dqmon --version` reads a constant: no importlib.metadata scan of site-packages."""
    assert offending(modules_after("import dqmon"), ("importlib.metadata",)) == []


def test_the_check_sees_a_forbidden_import() -> None:
    """The test above can fail: importing the daemon brings APScheduler."""
    assert "apscheduler" in offending(modules_after("import dqmon.daemon"), FORBIDDEN)
