"""Benchmark: what a down or black-holed OTLP collector adds to `dqmon run-once`.

Runs `dqmon run-once` (a fresh process each time) against the SQLite demo warehouse, R times
per mode, and reports the median wall time, the seconds added over `--no-export`, the exit
code and the stderr lines:
  no-export   --no-export: the baseline, nothing is sent;
  up          a real OTLP receiver of the chosen protocol (tests/otlp_receiver.py) answers;
  closed      nothing listens on the port (connection refused);
  black-hole  a socket accepts and never answers (a hung collector).
SPEC section 3 allows at most ~3 s extra and an unchanged exit code, over gRPC and over HTTP
(`--protocol`, sets OTEL_EXPORTER_OTLP_PROTOCOL; SPEC section 13).

    python benchmarks/collector_down.py --repeat 5 --protocol http/protobuf
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from otlp_receiver import (  # noqa: E402 - after sys.path
    BlackHole,
    OtlpHttpReceiver,
    OtlpReceiver,
    closed_port,
)

PROTOCOLS = ("grpc", "http/protobuf")


@contextlib.contextmanager
def endpoint(mode: str, protocol: str) -> Iterator[str | None]:
    """Yield the OTLP endpoint of a mode (None: --no-export)."""
    if mode == "no-export":
        yield None
    elif mode == "up":
        with OtlpHttpReceiver() if protocol == "http/protobuf" else OtlpReceiver() as receiver:
            yield receiver.endpoint
    elif mode == "closed":
        yield f"http://127.0.0.1:{closed_port()}"
    else:
        with BlackHole() as hole:
            yield hole.endpoint


def run_once(config: Path, url: str, target: str | None,
             protocol: str) -> tuple[float, int, int]:
    """Run one `dqmon run-once`; return (seconds, exit code, stderr lines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["DQMON_WAREHOUSE_URL"] = url
    env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
    args = [sys.executable, "-m", "dqmon", "run-once", "--config", str(config)]
    if target is None:
        args.append("--no-export")
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = target
    started = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    return elapsed, proc.returncode, len([line for line in proc.stderr.splitlines() if line])


def measure(mode: str, config: Path, url: str, repeat: int,
            protocol: str) -> tuple[float, set[int], int]:
    """Return (median seconds, exit codes seen, most stderr lines) of one mode."""
    times, codes, lines = [], set(), 0
    for _ in range(repeat):
        with endpoint(mode, protocol) as target:
            elapsed, code, count = run_once(config, url, target, protocol)
        times.append(elapsed)
        codes.add(code)
        lines = max(lines, count)
    return statistics.median(times), codes, lines


def main() -> None:
    """Build the demo warehouse, run every mode, print one line per mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (median reported)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="grpc",
                        help="OTLP protocol of the exports (OTEL_EXPORTER_OTLP_PROTOCOL)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "warehouse.db"
        subprocess.run([sys.executable, "-m", "dqmon", "demo", "--path", str(db)],
                       check=True, capture_output=True)
        url = f"sqlite:///{db}"
        config = REPO / "checks.yaml"
        print(f"protocol: {args.protocol}")
        print(f"{'mode':<11} {'median_s':>8} {'added_s':>8}  exit  stderr_lines")
        baseline = None
        for mode in ("no-export", "up", "closed", "black-hole"):
            median, codes, lines = measure(mode, config, url, args.repeat, args.protocol)
            baseline = median if baseline is None else baseline
            exits = ",".join(map(str, sorted(codes)))
            print(f"{mode:<11} {median:8.2f} {median - baseline:8.2f}  {exits:>4}  {lines}")


if __name__ == "__main__":
    main()
