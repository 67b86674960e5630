"""What the per-check and the generic rules share: metric and label names, tunables, PromQL
and YAML formatting (SPEC sections 3 and 5)."""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

from dqmon.config import CHECK_METRICS, METRICS, TableSpec


def prom_name(otel_name: str) -> str:
    """Return the Prometheus name of a dq.* OTel metric (its units are already in the name)."""
    return otel_name.replace(".", "_")


# Prometheus names of the dq.check.* gauges (SPEC section 3).
CHECK_PASSED = prom_name(CHECK_METRICS["passed"])
CHECK_UP = prom_name(CHECK_METRICS["up"])
CHECK_DURATION = prom_name(CHECK_METRICS["duration"])
CHECK_LAST_RUN = prom_name(CHECK_METRICS["last_run"])
CHECK_THRESHOLD = prom_name(CHECK_METRICS["threshold"])

# Prometheus names of the value gauges, per check kind.
VALUE_METRICS = {kind: prom_name(name) for kind, name in METRICS.items()}

# The labels that identify one check's series; everything else is aggregated away. A series
# without one of them (most have no dq_stat, dq_partition or dq_segment) has it as "", so one
# list serves every kind; dq_segment keeps each segment's series apart (SPEC 8, "Segments").
IDENTITY = ("dq_warehouse", "dq_table", "dq_check", "dq_column", "dq_rule", "dq_stat",
            "dq_partition", "dq_segment")
# One check of one slice, its segments and its whole-table series together.
WHOLE_CHECK = tuple(label for label in IDENTITY if label != "dq_segment")

ALERT_NAMES = {
    "freshness": "DQFreshness",
    "row_count": "DQRowCount",
    "completeness": "DQCompleteness",
    "validity": "DQValidity",
    "uniqueness": "DQUniqueness",
    "schema": "DQSchemaMismatch",
    "custom": "DQCustomCheck",
    "volume": "DQVolume",  # metadata monitors (SPEC section 9)
    "schema_change": "DQSchemaChange",
    "statistic": "DQStatistic",  # SPEC 8
    "reference": "DQReference",
}

# How $value reads in an annotation, per check kind (Go template pipelines).
VALUE_TEXT = {
    "freshness": "{{ $value | humanizeDuration }}",
    "row_count": "{{ $value | humanize }}",
    "completeness": '{{ $value | printf "%.4f" }}',
    "validity": '{{ $value | printf "%.4f" }}',
    "uniqueness": '{{ $value | printf "%.4f" }}',
    "schema": "{{ $value }}",
    "custom": "{{ $value }}",
    "volume": "{{ $value | humanize }}",
    "schema_change": "{{ $value }}",
    "statistic": '{{ $value | printf "%.6g" }}',
    "reference": '{{ $value | printf "%.4f" }}',
}

# How a kind reads in a description, where its name alone says too little.
KIND_TEXT = {"statistic": "statistic {{ $labels.dq_stat }}"}

SEGMENT_TEXT = "{{ with $labels.dq_segment }} (segment {{ . }}){{ end }}"
# Which check an alert is about, in a summary: table.check, and its segment if any.
SUBJECT_TEXT = "{{ $labels.dq_table }}.{{ $labels.dq_check }}" + SEGMENT_TEXT
# Where a check's table reads in a description: its name, its partition slice and segment.
WHERE_TEXT = ("{{ $labels.dq_table }}{{ with $labels.dq_partition }} (partition {{ . }}){{ end }}"
              + SEGMENT_TEXT)


def kind_text(kind: str) -> str:
    """Return how a check kind reads in a description (`statistic avg`, `freshness`)."""
    return KIND_TEXT.get(kind, kind)


@dataclass(frozen=True)
class RuleOptions:
    """Tunables of the generated rules; tests shorten `for_s`."""

    for_s: float = 300.0  # `for:` of check, staleness and anomaly alerts ("a few minutes")
    error_for_s: float = 600.0  # `for:` of DQCheckError (SPEC: 10m)
    stale_periods: float = 3.0  # DQMonitorStale: no run for this many schedule periods
    min_window_s: float = 300.0  # lookback of last_over_time, at least Prometheus's default
    anomaly_ratio: float = 0.3  # DQRowCountAnomaly: relative deviation from the average
    anomaly_window_s: float = 7 * 86400.0  # DQRowCountAnomaly: the average's window
    # Generic rules only: how long DQMonitorStale keeps firing for a table whose series have
    # vanished (pushes stopped, a shard died) before it is taken for removed (docs/alerting.md).
    stale_hold_s: float = 3600.0
    # DQAnomaly (SPEC 10, issue 12; docs/alerting.md, "Learned baselines"). `for:` two
    # evaluations at Prometheus's default 1m evaluation interval.
    anomaly_for_s: float = 60.0
    anomaly_step_s: float = 300.0  # the hourly summaries sample the value every step
    # The summaries' span and interval; a seasonal baseline reads one per earlier period.
    anomaly_slot_s: float = 3600.0
    # A baseline without seasonality ends this long before now, so that the value being
    # judged does not widen its own band in its first hour.
    anomaly_gap_s: float = 3600.0
    # The band is never narrower than this share of |mean|: a value flat for weeks (stddev 0)
    # would otherwise make any change, however small, an infinite z-score.
    anomaly_min_spread: float = 0.01


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


def by(labels: tuple[str, ...]) -> str:
    """Return `a, b, c`: the label list of a `by (...)` or `on (...)` clause."""
    return ", ".join(labels)


def indent(expr: str, depth: int = 1) -> str:
    """Indent every line of a PromQL expression by two spaces per level."""
    return textwrap.indent(expr, "  " * depth)


def template_literal(text: str) -> str:
    """Escape `{{` so Prometheus's label templating keeps `text` as it is."""
    return text.replace("{{", '{{ "{{" }}')


def dump_yaml(data: Any) -> str:
    """Dump `data` as block YAML, keys in insertion order, multi-line strings as blocks."""
    return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=4096)


class _BlockDumper(yaml.SafeDumper):
    """A SafeDumper that writes multi-line strings (long PromQL) as `|` blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)
