"""Naming modes (issue 13): every dq.* metric's series name under each documented backend
setting (docs/telemetry.md, "Naming modes"), and every rule and dashboard query of the mode
that setting needs reads exactly those names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dqmon.alerts import build_rules, render_rules
from dqmon.alerts.naming import OTEL_METRICS, Naming, label_name, selector, series_name
from dqmon.config import Config, load_config, parse_config
from dqmon.dashboard import build_dashboard, render_dashboard
from dqmon.telemetry.gauges import GAUGES, MONITOR_GAUGES

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [ROOT / "deploy" / "checks.yaml", ROOT / "deploy" / "rules" / "tests" / "anomaly" /
           "checks.yaml"]
UNITS = {g.name: g.unit for g in (*GAUGES, *MONITOR_GAUGES)}
# The suffix Prometheus' OTLP translation appends for a gauge's unit ("{row}" adds none).
SUFFIX = {"s": "seconds", "1": "ratio"}


def classic(name: str) -> str:
    """Underscores, the unit suffix added unless the name already ends with it."""
    suffix = SUFFIX.get(UNITS[name], "")
    escaped = name.replace(".", "_")
    return escaped if not suffix or escaped.endswith(f"_{suffix}") else f"{escaped}_{suffix}"


def kept(name: str) -> str:
    """The OTel name as it is."""
    return name


def doubled(name: str) -> str:
    """The OTel name with its unit suffix appended again (Prometheus 3.2-3.6)."""
    suffix = SUFFIX.get(UNITS[name], "")
    return f"{name}_{suffix}" if suffix else name


# backend and setting -> (the --naming that works, or None, and how it names a metric).
BACKENDS: dict[str, tuple[Naming | None, Callable[[str], str]]] = {
    "Collector prometheus exporter": ("underscore", classic),
    "Collector prometheusremotewrite exporter": ("underscore", classic),
    "Prometheus 2 OTLP receiver": ("underscore", classic),
    "Prometheus 3 OTLP UnderscoreEscapingWithSuffixes (default)": ("underscore", classic),
    "Prometheus 3.0-3.1, 3.7+ OTLP NoUTF8EscapingWithSuffixes": ("utf8", kept),
    "Prometheus 3.2-3.6 OTLP NoUTF8EscapingWithSuffixes": (None, doubled),
    "Prometheus 3 OTLP NoTranslation": ("utf8", kept),
    "Mimir OTLP (default)": ("underscore", classic),
    "Mimir with UTF-8 name validation": ("utf8", kept),
    "Grafana Cloud OTLP endpoint": ("underscore", classic),
    "Alloy otelcol.exporter.prometheus / prometheus.remote_write": ("underscore", classic),
    "VictoriaMetrics OTLP (default)": ("utf8", kept),
    "VictoriaMetrics -opentelemetry.usePrometheusNaming": ("underscore", classic),
}
UNIT_SUFFIXED = {m for m in OTEL_METRICS if SUFFIX.get(UNITS[m])}


def configs() -> Iterator[Config]:
    """Yield the deploy and anomaly configs."""
    for path in CONFIGS:
        yield load_config(path, env={})


def rule_texts(naming: Naming) -> Iterator[str]:
    """Yield every expression and annotation of both rule forms in `naming`."""
    for config in configs():
        for form in ("per-check", "generic"):
            for group in build_rules(config, form=form, naming=naming)["groups"]:
                for rule in group["rules"]:
                    yield rule["expr"]
                    yield from rule.get("annotations", {}).values()


def dashboard_texts(naming: Naming) -> Iterator[str]:
    """Yield every panel query and template variable query of the dashboard in `naming`."""
    for config in configs():
        model: dict[str, Any] = build_dashboard(config, naming=naming)
        for panel in model["panels"]:
            yield from (t["expr"] for t in panel.get("targets", []))
        yield from (v["definition"] for v in model["templating"]["list"] if "definition" in v)


QUOTED = re.compile(r'\{"([^"]+)"(?=\s*[,}])')
NAME_REGEX = re.compile(r'__name__=~"([^"]+)"')
CLAUSE = re.compile(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)")
BRACES = re.compile(r"\{[^{}]*\}")
LABEL_VALUES = re.compile(r'label_values\((.*),\s*"?[\w.]+"?\)')
BARE = re.compile(r"(?<![\w:.$\"])dq[_.][\w.]*(?![\w:])")


def selected(text: str) -> set[str]:
    """Return the metric names `text`'s selectors read (recording rules' `dq:` names aside)."""
    names = set(QUOTED.findall(text))
    names |= {n for regex in NAME_REGEX.findall(text) for n in regex.split("|")}
    text = LABEL_VALUES.sub(r"\1", text)  # Grafana's label_values(query, label)
    stripped = BRACES.sub("", CLAUSE.sub("", text.replace("{{", "").replace("}}", "")))
    stripped = re.sub(r'"[^"]*"|`[^`]*`|\$labels\.\w+', "", stripped)
    return names | set(BARE.findall(stripped))


def used(naming: Naming) -> set[str]:
    """Return every metric name a rule or dashboard query reads in `naming`."""
    return {n for text in (*rule_texts(naming), *dashboard_texts(naming)) for n in selected(text)}


@pytest.mark.parametrize("backend", sorted(b for b, (mode, _) in BACKENDS.items() if mode))
def test_the_documented_mode_reads_what_the_backend_stores(backend: str) -> None:
    """Under the mode documented for a backend, no query names a series the backend lacks
    (the one backend no mode fits: test_doubled_suffixes_break_only_the_unit_suffixed)."""
    naming, name_of = BACKENDS[backend]
    assert naming is not None
    stored = {name_of(m) for m in OTEL_METRICS}
    assert {series_name(m, naming) for m in OTEL_METRICS} == stored
    missing = used(naming) - stored
    assert not missing, f"{backend}: queries read {sorted(missing)}"


def test_every_value_and_check_metric_is_read() -> None:
    """Both modes read every value and check gauge (the monitor's own gauges are unused)."""
    for naming in ("underscore", "utf8"):
        reads = used(naming)  # type: ignore[arg-type]
        unread = {m for m in OTEL_METRICS if series_name(m, naming) not in reads}  # type: ignore[arg-type]
        assert unread == {"dq.monitor.series", "dq.monitor.overflow"}


def test_doubled_suffixes_break_only_the_unit_suffixed() -> None:
    """On Prometheus 3.2-3.6 with NoUTF8EscapingWithSuffixes utf8 mode misses exactly the
    seconds and ratio gauges, as docs/telemetry.md warns."""
    stored = {doubled(m) for m in OTEL_METRICS}
    assert used("utf8") - stored == {series_name(m, "utf8") for m in UNIT_SUFFIXED}
    assert {"dq.freshness_seconds", "dq.completeness_ratio", "dq.validity_ratio",
                             "dq.uniqueness_ratio", "dq.reference_ratio",
                             "dq.check.duration_seconds", "dq.check.last_run_timestamp_seconds"} == UNIT_SUFFIXED


def test_utf8_leaves_no_underscore_name() -> None:
    """No `dq_` metric or label is left in utf8 output, but for synthetic `dq_slot`."""
    text = "\n".join([*rule_texts("utf8"), *dashboard_texts("utf8")])
    left = set(re.findall(r"(?<![\w:])dq_\w+", text)) - {"dq_slot", "dq_table",
                                                                   "dq_segment"}
    assert left == set()
    assert not re.search(r"(\$labels|\.Labels)\.dq", text)
    # $dq_table and $dq_segment are Grafana variables, not labels.
    assert not re.search(r"(?<![\w$])dq_(table|segment)", text)


def test_helpers_name_metrics_labels_and_selectors() -> None:
    """The module maps OTel names to each mode and renders PromQL 3 quoted selectors."""
    assert series_name("dq.check.passed", "underscore") == "dq_check_passed"
    assert series_name("dq.check.passed", "utf8") == "dq.check.passed"
    assert label_name("dq.table", "utf8") == "dq.table"
    assert label_name("dq.table", "underscore") == "dq_table"
    assert selector("dq.completeness_ratio", "utf8", dq_table="orders") == \
        '{"dq.completeness_ratio", "dq.table"="orders"}'
    assert selector("dq.check.up", "utf8") == '{"dq.check.up"}'
    assert selector("dq.check.up", "underscore", dq_table="o") == 'dq_check_up{dq_table="o"}'


def test_underscore_is_the_default_and_unchanged() -> None:
    """Without `naming:` the output is what `naming: underscore` writes, and utf8 differs."""
    for config in configs():
        assert config.naming == "underscore"
        assert render_rules(config) == render_rules(config, naming="underscore")
        assert render_dashboard(config) == render_dashboard(config, naming="underscore")
        assert render_rules(config, naming="utf8") != render_rules(config)


def test_the_file_sets_naming_and_the_argument_overrides_it() -> None:
    """`naming: utf8` in checks.yaml makes utf8 output; an explicit naming wins."""
    text = (ROOT / "deploy" / "checks.yaml").read_text().replace("version: 1",
                                                                  "version: 1\nnaming: utf8")
    config = parse_config(text, "checks.yaml", env={})
    assert config.naming == "utf8"
    base = load_config(CONFIGS[0], env={})
    assert render_rules(config) == render_rules(base, naming="utf8")
    assert render_rules(config, naming="underscore") == render_rules(base)
    assert build_dashboard(config) == build_dashboard(base, naming="utf8")
