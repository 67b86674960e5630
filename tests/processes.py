"""What the end-to-end tests share about the processes they start: ports, polling, stopping."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def free_port() -> int:
    """Return a loopback TCP port that is free right now (engineers run tests in parallel)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(what: str, probe: Callable[[], T | None], timeout_s: float, logs: Sequence[Path]) -> T:
    """Call `probe` until it returns something truthy; on timeout fail with the logs' tails."""
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-3000:]}"
                              for p in logs if p.exists())
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{tails}")
        time.sleep(0.2)
    return value


def stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """Terminate every process, then wait for each (killing one that takes over 15 s)."""
    procs = list(procs)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
