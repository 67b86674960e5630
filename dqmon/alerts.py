"""Prometheus alerting rules derived from a `Config` (SPEC section 5, issue 5).

Every expression reads its gauge through `last_over_time(...[window])`, because samples
pushed by `run-once` over OTLP get no staleness marker and arrive only once a schedule
period; and aggregates `by` the dq.* identity labels only, so `instance`, `job`,
`otel_scope_*` and any target labels (a pod name) never split or duplicate an alert.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dqmon.config import CHECK_METRICS, CheckSpec, Config, TableSpec


def prom_name(otel_name: str) -> str:
    """Return the Prometheus name of a dq.* OTel metric (its units are already in the name)."""
    return otel_name.replace(".", "_")


# Prometheus names of the dq.check.* gauges (SPEC section 3).
CHECK_PASSED = prom_name(CHECK_METRICS["passed"])
CHECK_UP = prom_name(CHECK_METRICS["up"])
CHECK_DURATION = prom_name(CHECK_METRICS["duration"])
CHECK_LAST_RUN = prom_name(CHECK_METRICS["last_run"])
CHECK_THRESHOLD = prom_name(CHECK_METRICS["threshold"])

# The labels that identify one check's series; everything else is aggregated away.
IDENTITY = ("dq_warehouse", "dq_table", "dq_check", "dq_column", "dq_rule", "dq_partition")

ALERT_NAMES = {
    "freshness": "DQFreshness",
    "row_count": "DQRowCount",
    "completeness": "DQCompleteness",
    "validity": "DQValidity",
    "uniqueness": "DQUniqueness",
    "schema": "DQSchemaMismatch",
    "custom": "DQCustomCheck",
}

# How $value reads in an annotation, per check kind (Go template pipelines).
_VALUE_TEXT = {
    "freshness": "{{ $value | humanizeDuration }}",
    "row_count": "{{ $value | humanize }}",
    "completeness": '{{ $value | printf "%.4f" }}',
    "validity": '{{ $value | printf "%.4f" }}',
    "uniqueness": '{{ $value | printf "%.4f" }}',
    "schema": "{{ $value }}",
    "custom": "{{ $value }}",
}


@dataclass(frozen=True)
class RuleOptions:
    """Tunables of the generated rules; tests shorten `for_s`."""

    for_s: float = 300.0  # `for:` of check, staleness and anomaly alerts ("a few minutes")
    error_for_s: float = 600.0  # `for:` of DQCheckError (SPEC: 10m)
    stale_periods: float = 3.0  # DQMonitorStale: no run for this many schedule periods
    min_window_s: float = 300.0  # lookback of last_over_time, at least Prometheus's default
    anomaly_ratio: float = 0.3  # DQRowCountAnomaly: relative deviation from the average
    anomaly_window_s: float = 7 * 86400.0  # DQRowCountAnomaly: the average's window


def quote(value: str) -> str:
    """Return `value` as a PromQL double-quoted string literal."""
    return json.dumps(value, ensure_ascii=False)


def selector(metric: str, **labels: str) -> str:
    """Return `metric{label="value",...}` with every value escaped."""
    matchers = ",".join(f"{name}={quote(value)}" for name, value in labels.items())
    return f"{metric}{{{matchers}}}" if matchers else metric


def number(value: float) -> str:
    """Format a threshold as a PromQL number literal."""
    value = float(value)  # row_count bounds are ints
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def duration(seconds: float) -> str:
    """Format seconds as a Prometheus duration (`7d`, `2h`, `90s`, `1500ms`)."""
    millis = max(1, math.ceil(seconds * 1000))
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def window_s(table: TableSpec, options: RuleOptions) -> float:
    """Return the lookback that holds a table's last sample until it counts as stale."""
    return max(options.stale_periods * table.schedule.period_s(), options.min_window_s)


def latest(metric: str, table: TableSpec, options: RuleOptions, *, agg: str = "max",
           by: tuple[str, ...] = IDENTITY, **labels: str) -> str:
    """Return `agg by (...) (last_over_time(metric{dq_table=...}[window]))`."""
    series = selector(metric, dq_table=table.name, **labels)
    lookback = duration(window_s(table, options))
    return f"{agg} by ({', '.join(by)}) (\n  last_over_time({series}[{lookback}])\n)"


def template_literal(text: str) -> str:
    """Escape `{{` so Prometheus's label templating keeps `text` as it is."""
    return text.replace("{{", '{{ "{{" }}')


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
    value = _VALUE_TEXT[check.kind]
    bounds = threshold_text(check)
    where = "{{ $labels.dq_table }}{{ with $labels.dq_partition }} (partition {{ . }}){{ end }}"
    return {
        "alert": ALERT_NAMES[check.kind],
        "expr": expr,
        "for": duration(options.for_s),
        "labels": {"severity": check.severity, "dq_table": template_literal(table.name),
                   "dq_check": template_literal(check.name)},
        "annotations": {
            "summary": (f"{{{{ $labels.dq_table }}}}.{{{{ $labels.dq_check }}}} failed: "
                        f"{value} breaks {bounds}"),
            "description": (f"Check {{{{ $labels.dq_check }}}} ({check.kind}) on table {where} "
                            f"measured {value} ({prom_name(check.metric)}); the threshold in "
                            f"checks.yaml is {bounds}."),
        },
    }


# --- generic alerts --------------------------------------------------------------------------

def error_rule(table: TableSpec, options: RuleOptions) -> dict[str, Any]:
    """Return DQCheckError: a check of `table` could not run (dq_check_up == 0)."""
    up = latest(CHECK_UP, table, options, agg="min", by=(*IDENTITY, "dq_severity"))
    return {
        "alert": "DQCheckError",
        "expr": f"{up} == 0",
        "for": duration(options.error_for_s),
        "labels": {"severity": "{{ $labels.dq_severity }}",
                   "dq_table": template_literal(table.name)},
        "annotations": {
            "summary": "{{ $labels.dq_table }}.{{ $labels.dq_check }} cannot run",
            "description": ("Check {{ $labels.dq_check }} on table {{ $labels.dq_table }} has "
                            "errored or timed out (dq_check_up == 0) for "
                            f"{duration(options.error_for_s)}; its value gauge shows the last "
                            "value it measured. See dqmon's logs for the error."),
        },
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
        "expr": f"abs(\n{_indent(current)}\n  /\n{_indent(average)}\n  - 1\n) > {ratio}",
        "for": duration(options.for_s),
        "labels": {"severity": "warning", "dq_table": template_literal(table.name),
                   "dq_check": template_literal(check.name)},
        "annotations": {
            "summary": ("Row count of {{ $labels.dq_table }} is {{ $value | humanizePercentage }}"
                        f" off its {lookback} average"),
            "description": (f"Check {{{{ $labels.dq_check }}}} on table {{{{ $labels.dq_table }}}}"
                            f": the latest row count differs from its {lookback} average by "
                            f"{{{{ $value | humanizePercentage }}}}, more than "
                            f"{options.anomaly_ratio:.0%}."),
        },
    }


def _indent(expr: str) -> str:
    return textwrap.indent(expr, "  ")


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
    """Return the rule group of one table: its checks, then the generic alerts."""
    rules = [rule for check in table.checks if (rule := check_rule(check, table, options))]
    rules += [error_rule(table, options), stale_rule(table, options)]
    rules += [anomaly_rule(check, table, options) for check in _anomaly_checks(table)]
    return {"name": f"dqmon.{table.name}", "rules": rules}


def build_rules(config: Config, options: RuleOptions | None = None) -> dict[str, Any]:
    """Return the Prometheus rule file for `config`: one group per table."""
    options = options or RuleOptions()
    return {"groups": [table_group(table, options) for table in config.tables]}


def render_rules(config: Config, options: RuleOptions | None = None) -> str:
    """Return the rule file as YAML text with a header saying where it came from."""
    header = (f"# Generated by `dqmon rules` from {Path(config.file).name}: do not edit,\n"
              "# regenerate when the checks change (docs/alerting.md).\n")
    return header + dump_yaml(build_rules(config, options))


def dump_yaml(data: Any) -> str:
    """Dump `data` as block YAML, keys in insertion order, multi-line strings as blocks."""
    return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=4096)


class _BlockDumper(yaml.SafeDumper):
    """A SafeDumper that writes multi-line strings (long PromQL) as `|` blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)
