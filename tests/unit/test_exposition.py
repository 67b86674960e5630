"""/metrics rendered by dqmon (exposition.py) against the SDK's own Prometheus reader.

The daemon used to serve the SDK's reader; dqmon now renders the same page from its results
registry (issue 9). The parity test feeds both the same results and compares every sample.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections import defaultdict
from collections.abc import Iterator

import opentelemetry.exporter.prometheus as sdk_prometheus
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from dqmon.config import Config, parse_config
from dqmon.results import CheckResult
from dqmon.telemetry import Telemetry, exposition
from dqmon.telemetry.exposition import label_name, label_text, metric_name, wants_openmetrics

CONFIG = """\
version: 1
warehouses:
  main: {url: "sqlite:///unused.db"}
tables:
  - name: orders
    checks:
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 1, max: 100}
      - completeness: {columns: [id]}
      - validity: {name: known, column: status, in: [a, b], severity: warning}
      - uniqueness: {columns: [id, day]}
      - schema: {columns: {id: integer}}
      - custom: {name: late, sql: "select 1", max: 10}
      - schema_change: {}
  - name: 'odd "name"\\with\\nescapes'
    partition: {column: at, granularity: day}
    checks:
      - row_count: {min: 1}
      - volume: {min: 5}
"""
Samples = set[tuple[str, frozenset[tuple[str, str]], float]]


@pytest.fixture(scope="module")
def config() -> Config:
    """The test config, parsed once."""
    return parse_config(CONFIG, env={})


def results(config: Config) -> list[CheckResult]:
    """A pass, a fail, an error without a value, non-finite values and two partitions."""
    out: list[CheckResult] = []
    for n, spec in enumerate(c for t in config.tables for c in t.checks):
        value = [1.0, 150.0, float("inf"), 0.5, None, 3.0, 12.0, 0.0, 7.0, 2.5e20][n]
        status = "error" if value is None else ("pass" if spec.threshold.passes(value) else "fail")
        partition = "2026-12-01" if spec.table.startswith("odd") else None
        out.append(CheckResult(spec, "main", partition, value, status, 0.125, 1.7e9 + n))
        if partition:
            out.append(CheckResult(spec, "main", "2026-12-02", 4.0, "pass", 0.5, 1.8e9))
    return out


def samples(text: str) -> Samples:
    """Every sample of a text page as (name, labels, value); an empty label is no label.

    The SDK's reader gives every sample of a family the union of the family's label names,
    empty where a series lacks one (`dq_rule=""`); Prometheus stores both the same way.
    """
    return {(s.name, frozenset((k, v) for k, v in s.labels.items() if v), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples}


def sdk_reader(registry: CollectorRegistry,
               monkeypatch: pytest.MonkeyPatch) -> PrometheusMetricReader:
    """The SDK's Prometheus reader on a fresh registry, at the dependency floor too.

    `registry=` exists only in recent releases; older ones register on the module's global
    REGISTRY, which the test swaps for its own (the workaround named in the SDK's issue 4713).
    """
    if "registry" in inspect.signature(PrometheusMetricReader).parameters:
        return PrometheusMetricReader(registry=registry)
    monkeypatch.setattr(sdk_prometheus, "REGISTRY", registry)
    return PrometheusMetricReader()


@pytest.fixture
def pages(config: Config, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The SDK reader's page and dqmon's page for the same results."""
    registry = CollectorRegistry(auto_describe=True)
    telemetry = Telemetry(daemon=True, export=False, env={"DQMON_INSTANCE": "parity"},
                          metric_readers=[sdk_reader(registry, monkeypatch)])
    telemetry.record(results(config))
    sdk = generate_latest(registry).decode()
    ours = telemetry.metrics_text()[0].decode()
    telemetry.shutdown()
    yield sdk, ours


def test_dqmon_page_equals_the_sdk_readers_page(pages: tuple[str, str]) -> None:
    """Same families, help texts, labels (escapes included) and values, sample for sample."""
    sdk, ours = pages
    assert samples(ours) == samples(sdk)
    helps = {f.name: (f.documentation, f.type) for f in text_string_to_metric_families(sdk)}
    assert {f.name: (f.documentation, f.type)
            for f in text_string_to_metric_families(ours)} == helps
    assert ours.count("# HELP") == sdk.count("# HELP")


def test_parity_covers_escapes_partitions_and_errors(pages: tuple[str, str]) -> None:
    """The compared page really holds the hard cases (so the parity test can fail)."""
    _, ours = pages
    tables = {dict(labels).get("dq_table") for _, labels, _ in samples(ours)}
    assert 'odd "name"\\with\\nescapes' in tables
    partitions = {dict(labels).get("dq_partition") for _, labels, _ in samples(ours)}
    assert {"2026-12-01", "2026-12-02"} <= partitions
    assert ("dq_check_up", 0.0) in {(name, value) for name, _, value in samples(ours)}
    assert "Inf" not in ours and "NaN" not in ours


SeriesKey = tuple[str, str, str, str, str]


def label_sets(text: str) -> dict[SeriesKey, frozenset[str]]:
    """Map each dq_* series (name, table, check, partition, bound) to its non-empty label names."""
    sets: dict[SeriesKey, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("dq_") and not s.name.startswith("dq_monitor"):
                key = (s.name, *(s.labels.get(k, "") for k in
                                 ("dq_table", "dq_check", "dq_partition", "dq_bound")))
                sets[key].update(k for k, v in s.labels.items() if v)
    return {key: frozenset(names) for key, names in sets.items()}


# The dq.* labels of each check kind's value gauge (SPEC section 3); the dq.check.* gauges
# add dq_severity. Kinds differ, so a page that takes one series' label names for another's
# (opentelemetry-exporter-prometheus 0.48b0-0.51b0: the names of the family's last point)
# puts values under the wrong labels.
KIND_LABELS = {
    "freshness": {"dq_column"}, "row_count": set(), "completeness_id": {"dq_column"},
    "known": {"dq_column", "dq_rule"}, "uniqueness_id_day": {"dq_column"}, "schema": set(),
    "late": set(),
}


def test_every_series_has_its_own_label_set_on_both_pages(pages: tuple[str, str]) -> None:
    """Series of different check kinds keep their own label names, on dqmon's and the SDK's page."""
    sdk, ours = pages
    assert label_sets(sdk) == label_sets(ours)
    base = {"dq_warehouse", "dq_table", "dq_check"}
    for (name, table, check, _, bound), names in label_sets(sdk).items():
        if table != "orders" or check not in KIND_LABELS:
            continue
        dq_names = {n for n in names if n.startswith("dq_")}
        status = {"dq_severity"} | ({"dq_bound"} if bound else set())
        expected = base | KIND_LABELS[check] | (status if name.startswith("dq_check_") else set())
        assert dq_names == expected, (name, check)


def test_openmetrics_when_asked(config: Config) -> None:
    """An OpenMetrics Accept header gets a page an OpenMetrics parser reads to `# EOF`."""
    telemetry = Telemetry(daemon=True, export=False, env={})
    telemetry.record(results(config))
    body, content_type = telemetry.metrics_text("application/openmetrics-text;version=1.0.0,"
                                                "text/plain;q=0.5")
    telemetry.shutdown()
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(body.decode())}
    assert families["target"].type == "info"
    assert body.endswith(b"# EOF\n")


def test_label_text_is_formatted_once_per_check_and_slice(config: Config,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrapes and later runs of a check reuse its label text; a new slice formats its own."""
    calls: list[str] = []
    real = exposition._labels
    monkeypatch.setattr(exposition, "_labels",
                        lambda series, scope: calls.append(series.spec.name) or real(series, scope))
    telemetry = Telemetry(daemon=True, export=False, env={})
    recorded = results(config)
    telemetry.record(recorded)
    for _ in range(3):
        telemetry.metrics_text()
    assert len(calls) == len(recorded)
    telemetry.record([dataclasses.replace(r, started_at_s=r.started_at_s + 60) for r in recorded])
    telemetry.metrics_text()
    assert len(calls) == len(recorded)  # the next run of every check: nothing formatted
    telemetry.record([dataclasses.replace(recorded[0], partition="2026-12-03")])
    body = telemetry.metrics_text()[0].decode()
    telemetry.shutdown()
    assert len(calls) == len(recorded) + 1 and 'dq_partition="2026-12-03"' in body


@pytest.mark.parametrize(("key", "label"), [("dq.table", "dq_table"),
                                            ("service.instance.id", "service_instance_id"),
                                            ("9lives", "key_9lives"), ("a-b/c", "a_b_c")])
def test_label_names(key: str, label: str) -> None:
    """Attribute keys become labels as the SDK's exporter spells them."""
    assert label_name(key) == label


def test_label_values_escape_backslash_quote_and_newline() -> None:
    """The text format's three escapes, and nothing else."""
    assert label_text({"b": 'x"y', "a": "c:\\d\ne"}) == 'a="c:\\\\d\\ne",b="x\\"y"'


def test_metric_names_and_accept_headers() -> None:
    """OTel names lose their dots; only an OpenMetrics media type selects OpenMetrics."""
    assert metric_name("dq.check.last_run_timestamp_seconds") == \
        "dq_check_last_run_timestamp_seconds"
    assert wants_openmetrics("application/openmetrics-text; version=1.0.0")
    assert not wants_openmetrics("text/plain;version=0.0.4, */*;q=0.1")
    assert not wants_openmetrics(None)


def test_a_reload_that_changes_severity_reformats_the_labels(config: Config) -> None:
    """retain() with a new spec drops the kept label text: the page shows the new severity."""
    telemetry = Telemetry(daemon=True, export=False, env={})
    telemetry.record(results(config))
    assert 'dq_check="row_count",dq_severity="critical"' in telemetry.metrics_text()[0].decode()
    warning = parse_config(CONFIG.replace("row_count: {min: 1, max: 100}",
                                          "row_count: {min: 1, max: 100, severity: warning}"),
                           env={})
    telemetry.retain([c for t in warning.tables for c in t.checks])
    body = telemetry.metrics_text()[0].decode()
    telemetry.shutdown()
    assert 'dq_check="row_count",dq_severity="warning"' in body
