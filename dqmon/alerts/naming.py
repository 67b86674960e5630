"""How dqmon's OTel metric and attribute names read as Prometheus series and labels (issue 13).

`underscore`: the classic translation (a Collector's prometheus or prometheusremotewrite
exporter, Prometheus' OTLP receiver with `UnderscoreEscapingWithSuffixes`): dots become
underscores; the unit words are already in dqmon's names, so no suffix is added.
`utf8`: backends that keep OTel names (`dq.completeness_ratio`, label `dq.table`), read with
PromQL 3 quoted names: `{"dq.completeness_ratio", "dq.table"="orders"}`.

The rules and the dashboard are built with underscore names; `translate` rewrites exactly the
names below (nothing else, recording rules' own `dq:` names included) into the chosen mode, so
underscore output is what it always was and utf8 output differs only in names.
docs/telemetry.md, "Naming modes", says which backend setting needs which mode.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from dqmon.alerts.common import selector as underscore_selector
from dqmon.config import CHECK_METRICS, METRICS
from dqmon.config.resolved import MONITOR_METRICS

Naming = Literal["underscore", "utf8"]

# Every dq.* gauge and every dq.* attribute that reaches Prometheus as a label (SPEC 3).
OTEL_METRICS = tuple(sorted({*METRICS.values(), *CHECK_METRICS.values(),
                             *MONITOR_METRICS.values()}))
OTEL_LABELS = ("dq.warehouse", "dq.table", "dq.check", "dq.column", "dq.rule", "dq.stat",
               "dq.partition", "dq.segment", "dq.severity", "dq.source", "dq.bound",
               "dq.metric")


def underscore(otel_name: str) -> str:
    """Return the classic Prometheus spelling of a dq.* name (dots become underscores)."""
    return otel_name.replace(".", "_")


def series_name(otel_name: str, naming: Naming) -> str:
    """Return the series name of a dq.* metric under `naming`."""
    return underscore(otel_name) if naming == "underscore" else otel_name


def label_name(otel_key: str, naming: Naming) -> str:
    """Return the label name of a dq.* attribute under `naming`."""
    return underscore(otel_key) if naming == "underscore" else otel_key


def selector(otel_name: str, naming: Naming, **matchers: str) -> str:
    """Return a selector of one metric; `matchers` are keyed by underscore label names."""
    return translate(underscore_selector(underscore(otel_name), **matchers), naming)


_METRIC = {underscore(name): name for name in OTEL_METRICS}
_LABEL = {underscore(key): key for key in OTEL_LABELS}
# A `$labels.x` (or a query result's `.Labels.x`) template reference, a quoted string of
# names (`"dq_severity"` in label_replace, `"a|b"` in a __name__ regex), or a bare name not
# part of a longer one (a metric takes the braces after it: `m{a="b"}` -> `{"m", a="b"}`).
_TOKEN = re.compile(r'(?P<owner>\$labels|\.Labels)\.(?P<ref>dq_\w+)|"(?P<quoted>dq_[\w|]+)"'
                    r'|(?<![\w:.$"])(?P<bare>dq_\w+)(?![\w:])(?P<brace>\{\}?)?')


def _quoted(name: str) -> str:
    return f'"{name}"'


def _bare(match: re.Match[str]) -> str:
    name, brace = match["bare"], match["brace"] or ""
    if name in _METRIC:
        return f"{{{_quoted(_METRIC[name])}{', ' if brace == '{' else '}'}"
    if name in _LABEL:
        return _quoted(_LABEL[name]) + brace
    return match[0]


def _utf8(match: re.Match[str]) -> str:
    if match["ref"] is not None:
        key = _LABEL.get(match["ref"])
        return f"(index {match['owner']} {_quoted(key)})" if key else match[0]
    if match["quoted"] is not None:
        parts = match["quoted"].split("|")
        names = [_METRIC.get(p) or _LABEL.get(p) for p in parts]
        return _quoted("|".join(n or p for n, p in zip(names, parts, strict=True)))
    return _bare(match)


def translate(text: str, naming: Naming) -> str:
    """Rewrite underscore dq.* names in PromQL or an alert template into `naming`."""
    return text if naming == "underscore" else _TOKEN.sub(_utf8, text)


def translate_label(name: str, naming: Naming) -> str:
    """Return a label name (an alert's static label, a legend key) under `naming`."""
    return _LABEL[name] if naming == "utf8" and name in _LABEL else name


def translate_legend(legend: str, naming: Naming) -> str:
    """Rewrite Grafana legend references `{{dq_table}}` into `naming` (`{{dq.table}}`)."""
    if naming == "underscore":
        return legend
    return re.sub(r"\{\{(dq_\w+)\}\}", lambda m: f"{{{{{translate_label(m[1], naming)}}}}}",
                  legend)


def translate_rule(rule: dict[str, Any], naming: Naming) -> dict[str, Any]:
    """Return one alerting or recording rule with its expression, labels and templates in
    `naming` (a recording rule's own `dq:` name stays as it is)."""
    out = dict(rule)
    out["expr"] = translate(rule["expr"], naming)
    if "labels" in rule:
        out["labels"] = {translate_label(k, naming): translate(v, naming)
                         for k, v in rule["labels"].items()}
    if "annotations" in rule:
        out["annotations"] = {k: translate(v, naming) for k, v in rule["annotations"].items()}
    return out


def translate_rules(rule_file: dict[str, Any], naming: Naming) -> dict[str, Any]:
    """Return a whole rule file (`groups: [...]`) in `naming`."""
    if naming == "underscore":
        return rule_file
    return {"groups": [{**group, "rules": [translate_rule(r, naming) for r in group["rules"]]}
                       for group in rule_file["groups"]]}
