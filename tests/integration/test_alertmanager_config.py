"""deploy/alertmanager.yml is a config Alertmanager itself accepts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import need_service

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_amtool_accepts_the_config() -> None:
    """`amtool check-config` passes on the compose stack's Alertmanager config."""
    amtool = shutil.which("amtool")
    if amtool is None:
        need_service("amtool", "Debian package `prometheus-alertmanager` is not installed")
    done = subprocess.run([str(amtool), "check-config", str(DEPLOY / "alertmanager.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert " - 1 receivers" in done.stdout
