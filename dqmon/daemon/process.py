"""The `dqmon run` process: options, signals, the HTTP server, the grace period, the exit."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from dqmon.config import load_config, parse_duration
from dqmon.daemon.service import CANCEL_WAIT_S, Daemon
from dqmon.daemon.shards import EVERY_TABLE, Shard
from dqmon.errors import UsageError
from dqmon.http import HealthServer, MetricsSource, ReadySource, parse_listen
from dqmon.logs import get_logger, set_trace_id_source

if TYPE_CHECKING:
    from dqmon.telemetry import Telemetry

log = get_logger("dqmon.daemon")  # one logger name for all the daemon's events (docs/daemon.md)

FLUSH_S = 3.0  # at most this part of the grace period goes to the last telemetry flush
POLL_S = 0.2  # how often the main thread looks at pending signals


class Signals:
    """Turns SIGTERM/SIGINT into a stop request and SIGHUP into a reload request."""

    def __init__(self) -> None:
        self.pending: list[int] = []  # list.append is safe inside a signal handler

    def install(self) -> None:
        """Install the handlers (main thread only)."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.pending.append(signum)

    def take(self) -> list[int]:
        """Return and forget the signals received since the last call."""
        taken, self.pending[:] = list(self.pending), []
        return taken


def wait_for_stop(daemon: Daemon, signals: Signals) -> str:
    """Serve until SIGTERM or SIGINT, reloading on each SIGHUP; return the stopping signal."""
    while True:
        for signum in signals.take():
            if signum == signal.SIGHUP:
                log.info("reload requested", signal="SIGHUP", file=daemon.config_path)
                daemon.reload()
            else:
                return signal.Signals(signum).name
        time.sleep(POLL_S)


def exit_now_if_stuck(finished: bool) -> None:
    """Leave without joining worker threads whose queries would not end (the exit stays 0)."""
    if finished:
        return
    log.warning("exiting with queries still running")
    sys.stderr.flush()
    os._exit(0)


@dataclass(frozen=True)
class Options:
    """What `dqmon run` was asked for."""

    config_path: str
    listen: tuple[str, int] = ("0.0.0.0", 9464)
    shard: Shard = EVERY_TABLE
    grace_s: float = 20.0
    export: bool = True


def parse_options(config_path: str, listen: str, shard: str | None, grace_period: str, *,
                  export: bool = True) -> Options:
    """Check the command line's values; a bad one is a UsageError (exit 2)."""
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    try:
        chosen = Shard.parse(shard)
    except ValueError as exc:
        raise UsageError(f"--shard / DQMON_SHARD: {exc}") from None
    try:
        grace_s = parse_duration(grace_period)
    except ValueError as exc:
        raise UsageError(f"--grace-period: {exc}") from None
    return Options(config_path, address, chosen, grace_s, export)


def grace_budget(grace_s: float) -> tuple[float, float, float]:
    """Split the grace period into (wait for runs, wait for cancelled queries, flush telemetry)."""
    flush_s = min(FLUSH_S, grace_s / 4)
    cancel_s = min(CANCEL_WAIT_S, grace_s / 4)
    return grace_s - flush_s - cancel_s, cancel_s, flush_s


def serve(options: Options) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the exit code (0)."""
    from dqmon.telemetry import Telemetry

    config = load_config(options.config_path)  # a bad file at start is exit 2, not a daemon
    telemetry = Telemetry(daemon=True, export=options.export)
    set_trace_id_source(telemetry.current_trace_id)
    daemon = Daemon(options.config_path, telemetry, shard=options.shard, export=options.export)
    signals = Signals()
    signals.install()
    server = _listen(options.listen, telemetry.metrics_text, daemon.ready)
    server.start()
    daemon.start(config)
    log.info("daemon started", listen=f"{options.listen[0]}:{server.port}", pid=os.getpid(),
             shard=str(options.shard), grace_period_s=options.grace_s)
    stopped_by = wait_for_stop(daemon, signals)
    wait_s, cancel_s, flush_s = grace_budget(options.grace_s)
    log.info("stopping", signal=stopped_by, grace_period_s=options.grace_s)
    finished = daemon.stop(wait_s, cancel_s)
    _flush(telemetry, daemon, flush_s)
    server.stop()
    log.info("stopped", signal=stopped_by, clean=finished)
    exit_now_if_stuck(finished)
    return 0


def _flush(telemetry: Telemetry, daemon: Daemon, flush_s: float) -> None:
    """Flush telemetry and queued lineage events side by side, within the flush budget."""
    lineage = threading.Thread(target=daemon.lineage.close, args=(flush_s,),
                               name="dqmon-lineage-close", daemon=True)
    lineage.start()
    telemetry.shutdown(timeout_s=flush_s)
    lineage.join(flush_s)


def _listen(address: tuple[str, int], metrics: MetricsSource, ready: ReadySource) -> HealthServer:
    try:
        return HealthServer(address, metrics, ready)
    except OSError as exc:
        raise UsageError(f"--listen {address[0]}:{address[1]}: {exc.strerror or exc}") from None
