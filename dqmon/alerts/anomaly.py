"""Learned baselines (SPEC 10, issue 12): recording rules for the mean and standard deviation
of watched values, and the `DQAnomaly` alert on a value outside mean ± sensitivity × stddev.

Two stages keep the evaluation cost independent of the raw sample rate. Once an hour, the
`dqmon.anomaly.summaries` group records each watched check's mean and variance over the past
hour (`dq:<gauge>:avg_1h`, `dq:<gauge>:stdvar_1h`), sampled through a subquery every
`anomaly_step_s` and aggregated by identity first, so a restart (new `instance`), a new
partition slice or a sparse OTLP push still make one series per check. The baselines then
read those hourly summaries only: 336 points per check for 14 days instead of every raw
sample. The variance over the window is the pooled one (law of total variance: the mean of
the hours' variances plus the variance of the hours' means). A seasonal baseline pools the
hours at the same time of day or week in each earlier period (`offset`).

Both stages are shared per gauge: one rule per value gauge and (window, seasonality) in
use, whatever the number of checks, over the watched checks' series only (label matchers
on `dq_table` and `dq_check`, so unwatched series are never read). Alerts are per check in
the per-check form and one rule per settings in the generic form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from dqmon.alerts.common import (
    CHECK_UP,
    IDENTITY,
    SUBJECT_TEXT,
    WHERE_TEXT,
    RuleOptions,
    by,
    duration,
    indent,
    number,
    prom_name,
    quote,
    template_literal,
)
from dqmon.config import CheckSpec, TableSpec
from dqmon.config.kinds import SEASON_S, Anomaly

# One check's value across partition slices: a slice is not a check of its own here.
ANOMALY_ID = tuple(label for label in IDENTITY if label != "dq_partition")
BASELINE_GROUP = "dqmon.anomaly.baselines"


@dataclass(frozen=True)
class Watch:
    """One anomaly-watched check and its table (`discovered`: a discover block's stand-in)."""

    check: CheckSpec
    table: TableSpec
    discovered: bool = False

    @property
    def anomaly(self) -> Anomaly:
        """Return the check's settings."""
        assert self.check.anomaly is not None
        return self.check.anomaly

    @property
    def metric(self) -> str:
        """Return the Prometheus name of the watched value gauge."""
        return prom_name(self.check.metric)

    @property
    def baseline(self) -> Baseline:
        """Return the shared baseline this check reads."""
        return Baseline(self.metric, self.anomaly.window, self.anomaly.seasonality)


@dataclass(frozen=True, order=True)
class Baseline:
    """One value gauge's baseline over one window and seasonality: two recorded series."""

    metric: str
    window_s: float
    seasonality: str

    def name(self, stat: str) -> str:
        """Return the recorded series' name, e.g. `dq:dq_row_count:mean_14d_weekly`."""
        season = "" if self.seasonality == "none" else f"_{self.seasonality}"
        return f"dq:{self.metric}:{stat}_{duration(self.window_s)}{season}"


K = TypeVar("K", bound=Hashable)


def grouped(found: list[Watch], key: Callable[[Watch], K]) -> dict[K, list[Watch]]:
    """Return the watches by `key`, each group in the order found."""
    groups: dict[K, list[Watch]] = {}
    for watch in found:
        groups.setdefault(key(watch), []).append(watch)
    return groups


def watches(tables: list[TableSpec], discovered: int = 0) -> list[Watch]:
    """Return the watched checks of `tables`; the last `discovered` are discover stand-ins."""
    first_discovered = len(tables) - discovered
    return [Watch(check, table, i >= first_discovered)
            for i, table in enumerate(tables) for check in table.checks if check.anomaly]


# --- selectors -------------------------------------------------------------------------------

def alternatives(values: set[str]) -> str:
    """Return an RE2 alternation that matches exactly `values`."""
    return "|".join(re.escape(value) for value in sorted(values))


def matchers(group: list[Watch]) -> str:
    """Return `dq_table=~"...",dq_check=~"..."` covering every check of `group`.

    The pairs are over-approximated (any listed table with any listed check): a series
    too many costs a little evaluation, never an alert. Discovered tables are not named.
    """
    checks = f"dq_check=~{quote(alternatives({w.check.name for w in group}))}"
    if any(w.discovered for w in group):
        return checks
    return f"dq_table=~{quote(alternatives({w.table.name for w in group}))},{checks}"


def exact(watch: Watch) -> str:
    """Return `dq_table="...",dq_check="..."`: one check's series."""
    return f"dq_table={quote(watch.table.name)},dq_check={quote(watch.check.name)}"


# --- hourly summaries ------------------------------------------------------------------------

SUMMARY_GROUP = "dqmon.anomaly.summaries"


def summary_name(metric: str, stat: str, options: RuleOptions) -> str:
    """Return an hourly summary's name, e.g. `dq:dq_row_count:avg_1h`."""
    return f"dq:{metric}:{stat}_{duration(options.anomaly_slot_s)}"


def sampled(metric: str, labels: str, options: RuleOptions) -> str:
    """Return the value per check identity over the last slot, sampled every step."""
    inner = f"max by ({by(ANOMALY_ID)}) ({metric}{{{labels}}})"
    return f"({inner})[{duration(options.anomaly_slot_s)}:{duration(options.anomaly_step_s)}]"


def summary_group(found: list[Watch], options: RuleOptions) -> dict[str, object] | None:
    """Return the hourly group: each watched gauge's mean and variance over the last hour."""
    gauges = grouped(found, lambda watch: watch.metric)
    if not gauges:
        return None
    rules = [{"record": summary_name(metric, stat, options),
              "expr": f"{stat}_over_time({sampled(metric, matchers(group), options)})"}
             for metric, group in sorted(gauges.items()) for stat in ("avg", "stdvar")]
    return {"name": SUMMARY_GROUP, "interval": duration(options.anomaly_slot_s), "rules": rules}


# --- baseline recording rules ----------------------------------------------------------------

def over(function: str, baseline: Baseline, stat: str, labels: str, span_s: float,
         offset_s: float, options: RuleOptions) -> str:
    """Return `function` over the hourly `stat` summaries of `span` ending `offset` ago."""
    at = f" offset {duration(offset_s)}" if offset_s else ""
    name = summary_name(baseline.metric, stat, options)
    return f"{function}({name}{{{labels}}}[{duration(span_s)}]{at})"


def slots(baseline: Baseline, options: RuleOptions) -> list[float]:
    """Return the offsets that select, in each earlier period, the hour whose summary ends
    within the hour after the same time of day or week: centred within half an hour of it."""
    period = SEASON_S[baseline.seasonality]
    count = max(1, math.floor(baseline.window_s / period))
    return [k * period - options.anomaly_slot_s for k in range(1, count + 1)]


def pooled(baseline: Baseline, labels: str, options: RuleOptions, squared: bool) -> str:
    """Return `avg by (id)` over the seasonal hours of their mean (or second moment)."""
    parts = []
    for i, offset in enumerate(slots(baseline, options), start=1):
        def hour(stat: str, at: float = offset) -> str:
            return over("last_over_time", baseline, stat, labels, options.anomaly_slot_s, at,
                        options)
        term = f"{hour('stdvar')} + {hour('avg')} ^ 2" if squared else hour("avg")
        parts.append(f'label_replace(\n  {term},\n  "dq_slot", "{i}", "", ""\n)')
    union = "\nor\n".join(parts)
    return f"avg by ({by(ANOMALY_ID)}) (\n{indent(union)}\n)"


def baseline_rules(baseline: Baseline, labels: str, options: RuleOptions) -> list[dict[str, str]]:
    """Return the mean and stddev recording rules of one baseline."""
    if baseline.seasonality == "none":
        def window(function: str, stat: str) -> str:
            return over(function, baseline, stat, labels, baseline.window_s,
                        options.anomaly_gap_s, options)
        mean = window("avg_over_time", "avg")
        stddev = (f"sqrt(\n  {window('avg_over_time', 'stdvar')}\n"
                  f"  + {window('stdvar_over_time', 'avg')}\n)")
    else:
        second = pooled(baseline, labels, options, squared=True)
        mean = pooled(baseline, labels, options, squared=False)
        stddev = f"sqrt(clamp_min(\n{indent(second)}\n  - {baseline.name('mean')} ^ 2,\n  0\n))"
    return [{"record": baseline.name("mean"), "expr": mean},
            {"record": baseline.name("stddev"), "expr": stddev}]


# --- the alert -------------------------------------------------------------------------------

def spread(baseline: Baseline, labels: str, options: RuleOptions) -> str:
    """Return the stddev, floored at `anomaly_min_spread` × |mean|."""
    mean = f"{baseline.name('mean')}{{{labels}}}"
    floor = f"{number(options.anomaly_min_spread)} * abs({mean})"
    return f"({baseline.name('stddev')}{{{labels}}} > {floor} or {floor})"


def zscore(baseline: Baseline, labels: str, lookback: str, options: RuleOptions) -> str:
    """Return (latest value - mean) / spread per check identity."""
    value = f"max by ({by(ANOMALY_ID)}) (last_over_time({baseline.metric}{{{labels}}}[{lookback}]))"
    mean = f"{baseline.name('mean')}{{{labels}}}"
    return f"(\n  {value}\n  - {mean}\n)\n/ {spread(baseline, labels, options)}"


def outside(z: str, anomaly: Anomaly) -> str:
    """Return the z-scores beyond the sensitivity in the watched direction."""
    limit = number(anomaly.sensitivity)
    up, down = f"(\n{indent(z)}\n) > {limit}", f"(\n{indent(z)}\n) < -{limit}"
    return {"up": up, "down": down}.get(anomaly.direction, f"{up}\nor\n{down}")


def anomaly_expr(watch: Watch, labels: str, lookback: str, options: RuleOptions) -> str:
    """Return the z-score of each check of `labels` outside its band, once an hourly summary
    at least `min_history` old lies in its window, and while its query runs
    (dq_check_up == 0 is DQCheckError's business)."""
    baseline, anomaly = watch.baseline, watch.anomaly
    z = outside(zscore(baseline, labels, lookback, options), anomaly)
    span = max(anomaly.window - anomaly.min_history, options.anomaly_slot_s)
    history = over("present_over_time", baseline, "avg", labels, span, anomaly.min_history,
                   options)
    up = f"last_over_time({CHECK_UP}{{{labels}}}[{lookback}]) == 0"
    return (f"(\n{indent(z)}\n)\nand on ({by(ANOMALY_ID)})\n  {history}\n"
            f"unless on ({by(ANOMALY_ID)})\n  {up}")


def sensitivity_rule(found: list[Watch], lookback: str) -> dict[str, str]:
    """Return `dq:anomaly_sensitivity`: each watched check's sensitivity as a series.

    Annotations and the dashboard read the band through it in either form, without copying
    each check's setting into them (issue 12: dqmon may later publish it as a gauge).
    """
    groups = grouped(found, lambda watch: (watch.metric, watch.anomaly.sensitivity))
    parts = [f"{number(s)} * group by ({by(ANOMALY_ID)}) (\n"
             f"  last_over_time({metric}{{{matchers(group)}}}[{lookback}])\n)"
             for (metric, s), group in sorted(groups.items())]
    return {"record": SENSITIVITY, "expr": "\nor\n".join(parts)}


def band_rule(groups: dict[Baseline, list[Watch]], sign: str,
              options: RuleOptions) -> dict[str, str]:
    """Return `dq:anomaly_lower` or `_upper`: mean ∓ sensitivity × spread of every watch."""
    parts = []
    for baseline, group in sorted(groups.items()):
        labels = matchers(group)
        parts.append(f"{baseline.name('mean')}{{{labels}}}\n{sign} {SENSITIVITY}{{{labels}}}"
                     f" * {spread(baseline, labels, options)}")
    return {"record": BAND[sign], "expr": "\nor\n".join(f"(\n{indent(p)}\n)" for p in parts)}


SENSITIVITY = "dq:anomaly_sensitivity"
BAND = {"-": "dq:anomaly_lower", "+": "dq:anomaly_upper"}


def baseline_group(found: list[Watch], lookback: str,
                   options: RuleOptions) -> dict[str, object] | None:
    """Return the rule group of every baseline in use and the band, or None (no watch)."""
    groups = grouped(found, lambda watch: watch.baseline)
    if not groups:
        return None
    rules = [rule for baseline, group in sorted(groups.items())
             for rule in baseline_rules(baseline, matchers(group), options)]
    rules += [sensitivity_rule(found, lookback), band_rule(groups, "-", options),
              band_rule(groups, "+", options)]
    return {"name": BASELINE_GROUP, "rules": rules}


def anomaly_groups(found: list[Watch], lookback: str,
                   options: RuleOptions) -> list[dict[str, object]]:
    """Return the hourly summaries' group and the baselines' group (none without a watch)."""
    groups = [summary_group(found, options), baseline_group(found, lookback, options)]
    return [group for group in groups if group is not None]


# --- annotations -----------------------------------------------------------------------------

# The alert's check as a PromQL label selector, built when the alert fires (%q quotes).
SELECTOR = ("{{ $sel := printf `dq_warehouse=%q,dq_table=%q,dq_check=%q,dq_segment=%q` "
            "$labels.dq_warehouse $labels.dq_table $labels.dq_check $labels.dq_segment }}")


def shown(query: str) -> str:
    """Return a template printing the first result of `query` (or `?` when there is none)."""
    return (f"{{{{ with printf `{query}` $sel | query }}}}"
            '{{ . | first | value | printf "%.6g" }}{{ else }}?{{ end }}')


def anomaly_annotations(metrics: list[str], lookback: str) -> dict[str, str]:
    """Return the summary and description: the value, the band and the z-score ($value)."""
    series = (f"{metrics[0]}{{%s}}" if len(metrics) == 1
              else f"{{__name__=~{quote('|'.join(metrics))},%s}}")
    value = shown(f"max(last_over_time({series}[{lookback}]))")
    low, high = shown(f"{BAND['-']}{{%s}}"), shown(f"{BAND['+']}{{%s}}")
    z = '{{ $value | printf "%.1f" }}'
    return {
        "summary": f"{SELECTOR}{SUBJECT_TEXT} is anomalous: {value}, expected {low} to {high}",
        "description": (f"{SELECTOR}Check {{{{ $labels.dq_check }}}} on table {WHERE_TEXT} "
                        f"measured {value}, {z} standard deviations from the mean of its "
                        f"history; the band learned from it is {low} to {high} "
                        "(docs/alerting.md, \"Learned baselines\")."),
    }


# --- the rules -------------------------------------------------------------------------------

def per_check_rule(watch: Watch, lookback: str, options: RuleOptions) -> dict[str, object]:
    """Return DQAnomaly of one check, its settings copied from the file."""
    return {
        "alert": "DQAnomaly",
        "expr": anomaly_expr(watch, exact(watch), lookback, options),
        "for": duration(options.anomaly_for_s),
        "labels": {"severity": watch.check.severity,
                   "dq_table": template_literal(watch.table.name),
                   "dq_check": template_literal(watch.check.name)},
        "annotations": anomaly_annotations([watch.metric], lookback),
    }


def generic_rule(found: list[Watch], lookback: str, options: RuleOptions) -> dict[str, object]:
    """Return the one DQAnomaly of the generic form: a branch per distinct settings.

    The branches' count grows with the number of distinct settings, not of checks.
    """
    groups = grouped(found, lambda watch: (watch.anomaly, watch.metric, watch.check.severity))
    parts = [f"label_replace(\n{indent(anomaly_expr(group[0], matchers(group), lookback, options))}"
             f',\n  "severity", {quote(severity)}, "", ""\n)'
             for (_, _, severity), group in groups.items()]
    return {
        "alert": "DQAnomaly",
        "expr": "\nor\n".join(parts),
        "for": duration(options.anomaly_for_s),
        "annotations": anomaly_annotations(sorted({w.metric for w in found}), lookback),
    }
