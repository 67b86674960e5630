"""The dashboard's statistics and references row and its segment selector (SPEC 8)."""

from __future__ import annotations

import re
from typing import Any

from dqmon.config import parse_config
from dqmon.dashboard import build_dashboard

CONFIG = """
version: 1
warehouses:
  main: {url: "postgresql://x/y"}
tables:
  - name: orders
    table: public.orders
    schedule: every 1m
    segment_by: {column: country, max_segments: 50}
    checks:
      - statistic: {column: amount, stat: avg, min: 10, max: 500}
      - reference: {column: customer_id, to: public.customers.id, min_ratio: 0.99}
      - completeness: {columns: [email], max_ratio: 0.99, min_ratio: 0.9}
  - name: customers
    table: public.customers
    schedule: every 1m
    checks:
      - uniqueness: {columns: [id]}
"""
SEGMENTS = 'dq_segment=~"$dq_segment"'
# Kinds the table's one scan computes per segment, by the title of their panel.
SEGMENTED = {"Freshness", "Row count", "Completeness", "Validity", "Statistics"}


def dashboard(segmented: bool = True) -> dict[str, Any]:
    """Return the dashboard of the test's file, with or without its segment_by."""
    text = CONFIG if segmented else CONFIG.replace(
        "    segment_by: {column: country, max_segments: 50}\n", "")
    return build_dashboard(parse_config(text, "checks.yaml", env={}))


def panel(model: dict[str, Any], title: str) -> dict[str, Any]:
    """Return the one panel called `title`."""
    [found] = [p for p in model["panels"] if p["title"] == title]
    return found


def variables(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the dashboard's template variables by name."""
    return {v["name"]: v for v in model["templating"]["list"]}


def test_statistics_and_references_have_their_own_row() -> None:
    """A row holds the statistic values and the reference ratios, each with both bounds drawn."""
    model = dashboard()
    titles = [p["title"] for p in model["panels"]]
    row = titles.index("Statistics and references")
    assert titles[row + 1:row + 3] == ["Statistics", "Reference integrity"]
    statistics, reference = panel(model, "Statistics"), panel(model, "Reference integrity")
    assert "last_over_time(dq_statistic_value{" in statistics["targets"][0]["expr"]
    assert "last_over_time(dq_reference_ratio{" in reference["targets"][0]["expr"]
    for p in (statistics, reference):
        bounds = [re.search(r'dq_bound="(\w+)"', t["expr"]) for t in p["targets"][1:]]
        assert [b.group(1) for b in bounds if b] == ["min", "max"]
    assert reference["fieldConfig"]["defaults"] == {"unit": "percentunit", "min": 0, "max": 1}


def test_ratio_panels_draw_a_max_ratio_line_too() -> None:
    """Every ratio panel queries dq_bound="max"; a check without max_ratio publishes none."""
    for title in ("Completeness", "Validity", "Uniqueness", "Reference integrity"):
        exprs = [t["expr"] for t in panel(dashboard(), title)["targets"]]
        assert any('dq_bound="max"' in e for e in exprs), title


def test_the_segment_variable_lists_segments_and_all_keeps_the_whole_table() -> None:
    """dq_segment lists the label's values; "All" is `.*`, which also matches no label."""
    segment = variables(dashboard())["dq_segment"]
    assert segment["query"]["query"] == 'label_values(dq_check_up{dq_table=~"$dq_table"}, ' \
                                        "dq_segment)"
    assert segment["includeAll"] is True and segment["multi"] is True
    assert segment["current"] == {"text": "All", "value": "$__all"}
    assert re.fullmatch(segment["allValue"], "")  # PromQL regexes are anchored, like fullmatch
    assert list(variables(dashboard())) == ["datasource", "dq_table", "dq_segment"]


def test_panels_of_segmented_kinds_follow_the_segment_variable() -> None:
    """The value query of each kind the scan segments selects $dq_segment; the others do not."""
    model = dashboard()
    for p in model["panels"]:
        if "dashed: dq_check_threshold" not in p.get("description", ""):  # not a value panel
            continue
        value = p["targets"][0]["expr"]
        assert (SEGMENTS in value) == (p["title"] in SEGMENTED), p["title"]
        assert all(SEGMENTS not in t["expr"] for t in p["targets"][1:]), p["title"]
        assert "{{dq_segment}}" in p["targets"][0]["legendFormat"]
        assert "dq_segment) (last_over_time(" in value


def test_a_segment_status_table_lists_segments_only() -> None:
    """"Check status per segment": min of dq_check_passed per table, check and segment."""
    [target] = panel(dashboard(), "Check status per segment")["targets"]
    assert target["expr"].startswith(
        "min by (dq_table, dq_check, dq_segment) (last_over_time(dq_check_passed{")
    assert f'dq_segment!="",{SEGMENTS}' in target["expr"]
    assert target["format"] == "table" and target["instant"] is True


def test_without_segments_there_is_no_selector_and_no_segment_matcher() -> None:
    """A file without segment_by gets neither the variable, the row nor a $dq_segment matcher."""
    model = dashboard(segmented=False)
    assert "dq_segment" not in variables(model)
    assert "Segments" not in [p["title"] for p in model["panels"]]
    exprs = [t["expr"] for p in model["panels"] for t in p.get("targets", [])]
    assert exprs and not any("$dq_segment" in e for e in exprs)
