"""Per-check rules (SPEC section 5, issue 5): one rule group per table, thresholds copied
from the file, selectors naming the table and the check.

Every expression reads its gauge through `last_over_time(...[window])`, because samples
pushed by `run-once` over OTLP get no staleness marker and arrive only once a schedule
period; and aggregates `by` the dq.* identity labels only, so `instance`, `job`,
`otel_scope_*` and any target labels (a pod name) never split or duplicate an alert. The
identity includes `dq_segment`, so a segmented table's check alerts once per failing segment
and once for the whole table (SPEC 8, "Segments").
"""

from __future__ import annotations

from typing import Any

from dqmon.alerts.anomaly import anomaly_groups, per_check_rule, watches
from dqmon.alerts.common import (
    ALERT_NAMES,
    CHECK_LAST_RUN,
    CHECK_UP,
    IDENTITY,
    SUBJECT_TEXT,
    VALUE_TEXT,
    WHERE_TEXT,
    RuleOptions,
    duration,
    indent,
    kind_text,
    number,
    prom_name,
    selector,
    template_literal,
    window_s,
)
from dqmon.config import CheckSpec, Config, TableSpec


def latest(metric: str, table: TableSpec, options: RuleOptions, *, agg: str = "max",
           by: tuple[str, ...] = IDENTITY, **labels: str) -> str:
    """Return `agg by (...) (last_over_time(metric{dq_table=...}[window]))`."""
    series = selector(metric, dq_table=table.name, **labels)
    lookback = duration(window_s(table, options))
    return f"{agg} by ({', '.join(by)}) (\n  last_over_time({series}[{lookback}])\n)"


# --- per-check alerts ------------------------------------------------------------------------

def check_expr(check: CheckSpec, table: TableSpec, options: RuleOptions) -> str | None:
    """Return the PromQL that is non-empty while `check` breaks its threshold, or None."""
    metric = prom_name(check.metric)
    parts = []
    if check.threshold.min is not None:
        value = latest(metric, table, options, agg="min", dq_check=check.name)
        parts.append(f"{value} < {number(check.threshold.min)}")
    if check.threshold.max is not None:
        value = latest(metric, table, options, agg="max", dq_check=check.name)
        parts.append(f"{value} > {number(check.threshold.max)}")
    return "\nor\n".join(parts) if parts else None


def threshold_text(check: CheckSpec) -> str:
    """Say the configured bounds in words, in the value's unit."""
    unit = " s" if check.kind == "freshness" else ""
    bounds = [f"{name} {number(value)}{unit}" for name, value in check.threshold.as_dict().items()]
    return " and ".join(bounds)


def check_rule(check: CheckSpec, table: TableSpec, options: RuleOptions) -> dict[str, Any] | None:
    """Return the alerting rule of one check, or None when it has no bound to compare."""
    expr = check_expr(check, table, options)
    if expr is None:
        return None
    value = VALUE_TEXT[check.kind]
    bounds = threshold_text(check)
    return {
        "alert": ALERT_NAMES[check.kind],
        "expr": expr,
        "for": duration(options.for_s),
        "labels": {"severity": check.severity, "dq_table": template_literal(table.name),
                   "dq_check": template_literal(check.name)},
        "annotations": {
            "summary": f"{SUBJECT_TEXT} failed: {value} breaks {bounds}",
            "description": (f"Check {{{{ $labels.dq_check }}}} ({kind_text(check.kind)}) on "
                            f"table {WHERE_TEXT} measured {value} ({prom_name(check.metric)}); "
                            f"the threshold in checks.yaml is {bounds}."),
        },
    }


# --- table-wide alerts -----------------------------------------------------------------------

def error_annotations(options: RuleOptions) -> dict[str, str]:
    """Return the summary and description of DQCheckError (shared with the generic rules)."""
    return {
        "summary": f"{SUBJECT_TEXT} cannot run",
        "description": (f"Check {{{{ $labels.dq_check }}}} on table {WHERE_TEXT} has "
                        "errored or timed out (dq_check_up == 0) for "
                        f"{duration(options.error_for_s)}; its value gauge shows the last "
                        "value it measured. See dqmon's logs for the error."),
    }


def error_rule(table: TableSpec, options: RuleOptions) -> dict[str, Any]:
    """Return DQCheckError: a check of `table` could not run (dq_check_up == 0)."""
    up = latest(CHECK_UP, table, options, agg="min", by=(*IDENTITY, "dq_severity"))
    return {
        "alert": "DQCheckError",
        "expr": f"{up} == 0",
        "for": duration(options.error_for_s),
        "labels": {"severity": "{{ $labels.dq_severity }}",
                   "dq_table": template_literal(table.name)},
        "annotations": error_annotations(options),
    }


def stale_rule(table: TableSpec, options: RuleOptions) -> dict[str, Any]:
    """Return DQMonitorStale: `table` has not been checked for N schedule periods."""
    limit_s = options.stale_periods * table.schedule.period_s()
    last_run = latest(CHECK_LAST_RUN, table, options, by=("dq_table",))
    series = selector(CHECK_LAST_RUN, dq_table=table.name)
    lookback = duration(window_s(table, options))
    # `time() - x > N` goes silent once x itself is gone: OR it with the series' absence.
    expr = (f"time() - {last_run} > {number(limit_s)}\n"
            f"or absent_over_time({series}[{lookback}])")
    severity = "critical" if any(c.severity == "critical" for c in table.checks) else "warning"
    periods = number(options.stale_periods)
    return {
        "alert": "DQMonitorStale",
        "expr": expr,
        "for": duration(options.for_s),
        "labels": {"severity": severity, "dq_table": template_literal(table.name)},
        "annotations": {
            "summary": "dqmon has not checked table {{ $labels.dq_table }} lately",
            "description": (f"No check of table {{{{ $labels.dq_table }}}} has run for more than "
                            f"{periods} schedule periods ({periods} x "
                            f"{duration(table.schedule.period_s())}, schedule "
                            f"'{template_literal(str(table.schedule))}'), or its metrics have "
                            "stopped arriving: is dqmon running and exporting?"),
        },
    }


def anomaly_annotations(options: RuleOptions) -> dict[str, str]:
    """Return the summary and description of DQRowCountAnomaly (shared with generic rules)."""
    lookback = duration(options.anomaly_window_s)
    return {
        "summary": ("Row count of {{ $labels.dq_table }} is {{ $value | humanizePercentage }}"
                    f" off its {lookback} average"),
        "description": (f"Check {{{{ $labels.dq_check }}}} on table {{{{ $labels.dq_table }}}}"
                        f": the latest row count differs from its {lookback} average by "
                        f"{{{{ $value | humanizePercentage }}}}, more than "
                        f"{options.anomaly_ratio:.0%}."),
    }


def anomaly_rule(check: CheckSpec, table: TableSpec, options: RuleOptions) -> dict[str, Any]:
    """Return DQRowCountAnomaly for a row_count check: far from its long-run average."""
    by = tuple(label for label in IDENTITY if label != "dq_partition")
    current = latest(prom_name(check.metric), table, options, by=by, dq_check=check.name)
    series = selector(prom_name(check.metric), dq_table=table.name, dq_check=check.name)
    lookback = duration(options.anomaly_window_s)
    average = f"avg by ({', '.join(by)}) (\n  avg_over_time({series}[{lookback}])\n)"
    ratio = number(options.anomaly_ratio)
    return {
        "alert": "DQRowCountAnomaly",
        "expr": f"abs(\n{indent(current)}\n  /\n{indent(average)}\n  - 1\n) > {ratio}",
        "for": duration(options.for_s),
        "labels": {"severity": "warning", "dq_table": template_literal(table.name),
                   "dq_check": template_literal(check.name)},
        "annotations": anomaly_annotations(options),
    }


def _anomaly_checks(table: TableSpec) -> list[CheckSpec]:
    """Return the row_count checks whose latest value is comparable with past ones.

    The current slice of a partitioned table (lag 0) is still filling up: its count
    always starts low, so comparing it with complete slices would alert every morning.
    """
    if table.partition is not None and table.partition.lag == 0:
        return []
    return [c for c in table.checks if c.kind == "row_count"]


# --- the rule file ---------------------------------------------------------------------------

def table_group(table: TableSpec, options: RuleOptions) -> dict[str, Any]:
    """Return the rule group of one table: its checks, then the table-wide alerts."""
    rules = [rule for check in table.checks if (rule := check_rule(check, table, options))]
    rules += [error_rule(table, options), stale_rule(table, options)]
    rules += [anomaly_rule(check, table, options) for check in _anomaly_checks(table)]
    lookback = duration(window_s(table, options))
    rules += [per_check_rule(watch, lookback, options) for watch in watches([table])]
    return {"name": f"dqmon.{table.name}", "rules": rules}


def build_per_check_rules(config: Config, options: RuleOptions) -> dict[str, Any]:
    """Return the per-check rule file for `config`: the shared summaries and baselines
    (SPEC 10), if any check is watched, then one group per table."""
    lookback = duration(max((window_s(t, options) for t in config.tables),
                            default=options.min_window_s))
    learned = anomaly_groups(watches(list(config.tables)), lookback, options)
    return {"groups": [*learned, *(table_group(table, options) for table in config.tables)]}
