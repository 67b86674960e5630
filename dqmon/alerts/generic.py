"""Generic rules (SPEC section 11, issue 9): a constant number of alerting rules that cover
every check, whatever the number of tables.

Instead of copying each threshold into its own rule, the rules read dqmon's verdict
(`dq_check_passed`, `dq_check_up`), join the check's value in from its value gauge, and show
the live bounds of `dq_check_threshold` in the annotations. The severity comes from the
series' `dq_severity`. Alerts keep the per-check names and label sets (`severity` plus the
dq.* identity labels), so switching forms does not change routing or alert identities.

Like the per-check rules, every selector goes through `last_over_time(...[window])` (pushed
OTLP samples have no staleness markers) and aggregates by identity labels only, `dq_segment`
included, so a segmented check alerts per failing segment (SPEC 8). The metrics
do not say a check's schedule, so one window serves every check: 3 periods of the slowest
table in the file (docs/alerting.md, "The generic form").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dqmon.alerts.anomaly import anomaly_groups, watches
from dqmon.alerts.anomaly import generic_rule as generic_anomaly_rule
from dqmon.alerts.common import (
    ALERT_NAMES,
    CHECK_LAST_RUN,
    CHECK_PASSED,
    CHECK_THRESHOLD,
    CHECK_UP,
    IDENTITY,
    SUBJECT_TEXT,
    VALUE_METRICS,
    VALUE_TEXT,
    WHERE_TEXT,
    WHOLE_CHECK,
    RuleOptions,
    by,
    duration,
    indent,
    kind_text,
    number,
    quote,
    selector,
)
from dqmon.alerts.per_check import anomaly_annotations, error_annotations
from dqmon.config import Config, TableSpec, discovered_table

GROUP = "dqmon.generic"

CRITICAL = '{dq_severity="critical"}'
NOT_CRITICAL = '{dq_severity!="critical"}'

# Which way a kind's value is aggregated across instances: towards its usual bound.
_WORST = {"freshness": "max", "row_count": "min", "completeness": "min", "validity": "min",
          "uniqueness": "min", "schema": "max", "custom": "max", "volume": "min",
          "schema_change": "max", "statistic": "max", "reference": "min"}

# volume shares dq_row_count with row_count; dq_source tells them apart (SPEC section 9).
_SERIES = {"row_count": '{dq_source!="metadata"}', "volume": '{dq_source="metadata"}'}


def table_shapes(config: Config) -> list[TableSpec]:
    """Return the listed tables and, per discover block, one stand-in for the tables it finds.

    Discovered tables are only known at run time, but share their block's schedule and checks.
    """
    return [*config.tables, *(discovered_table(d, "schema", "table") for d in config.discover)]


def longest_period_s(config: Config) -> float:
    """Return the longest schedule period of any table, listed or discovered (0 if none)."""
    return max((t.schedule.period_s() for t in table_shapes(config)), default=0.0)


def stale_limit_s(config: Config, options: RuleOptions) -> float:
    """Return the age past which a check counts as stale: N periods of the slowest table."""
    return options.stale_periods * longest_period_s(config)


def generic_window_s(config: Config, options: RuleOptions) -> float:
    """Return the one lookback of every generic rule (the dashboard's lookback)."""
    return max(stale_limit_s(config, options), options.min_window_s)


def stale_lookback_s(config: Config, options: RuleOptions) -> float:
    """Return how far back DQMonitorStale looks for a table's last run.

    A table whose series vanished fires from `limit + for` until `limit + for + hold`.
    """
    return stale_limit_s(config, options) + options.for_s + options.stale_hold_s


# --- expressions -----------------------------------------------------------------------------

def last(metric: str, window: str) -> str:
    """Return `last_over_time(metric[window])`."""
    return f"last_over_time({metric}[{window}])"


def aggregate(agg: str, labels: tuple[str, ...], inner: str) -> str:
    """Return `agg by (labels) (inner)` over indented lines."""
    return f"{agg} by ({by(labels)}) (\n{indent(inner)}\n)"


def critical_first(side: Callable[[str], str], keep: tuple[str, ...]) -> str:
    """Return `side(critical) or on (keep) side(not critical)`: one result per `keep`.

    `side` gets a selector suffix matching the critical (or the other) series. A check whose
    severity changed within the window has series of both; the critical one wins, so a
    `group_left` on the result never meets two series for one check.
    """
    return f"{indent(side(CRITICAL))}\nor on ({by(keep)})\n{indent(side(NOT_CRITICAL))}"


def with_severity(expr: str) -> str:
    """Copy `dq_severity` into the `severity` label, as the per-check rules name it."""
    return f'label_replace(\n{indent(expr)},\n  "severity", "$1", "dq_severity", "(.*)"\n)'


def failing(window: str) -> str:
    """Return the checks dqmon says failed, labelled with their identity and `severity`."""
    def side(matcher: str) -> str:
        return aggregate("group", (*IDENTITY, "dq_severity"),
                         f"{last(CHECK_PASSED + matcher, window)} == 0")
    return with_severity(critical_first(side, IDENTITY))


def not_erroring(window: str) -> str:
    """Return the `unless` clause that leaves erroring checks to DQCheckError.

    Matched without `dq_segment`: a scan that errors reports no segments, whose series keep
    their last verdict; the whole check's `dq_check_up == 0` silences them too.
    """
    return f"unless on ({by(WHOLE_CHECK)})\n  {last(CHECK_UP, window)} == 0"


def kind_expr(kind: str, window: str) -> str:
    """Return the value of every failing check of one kind, labelled with its severity."""
    value = aggregate(_WORST[kind], IDENTITY,
                      last(VALUE_METRICS[kind] + _SERIES.get(kind, ""), window))
    return (f"{value}\n* on ({by(IDENTITY)}) group_left (severity)\n{failing(window)}\n"
            f"{not_erroring(window)}")


def valueless_expr(window: str) -> str:
    """Return the failing checks that published no value at all within the window."""
    metrics = dict.fromkeys(VALUE_METRICS.values())  # unique, in order
    values = "\nor ".join(last(metric, window) for metric in metrics)
    inner = (f"{failing(window)}\nunless on ({by(IDENTITY)}) (\n{indent(values)}\n)\n"
             f"{not_erroring(window)}")
    return aggregate("group", (*IDENTITY, "severity"), inner)


def error_expr(window: str) -> str:
    """Return DQCheckError's expression: the check's query errored or timed out."""
    return f"{aggregate('min', (*IDENTITY, 'dq_severity'), last(CHECK_UP, window))} == 0"


def stale_expr(config: Config, options: RuleOptions) -> str:
    """Return the age of each table whose checks stopped running while its warehouse reports.

    A whole warehouse gone is `absent_expr`'s to report: one alert, not one per table.
    """
    lookback = duration(stale_lookback_s(config, options))
    limit = number(stale_limit_s(config, options))
    table = ("dq_warehouse", "dq_table")

    def side(matcher: str) -> str:
        newest = last(CHECK_LAST_RUN + matcher, lookback)
        return f"time() - {aggregate('max', (*table, 'dq_severity'), newest)} > {limit}"
    window = duration(generic_window_s(config, options))
    reporting = aggregate("group", ("dq_warehouse",), last(CHECK_LAST_RUN, window))
    stale = f"(\n{critical_first(side, table)}\n)\nand on (dq_warehouse)\n{reporting}"
    return aggregate("max", ("dq_table", "severity"), with_severity(stale))


def absent_expr(config: Config, options: RuleOptions) -> str:
    """Return one series per warehouse of the file from which no check has reported at all."""
    window = duration(generic_window_s(config, options))
    parts = [f"label_replace(\n  absent_over_time({selector(CHECK_LAST_RUN, dq_warehouse=name)}"
             f"[{window}]),\n  \"severity\", {quote(severity)}, \"\", \"\"\n)"
             for name, severity in warehouse_severities(config).items()]
    return "\nor\n".join(parts)


def warehouse_severities(config: Config) -> dict[str, str]:
    """Return each warehouse that has tables, with its highest check severity."""
    severities: dict[str, str] = {}
    for table in table_shapes(config):
        critical = any(c.severity == "critical" for c in table.checks)
        if critical or table.warehouse not in severities:
            severities[table.warehouse] = "critical" if critical else "warning"
    return severities


def anomaly_expr(config: Config, options: RuleOptions) -> str:
    """Return |latest / long-run average - 1| of every unpartitioned, scanned row count."""
    keep = tuple(label for label in IDENTITY if label != "dq_partition")
    series = f'{VALUE_METRICS["row_count"]}{{dq_partition="",dq_source!="metadata"}}'
    window = duration(generic_window_s(config, options))
    current = aggregate("max", keep, last(series, window))
    long_run = duration(options.anomaly_window_s)
    average = aggregate("avg", keep, f"avg_over_time({series}[{long_run}])")
    return (f"abs(\n{indent(current)}\n  /\n{indent(average)}\n  - 1\n) > "
            f"{number(options.anomaly_ratio)}")


# --- annotations -----------------------------------------------------------------------------

def bounds_text(window: str, unit: str = "") -> str:
    """Return a template saying the check's live bounds from dq_check_threshold.

    `query` runs when the alert is evaluated; `%q` quotes label values as PromQL strings.
    Bounds print as `min 0.999 and max 10`, as the per-check rules print the file's.
    """
    query = (f"max by (dq_bound) (last_over_time({CHECK_THRESHOLD}{{dq_warehouse=%q,"
             f"dq_table=%q,dq_check=%q}}[{window}]))")

    def bound(name: str) -> str:
        return (f'{{{{ range $bounds }}}}{{{{ if eq .Labels.dq_bound "{name}" }}}}{name} '
                f'{{{{ .Value | printf "%.15g" }}}}{unit}{{{{ end }}}}{{{{ end }}}}')
    missing = f"{{{{ if not $bounds }}}}its threshold (no {CHECK_THRESHOLD}){{{{ end }}}}"
    return (f"{{{{ $bounds := printf `{query}` $labels.dq_warehouse $labels.dq_table "
            f"$labels.dq_check | query }}}}{bound('min')}"
            f"{{{{ if eq (len $bounds) 2 }}}} and {{{{ end }}}}{bound('max')}{missing}")


# --- rules -----------------------------------------------------------------------------------

def kind_rule(kind: str, window: str, options: RuleOptions) -> dict[str, Any]:
    """Return the alert of every failing check of one kind, named as the per-check alerts."""
    value = VALUE_TEXT[kind]
    bounds = bounds_text(window, " s" if kind == "freshness" else "")
    return {
        "alert": ALERT_NAMES[kind],
        "expr": kind_expr(kind, window),
        "for": duration(options.for_s),
        "annotations": {
            "summary": f"{SUBJECT_TEXT} failed: {value} breaks {bounds}",
            "description": (f"Check {{{{ $labels.dq_check }}}} ({kind_text(kind)}) on table "
                            f"{WHERE_TEXT} measured {value} ({VALUE_METRICS[kind]}); the "
                            f"threshold in checks.yaml is {bounds}."),
        },
    }


def valueless_rule(window: str, options: RuleOptions) -> dict[str, Any]:
    """Return DQCheckFailed: a failing check without any value to show (nor a kind alert)."""
    bounds = bounds_text(window)
    return {
        "alert": "DQCheckFailed",
        "expr": valueless_expr(window),
        "for": duration(options.for_s),
        "annotations": {
            "summary": f"{SUBJECT_TEXT} failed without a value (threshold {bounds})",
            "description": ("Check {{ $labels.dq_check }} on table "
                            f"{WHERE_TEXT} failed (dq_check_passed == 0) and published no value "
                            f"for {window} (an empty scope's freshness is +Inf, which "
                            f"OpenTelemetry drops); the threshold in checks.yaml is {bounds}."),
        },
    }


def error_rule(window: str, options: RuleOptions) -> dict[str, Any]:
    """Return DQCheckError: a check could not run (dq_check_up == 0)."""
    return {
        "alert": "DQCheckError",
        "expr": error_expr(window),
        "for": duration(options.error_for_s),
        "labels": {"severity": "{{ $labels.dq_severity }}"},
        "annotations": error_annotations(options),
    }


def stale_rule(config: Config, options: RuleOptions) -> dict[str, Any]:
    """Return DQMonitorStale: a table's checks stopped running, or a whole warehouse is silent.

    One rule for both (promtool rejects two alerts of one name with equal static labels);
    the table's series carry `dq_table`, the warehouse's `dq_warehouse` only.
    """
    periods = number(options.stale_periods)
    window = duration(generic_window_s(config, options))
    return {
        "alert": "DQMonitorStale",
        "expr": f"{stale_expr(config, options)}\nor\n{absent_expr(config, options)}",
        "for": duration(options.for_s),
        "annotations": {
            "summary": ("{{ with $labels.dq_table }}dqmon has not checked table {{ . }} lately"
                        "{{ else }}dqmon reports no check of warehouse "
                        "{{ $labels.dq_warehouse }}{{ end }}"),
            "description": ("{{ with $labels.dq_table }}No check of table {{ . }} has run for "
                            "{{ $value | humanizeDuration }}, more than "
                            f"{periods} schedule periods of the slowest table in checks.yaml "
                            f"({periods} x {duration(longest_period_s(config))}), or its "
                            "metrics have stopped arriving: is dqmon running and exporting?"
                            "{{ else }}No check of warehouse {{ $labels.dq_warehouse }} has "
                            f"reported for {window}: is dqmon running and exporting, and the "
                            "collector between it and Prometheus up?{{ end }}"),
        },
    }


def anomaly_rule(config: Config, options: RuleOptions) -> dict[str, Any]:
    """Return DQRowCountAnomaly for every unpartitioned row_count check."""
    return {
        "alert": "DQRowCountAnomaly",
        "expr": anomaly_expr(config, options),
        "for": duration(options.for_s),
        "labels": {"severity": "warning"},
        "annotations": anomaly_annotations(options),
    }


def build_generic_rules(config: Config, options: RuleOptions) -> dict[str, Any]:
    """Return the generic rule file for `config`: one group of a fixed 15 rules."""
    window = duration(generic_window_s(config, options))
    rules = [kind_rule(kind, window, options) for kind in ALERT_NAMES]
    rules += [valueless_rule(window, options), error_rule(window, options),
              stale_rule(config, options), anomaly_rule(config, options)]
    found = watches(table_shapes(config), discovered=len(config.discover))
    learned = anomaly_groups(found, window, options)
    if learned:
        rules.append(generic_anomaly_rule(found, window, options))
    return {"groups": [*learned, {"name": GROUP, "rules": rules}]}
