"""The command line: parse arguments, run, print, exit with a code that means something."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from dqmon import __version__, redact
from dqmon.catalog import register_tables
from dqmon.checks.timeutil import Slice, parse_slice
from dqmon.config import CheckSpec, Config, TableSpec, default_config_path, load_config
from dqmon.errors import ConfigError, UsageError
from dqmon.results import CheckResult, ExitCode, exit_code
from dqmon.scan import Plan, scan_plan
from dqmon.warehouse import open_warehouses

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_HELP = "checks file (default: $DQMON_CONFIG, then ./checks.yaml)"


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `dqmon` console script."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="dqmon",
                        standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = ExitCode.USAGE
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = ExitCode.USAGE
    except ConfigError as exc:
        _say(str(exc), err=True)
        code = ExitCode.USAGE
    except UsageError as exc:
        _say(f"dqmon: {exc}", err=True)
        code = ExitCode.USAGE
    sys.exit(int(code or 0))


def _say(text: str, *, err: bool = False) -> None:
    """Print, with every registered secret masked (SPEC 6: no output path shows one)."""
    click.echo(redact.scrub(text), err=err)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dqmon", message="%(prog)s %(version)s")
def cli() -> None:
    """Declarative data-quality checks, published as OpenTelemetry gauges."""


def _config_option() -> Callable[[F], F]:
    return click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)


def _load(config_path: str | None) -> Config:
    return load_config(config_path or default_config_path())


# --- run (the daemon) ------------------------------------------------------------------------

@cli.command()
@_config_option()
@click.option("--listen", default="0.0.0.0:9464", show_default=True, metavar="HOST:PORT",
              help="serve /metrics, /healthz and /readyz here")
@click.option("--shard", envvar="DQMON_SHARD", metavar="I/N",
              help="run only the tables whose stable hash modulo N is I (env: DQMON_SHARD)")
@click.option("--log-format", type=click.Choice(["json", "text"]),
              help="log format on stderr (default: text on a terminal, else json)")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.option("--grace-period", default="20s", show_default=True, metavar="DURATION",
              help="on SIGTERM: time for running checks to end and telemetry to flush")
@click.option("--no-export", is_flag=True, help="no OTLP push (/metrics is still served)")
def run(config_path: str | None, listen: str, shard: str | None, log_format: str | None,
        log_level: str, grace_period: str, no_export: bool) -> int:
    """Run every table's checks on its schedule until SIGTERM; SIGHUP reloads the file."""
    from dqmon import daemon, logs

    logs.configure(log_format, level=log_level)
    return daemon.serve(daemon.parse_options(config_path or default_config_path(), listen,
                                             shard, grace_period, export=not no_export))


# --- run-once ------------------------------------------------------------------------------

@cli.command("run-once")
@_config_option()
@click.option("--table", "tables", multiple=True, metavar="NAME",
              help="only this table (repeatable)")
@click.option("--check", "checks", multiple=True, metavar="NAME",
              help="only this check (repeatable)")
@click.option("--partition", metavar="SLICE", help="check this slice: 2026-11-20 or 2026-11-20T13")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--no-export", is_flag=True, help="send no telemetry at all")
def run_once(config_path: str | None, tables: tuple[str, ...], checks: tuple[str, ...],
             partition: str | None, fmt: str, no_export: bool) -> int:
    """Run the checks once, print the results, exit 0/1/2/3."""
    config = _load(config_path)
    warehouses = open_warehouses(config.warehouses)
    if config.discover:
        from dqmon.discovery import with_discovered

        config = with_discovered(config, warehouses)
    plan = select(config, tables, checks, partition)
    register_tables([table for table, _, _ in plan], warehouses)
    from dqmon.telemetry import Telemetry  # here: other commands need no OpenTelemetry

    telemetry = Telemetry(export=not no_export)
    results: list[CheckResult] = []
    try:
        with telemetry.run_span():
            results = scan_plan(plan, warehouses, observer=telemetry.observer)
        telemetry.record(results)
    finally:
        for warehouse in warehouses.values():
            warehouse.dispose()
        telemetry.shutdown()  # one bounded flush; an export failure never changes the exit code
    _say(render_json(results) if fmt == "json" else render_text(results))
    return int(exit_code(results))


def select(config: Config, tables: Sequence[str], checks: Sequence[str],
           partition: str | None) -> Plan:
    """Pick the tables, checks and slices a run-once asked for; UsageError if they don't exist."""
    chosen = [_table(config, name) for name in tables] if tables else list(config.tables)
    unknown = set(checks) - {c.name for t in chosen for c in t.checks}
    if unknown:
        raise UsageError(f"--check: no check named {', '.join(sorted(unknown))} "
                         "in the selected tables")
    plan: list[tuple[TableSpec, list[CheckSpec], Slice | None]] = []
    for table in chosen:
        specs = [c for c in table.checks if not checks or c.name in checks]
        if specs:
            plan.append((table, specs, _slice(table, partition)))
    return plan


def _table(config: Config, name: str) -> TableSpec:
    table = config.table(name)
    if table is None:
        known = ", ".join(t.name for t in config.tables)
        raise UsageError(f"--table: no table named {name!r} in {config.file} (known: {known})")
    return table


def _slice(table: TableSpec, partition: str | None) -> Slice | None:
    if partition is None:
        return None
    if table.partition is None:
        raise UsageError(f"--partition: table {table.name!r} has no partition")
    try:
        return parse_slice(partition, table.partition.granularity)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# --- output ----------------------------------------------------------------------------------

def render_json(results: Sequence[CheckResult]) -> str:
    """Render results as one strict-JSON object (SPEC section 4)."""
    summary = {status: sum(r.status == status for r in results)
               for status in ("pass", "fail", "error")}
    payload = {"results": [r.to_json() for r in results],
               "summary": {"passed": summary["pass"], "failed": summary["fail"],
                           "errors": summary["error"]}}
    return json.dumps(payload, indent=2, allow_nan=False)


def render_text(results: Sequence[CheckResult]) -> str:
    """Render results as an aligned table, error details and a one-line summary."""
    header = ("TABLE", "CHECK", "VALUE", "THRESHOLD", "STATUS")
    rows = [header] + [(r.table, r.check, format_value(r), format_threshold(r), _status(r))
                       for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines += _error_lines(results)
    lines.append(summary_line(results))
    return "\n".join(lines)


def _error_lines(results: Sequence[CheckResult]) -> list[str]:
    """One line per table and distinct error, naming the checks it cost."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.error:
            grouped.setdefault((r.table, r.error), []).append(r.check)
    lines = []
    for (table, error), names in grouped.items():
        which = names[0] if len(names) == 1 else f"{len(names)} checks"
        lines.append(f"error: {table} ({which}): {error}")
    return lines


def summary_line(results: Sequence[CheckResult]) -> str:
    """Say how many checks passed, failed and errored."""
    passed = sum(r.status == "pass" for r in results)
    failed = [r for r in results if r.status == "fail"]
    warned = sum(r.severity == "warning" for r in failed)
    errors = sum(r.status == "error" for r in results)
    note = f" ({warned} warning)" if warned else ""
    return (f"{len(results)} checks: {passed} passed, {len(failed)} failed{note}, "
            f"{errors} error{'' if errors == 1 else 's'}")


def _status(result: CheckResult) -> str:
    status = result.status.upper()
    return f"{status} ({result.severity})" if result.status == "fail" else status


def format_value(result: CheckResult) -> str:
    """Format a value in its unit: seconds as a duration, ratios to 4 places."""
    value = result.value
    if value is None:
        return "-"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return _format(result.spec.kind, value)


def format_threshold(result: CheckResult) -> str:
    """Format the bounds as `>= x`, `<= y` or `x..y`."""
    t = result.spec.threshold
    lo = None if t.min is None else _format(result.spec.kind, t.min)
    hi = None if t.max is None else _format(result.spec.kind, t.max)
    if lo is not None and hi is not None:
        return f"{lo}..{hi}"
    if lo is None and hi is None:
        return "-"  # a row_count without bounds only publishes its value
    return f">= {lo}" if lo is not None else f"<= {hi}"


def _format(kind: str, value: float) -> str:
    if kind == "freshness":
        return duration_text(value)
    if kind in ("completeness", "validity", "uniqueness"):
        return f"{value:.4f}"
    return f"{value:g}" if value != int(value) else str(int(value))


def duration_text(seconds: float) -> str:
    """Format seconds as 2h05m, 7m12s or 42s."""
    s = int(round(seconds))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


# --- validate --------------------------------------------------------------------------------

@cli.command()
@_config_option()
@click.option("--show-sql", is_flag=True, help="print the SQL of every table, without connecting")
@click.option("--connect", is_flag=True, help="also check that tables and columns exist")
def validate(config_path: str | None, show_sql: bool, connect: bool) -> int:
    """Check the config file; optionally print its SQL or check it against the warehouses."""
    from dqmon.inspect import connect_problems, role_warnings, show_sql_text

    config = _load(config_path)
    warehouses = open_warehouses(config.warehouses)
    if show_sql:
        _say(show_sql_text(config, warehouses))
    checks = sum(len(t.checks) for t in config.tables)
    click.echo(f"{config.file}: {len(config.tables)} tables, {checks} checks: OK", err=True)
    if not connect:
        return int(ExitCode.OK)
    try:
        problems = connect_problems(config, warehouses)
    finally:
        for warehouse in warehouses.values():
            warehouse.dispose()  # a DuckDB file stays locked while a connection holds it
    for line in [*problems, *role_warnings(warehouses)]:
        _say(line, err=True)
    return int(ExitCode.ERROR if problems else ExitCode.OK)


# --- rules and dashboard ---------------------------------------------------------------------

def _emit(text: str, output: str | None) -> None:
    """Write generated text to FILE, or to stdout."""
    if output is None:
        click.echo(text, nl=False)
        return
    from pathlib import Path

    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(output, hint=exc.strerror or str(exc)) from None
    click.echo(f"wrote {output}", err=True)


@cli.command()
@_config_option()
@click.option("-o", "--output", metavar="FILE", help="write here instead of stdout")
@click.option("--generic", is_flag=True,
              help="a constant set of rules for every check (default above 500 checks)")
@click.option("--per-check", is_flag=True, help="one rule per check, one group per table")
def rules(config_path: str | None, output: str | None, generic: bool, per_check: bool) -> int:
    """Write Prometheus alerting rules derived from the checks."""
    from dqmon.alerts import render_rules

    if generic and per_check:
        raise UsageError("--generic and --per-check exclude each other")
    config = _load(config_path)
    _emit(render_rules(config, form="generic" if generic else "per-check" if per_check
                       else "auto"), output)
    return int(ExitCode.OK)


@cli.command()
@_config_option()
@click.option("-o", "--output", metavar="FILE", help="write here instead of stdout")
def dashboard(config_path: str | None, output: str | None) -> int:
    """Write a Grafana dashboard (JSON) over dqmon's metrics."""
    from dqmon.dashboard import render_dashboard

    _emit(render_dashboard(_load(config_path)), output)
    return int(ExitCode.OK)


# --- demo ------------------------------------------------------------------------------------

@cli.command()
@click.option("--path", default="demo/warehouse.db", show_default=True,
              help="where to write the SQLite demo warehouse")
def demo(path: str) -> int:
    """(Re)build the embedded SQLite demo warehouse used by the repo's checks.yaml."""
    from dqmon.demo import build_demo

    target = build_demo(path)
    click.echo(f"demo warehouse written to {target}", err=True)
    return int(ExitCode.OK)
