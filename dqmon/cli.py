"""The command line: parse arguments, run, print, exit with a code that means something."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from dqmon import __version__, redact
from dqmon.errors import ConfigError, ExitCode, UsageError

if TYPE_CHECKING:
    from dqmon.alerts.naming import Naming
    from dqmon.config import Config

# Each command imports what it needs when it runs (issue 11): `dqmon --version` loads click
# and nothing of the scan, and `import dqmon.cli` no exporter, gRPC or scheduler
# (tests/unit/test_imports.py). The renderers and `select` stay importable from here.
__all__ = ["cli", "main"]
_LAZY = {"format_value": "dqmon.output", "render_json": "dqmon.output",
         "render_text": "dqmon.output", "select": "dqmon.runonce"}


def __getattr__(name: str) -> Any:
    """Import a re-exported name on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_HELP = "checks file (default: $DQMON_CONFIG, then ./checks.yaml)"


def console() -> NoReturn:
    """Entry point of the `dqmon` console script and `python -m dqmon`: `main` in a process of
    its own, whose garbage collection is set for a command that starts, runs and exits.

    The cyclic collector stays off while the command imports its modules and reads its file
    (objects that are never garbage, but whose allocation triggers collection after collection:
    0.1 s of a one-day run-once), then `_started` freezes them out of later collections and
    turns it on. At exit, everything is frozen: the interpreter's last collections of the
    whole heap cost another 0.1 to 0.2 s, and the process is ending anyway.
    (`benchmarks/startup_phases.py`, docs/performance.md.)
    """
    global _startup_gc_off
    gc.disable()
    _startup_gc_off = True
    try:
        main()
    finally:
        gc.freeze()


_startup_gc_off = False  # set by `console` only: tests call `main` in their own process


def _started() -> None:
    """End the start-up of a console process (see `console`); nothing elsewhere."""
    global _startup_gc_off
    if _startup_gc_off:
        _startup_gc_off = False
        gc.freeze()
        gc.enable()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line `argv` (default: sys.argv) and exit with its code."""
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
    from dqmon.config import default_config_path, load_config

    config = load_config(config_path or default_config_path())
    _started()
    return config


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
    from dqmon.config import default_config_path

    _started()  # a daemon: the collector runs from here, whatever it imports later
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
@click.option("--samples", "sample_rows", type=click.IntRange(min=1), metavar="N",
              help="show up to N offending rows of each failing completeness, validity, "
                   "uniqueness and reference check (never exported or logged)")
def run_once(config_path: str | None, tables: tuple[str, ...], checks: tuple[str, ...],
             partition: str | None, fmt: str, no_export: bool, sample_rows: int | None) -> int:
    """Run the checks once, print the results, exit 0/1/2/3."""
    from dqmon import runonce

    if not no_export:
        import dqmon.telemetry  # noqa: F401 - the SDK, imported with the rest of the start-up

    request = runonce.Request(tables, checks, partition, fmt == "json", not no_export,
                              sample_rows)
    text, code = runonce.run_once(_load(config_path), request)
    _say(text)
    return code


# --- import-dbt ----------------------------------------------------------------------------

@cli.command("import-dbt")
@click.argument("run_results", metavar="RUN_RESULTS")
@click.option("--manifest", metavar="MANIFEST",
              help="dbt's manifest.json: attaches each test to its model or source")
@click.option("--warehouse", default="dbt", show_default=True, metavar="NAME",
              help="the dq.warehouse attribute of every imported test")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--no-export", is_flag=True, help="send no telemetry at all")
def import_dbt(run_results: str, manifest: str | None, warehouse: str, fmt: str,
               no_export: bool) -> int:
    """Publish a dbt run's test outcomes (run_results.json) as checks, exit 0/1/2/3."""
    from dqmon import importdbt

    _started()
    outcome = importdbt.import_dbt(importdbt.Request(run_results, manifest, warehouse,
                                                     fmt == "json", not no_export))
    for note in outcome.notes:
        _say(f"dqmon: {note}", err=True)
    _say(outcome.text)
    return outcome.code


# --- validate --------------------------------------------------------------------------------

@cli.command()
@_config_option()
@click.option("--show-sql", is_flag=True, help="print the SQL of every table, without connecting")
@click.option("--connect", is_flag=True, help="also check that tables and columns exist")
def validate(config_path: str | None, show_sql: bool, connect: bool) -> int:
    """Check the config file; optionally print its SQL or check it against the warehouses."""
    from dqmon.inspect import connect_problems, role_warnings, show_sql_text
    from dqmon.warehouse import open_warehouses

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


def _naming_option() -> Callable[[F], F]:
    """Return `--naming`: how metric and label names are spelled (default: the file's)."""
    return click.option(
        "--naming", type=click.Choice(["underscore", "utf8"]), default=None,
        help="`utf8` for backends that keep OTel names (dq.table), read with PromQL 3 quoted "
             "names; default: checks.yaml's naming (underscore). See docs/telemetry.md")


@cli.command()
@_config_option()
@click.option("-o", "--output", metavar="FILE", help="write here instead of stdout")
@click.option("--generic", is_flag=True,
              help="a constant set of rules for every check (default above 500 checks)")
@click.option("--per-check", is_flag=True, help="one rule per check, one group per table")
@click.option("--backfill", is_flag=True,
              help="only the hourly summaries of `anomaly:` checks, for `promtool tsdb "
                   "create-blocks-from rules` over existing history (docs/alerting.md)")
@_naming_option()
def rules(config_path: str | None, output: str | None, generic: bool, per_check: bool,
          backfill: bool, naming: Naming | None) -> int:
    """Write Prometheus alerting rules derived from the checks."""
    from dqmon.alerts import render_rules

    if generic and per_check:
        raise UsageError("--generic and --per-check exclude each other")
    config = _load(config_path)
    _emit(render_rules(config, form="generic" if generic else "per-check" if per_check
                       else "auto", naming=naming, backfill=backfill), output)
    return int(ExitCode.OK)


@cli.command()
@_config_option()
@click.option("-o", "--output", metavar="FILE", help="write here instead of stdout")
@_naming_option()
def dashboard(config_path: str | None, output: str | None, naming: Naming | None) -> int:
    """Write a Grafana dashboard (JSON) over dqmon's metrics."""
    from dqmon.dashboard import render_dashboard

    _emit(render_dashboard(_load(config_path), naming=naming), output)
    return int(ExitCode.OK)


# --- demo ------------------------------------------------------------------------------------

@cli.command()
@click.option("--path", default="demo/warehouse.db", show_default=True,
              help="where to write the SQLite demo warehouse")
def demo(path: str) -> int:
    """(Re)build the embedded SQLite demo warehouse used by the repo's checks.yaml."""
    from dqmon.demo import build_demo

    _started()
    target = build_demo(path)
    click.echo(f"demo warehouse written to {target}", err=True)
    return int(ExitCode.OK)
