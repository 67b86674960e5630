"""Per-check rules for SPEC section 8's check kinds and segments (dqmon.alerts): no network."""

from __future__ import annotations

from typing import Any

from dqmon.alerts import Form, build_rules
from dqmon.config import Config, parse_config

CONFIG = """
version: 1
warehouses:
  main: {url: "postgresql://x/y"}
defaults: {schedule: every 1m}
tables:
  - name: orders
    table: public.orders
    segment_by: {column: country}
    checks:
      - statistic: {column: amount, stat: avg, min: 10, max: 500}
      - statistic: {column: email, stat: max_length, max: 254, severity: warning}
      - reference: {column: customer_id, to: public.customers.id, min_ratio: 0.99}
      - completeness: {columns: [email], min_ratio: 0.9, max_ratio: 0.99}
      - validity: {name: no_test, column: status, not_in: [test, dummy], where: "amount > 0"}
      - row_count: {min: 1}
  - name: customers
    table: public.customers
    checks:
      - row_count: {min: 1}
"""

IDENTITY = ("dq_warehouse, dq_table, dq_check, dq_column, dq_rule, dq_stat, dq_partition, "
            "dq_segment")


def config() -> Config:
    """Parse the test's checks.yaml."""
    return parse_config(CONFIG, "checks.yaml", env={})


def rule(table: str, alert: str, check: str | None = None,
         form: Form = "per-check") -> dict[str, Any]:
    """Return the one rule called `alert` (of `table`'s group, for `check` when given)."""
    groups = build_rules(config(), form=form)["groups"]
    rules = [r for g in groups if g["name"] in (f"dqmon.{table}", "dqmon.generic")
             for r in g["rules"]]
    found = [r for r in rules if r["alert"] == alert
             and (check is None or r.get("labels", {}).get("dq_check") == check)]
    assert len(found) == 1, found
    return found[0]


def test_a_statistic_alerts_outside_either_bound_on_its_value_gauge() -> None:
    """DQStatistic: min-aggregated < min OR max-aggregated > max of dq_statistic_value."""
    expr = rule("orders", "DQStatistic", "avg_amount")["expr"]
    low, high = expr.split("\nor\n")
    series = 'last_over_time(dq_statistic_value{dq_table="orders",dq_check="avg_amount"}[5m])'
    assert low == f"min by ({IDENTITY}) (\n  {series}\n) < 10"
    assert high == f"max by ({IDENTITY}) (\n  {series}\n) > 500"


def test_a_statistic_alert_says_which_statistic_and_keeps_its_severity() -> None:
    """The description names the kind as `statistic <dq_stat>`; the check's severity labels it."""
    r = rule("orders", "DQStatistic", "max_length_email")
    assert r["expr"].endswith(") > 254") and "\nor\n" not in r["expr"]
    assert r["labels"] == {"severity": "warning", "dq_table": "orders",
                           "dq_check": "max_length_email"}
    assert "(statistic {{ $labels.dq_stat }}) on table" in r["annotations"]["description"]
    assert "breaks max 254" in r["annotations"]["summary"]


def test_a_reference_alerts_below_its_min_ratio_like_the_other_ratios() -> None:
    """DQReference compares dq_reference_ratio with min_ratio; no max_ratio, no upper bound."""
    r = rule("orders", "DQReference")
    assert r["expr"] == (
        f"min by ({IDENTITY}) (\n  last_over_time(dq_reference_ratio"
        '{dq_table="orders",dq_check="reference_customer_id"}[5m])\n) < 0.99')
    assert '{{ $value | printf "%.4f" }} breaks min 0.99' in r["annotations"]["summary"]


def test_max_ratio_adds_an_upper_bound_only_when_given() -> None:
    """completeness with max_ratio alerts above it too; validity without one only below min."""
    completeness = rule("orders", "DQCompleteness")
    assert completeness["expr"].endswith(") > 0.99")
    assert "breaks min 0.9 and max 0.99" in completeness["annotations"]["summary"]
    validity = rule("orders", "DQValidity")
    assert validity["expr"].endswith(") < 1") and "\nor\n" not in validity["expr"]


def test_every_per_check_alert_keeps_segments_apart() -> None:
    """Each aggregation keeps dq_segment, so a failing segment alerts with its own label."""
    for alert in ("DQStatistic", "DQCompleteness", "DQValidity", "DQRowCount", "DQReference"):
        expr = rule("orders", alert, None if alert != "DQStatistic" else "avg_amount")["expr"]
        assert expr.count(f"by ({IDENTITY}) (") == expr.count(" by (")
    error = rule("orders", "DQCheckError")["expr"]
    assert error.startswith(f"min by ({IDENTITY}, dq_severity) (")


def test_a_table_without_segments_gets_the_same_rules_shape() -> None:
    """Rules do not depend on segment_by: an absent dq_segment is the empty value."""
    orders = rule("orders", "DQRowCount")["expr"]
    customers = rule("customers", "DQRowCount")["expr"]
    assert customers == orders.replace('"orders"', '"customers"')


def test_the_alert_text_names_the_segment_when_there_is_one() -> None:
    """Summary and description add `(segment X)` from dq_segment, nothing without it."""
    annotations = rule("orders", "DQStatistic", "avg_amount")["annotations"]
    segment = "{{ with $labels.dq_segment }} (segment {{ . }}){{ end }}"
    assert annotations["summary"].startswith(
        "{{ $labels.dq_table }}.{{ $labels.dq_check }}" + segment + " failed: ")
    assert f"{{{{ end }}}}{segment} measured" in annotations["description"]


def test_each_segment_row_count_is_compared_with_its_own_average() -> None:
    """DQRowCountAnomaly keeps dq_segment: a segment is never averaged with the whole table."""
    expr = rule("orders", "DQRowCountAnomaly")["expr"]
    assert "avg by (dq_warehouse, dq_table, dq_check, dq_column, dq_rule, dq_stat, dq_segment)" \
        in expr


def test_both_forms_describe_a_statistic_alike() -> None:
    """Up to the bounds (copied per check, or read live), the two forms' texts are equal."""
    per_check = rule("orders", "DQStatistic", "avg_amount")["annotations"]
    generic = rule("orders", "DQStatistic", form="generic")["annotations"]
    for key in ("summary", "description"):
        cut = "breaks " if key == "summary" else "checks.yaml is "
        assert per_check[key].split(cut)[0] == generic[key].split(cut)[0]
