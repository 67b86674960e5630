"""What a valid checks.yaml resolves to: names, thresholds, durations, schedules, variables."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dqmon.config import (
    CheckSpec,
    Config,
    ConfigError,
    TableSpec,
    Threshold,
    default_config_path,
    load_config,
    parse_config,
    parse_duration,
    parse_schedule,
)
from dqmon.config.types import cron_trigger

REPO = Path(__file__).resolve().parents[2]

HEAD = """\
version: 1
warehouses:
  main: {url: "sqlite:///demo/warehouse.db"}
"""


def load(tables: str, head: str = HEAD, env: dict[str, str] | None = None) -> Config:
    """Parse a config made of HEAD plus the given `tables:` section."""
    return parse_config(head + tables, "checks.yaml", env={} if env is None else env)


def only_table(tables: str, **kwargs: object) -> TableSpec:
    """Parse and return the single table."""
    (table,) = load(tables, **kwargs).tables  # type: ignore[arg-type]
    return table


def checks(tables: str) -> dict[str, CheckSpec]:
    """Parse one table and return its checks by name."""
    return {c.name: c for c in only_table(tables).checks}


ALL_KINDS = """\
tables:
  - name: orders
    checks:
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 10}
      - completeness: {columns: [order_id, customer_id]}
      - completeness: {columns: [email], name: email_present, min_ratio: 0.9}
      - validity: {name: amount_positive, condition: "amount > 0"}
      - validity: {name: status_known, column: status, in: [paid, "new"]}
      - uniqueness: {columns: [order_id, line_no]}
      - uniqueness: {columns: [email], min_ratio: 0.5}
      - schema: {columns: {order_id: integer}}
      - custom: {name: late, sql: "select count(*) from orders", max: 10}
"""


def test_default_check_names() -> None:
    """Checks without `name:` get the SPEC default names, one completeness check per column."""
    assert [c.name for c in only_table(ALL_KINDS).checks] == [
        "freshness", "row_count", "completeness_order_id", "completeness_customer_id",
        "email_present", "amount_positive", "status_known", "uniqueness_order_id_line_no",
        "uniqueness_email", "schema", "late",
    ]


def test_default_thresholds_count_as_configured() -> None:
    """Ratios default to min 1.0, schema to max 0, freshness to max = max_age in seconds."""
    by_name = checks(ALL_KINDS)
    assert {name: c.threshold for name, c in by_name.items()} == {
        "freshness": Threshold(max=7200.0),
        "row_count": Threshold(min=10),
        "completeness_order_id": Threshold(min=1.0),
        "completeness_customer_id": Threshold(min=1.0),
        "email_present": Threshold(min=0.9),
        "amount_positive": Threshold(min=1.0),
        "status_known": Threshold(min=1.0),
        "uniqueness_order_id_line_no": Threshold(min=1.0),
        "uniqueness_email": Threshold(min=0.5),
        "schema": Threshold(max=0),
        "late": Threshold(max=10),
    }
    assert by_name["schema"].threshold.as_dict() == {"max": 0}
    assert by_name["completeness_order_id"].threshold.as_dict() == {"min": 1.0}


def test_kinds_metrics_and_columns() -> None:
    """Each check keeps its kind, OTel metric name and the dq.column value SPEC section 3 asks."""
    got = {name: (c.kind, c.metric, c.column_attribute, c.rule)
           for name, c in checks(ALL_KINDS).items()}
    assert got == {
        "freshness": ("freshness", "dq.freshness_seconds", "created_at", None),
        "row_count": ("row_count", "dq.row_count", None, None),
        "completeness_order_id": ("completeness", "dq.completeness_ratio", "order_id", None),
        "completeness_customer_id": ("completeness", "dq.completeness_ratio", "customer_id", None),
        "email_present": ("completeness", "dq.completeness_ratio", "email", None),
        "amount_positive": ("validity", "dq.validity_ratio", None, "amount_positive"),
        "status_known": ("validity", "dq.validity_ratio", "status", "status_known"),
        "uniqueness_order_id_line_no": ("uniqueness", "dq.uniqueness_ratio", "order_id,line_no",
                                        None),
        "uniqueness_email": ("uniqueness", "dq.uniqueness_ratio", "email", None),
        "schema": ("schema", "dq.schema_mismatches", None, None),
        "late": ("custom", "dq.custom_value", None, None),
    }


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), (30, 30.0), ("30", 30.0),
    ("1.5h", 5400.0), (" 2 h ", 7200.0), (0, 0.0), (2.5, 2.5),
])
def test_durations(text: object, seconds: float) -> None:
    """Durations take s, m, h, d suffixes or a bare number of seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("2x", "'2x' is not a duration (use 90s, 15m, 2h, 1d or a number of seconds)"),
    ("-5m", "must not be negative"),
    (-1, "must not be negative"),
    (True, "must be a duration (use 90s, 15m, 2h, 1d or a number of seconds)"),
    (None, "must be a duration (use 90s, 15m, 2h, 1d or a number of seconds)"),
])
def test_bad_durations(text: object, message: str) -> None:
    """A duration that is not one says why in words."""
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_durations_in_the_file_are_seconds() -> None:
    """statement_timeout and max_age are stored in seconds."""
    config = load("tables:\n  - name: t\n    checks:\n      - freshness: {column: c, max_age: 15m}\n",
                  head=HEAD.replace('"}', '", statement_timeout: 90s}'))
    assert config.warehouses["main"].statement_timeout == 90.0
    assert config.tables[0].checks[0].threshold == Threshold(max=900.0)


@pytest.mark.parametrize(("text", "period_s"), [
    ("every 5m", 300.0),
    ("every 90", 90.0),
    ("*/10 * * * *", 600.0),
    ("0 * * * *", 3600.0),
    ("*/10 9-17 * * 1-5", (2 * 24 + 15) * 3600.0 + 10 * 60),  # Fri 17:50 -> Mon 09:00
    ("0 12 * * 0", 7 * 86400.0),
    ("0 0 29 2 *", (365 * 3 + 366) * 86400.0),  # 2028-02-29 -> 2032-02-29
    ("* * * * 1-5", 2 * 86400.0 + 60),  # Fri 23:59 -> Mon 00:00, beyond 5,000 fires
    ("30 4 * 2 1", 343 * 86400.0),  # the last Monday of February -> the first one next year
    ("0 9,17 * * *", 16 * 3600.0),
])
def test_schedule_periods(text: str, period_s: float) -> None:
    """A schedule's period is its interval, or a cron string's longest gap between runs."""
    assert parse_schedule(text).period_s() == period_s


def fires(cron: str, start: datetime, count: int) -> list[str]:
    """Return the first `count` fire times of `cron` after `start`, as 'Mon 09:00' strings."""
    trigger, out, fire = cron_trigger(cron), [], None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(fire, now)
        out.append(fire.strftime("%a %d %H:%M"))
        now = fire + timedelta(seconds=1)
    return out


SATURDAY = datetime(2026, 1, 3, tzinfo=UTC)


def test_cron_weekdays_count_from_sunday() -> None:
    """Cron day-of-week 1-5 is Monday to Friday and 0 and 7 are Sunday, as in crontab(5)."""
    assert fires("0 9 * * 1-5", SATURDAY, 3) == ["Mon 05 09:00", "Tue 06 09:00", "Wed 07 09:00"]
    assert fires("0 9 * * 7", SATURDAY, 2) == ["Sun 04 09:00", "Sun 11 09:00"]
    assert fires("0 9 * * sat,0", SATURDAY, 3) == ["Sat 03 09:00", "Sun 04 09:00", "Sat 10 09:00"]


def test_cron_day_of_month_or_weekday() -> None:
    """When both day fields are restricted either one matching fires the job, as in crontab(5)."""
    assert fires("0 0 13 * 5", SATURDAY, 3) == ["Fri 09 00:00", "Tue 13 00:00", "Fri 16 00:00"]


@pytest.mark.parametrize(("text", "message"), [
    ("61 * * * *", "invalid cron string '61 * * * *': minute '61': the last value (61) is "
                   "higher than the maximum value (59)"),
    ("*/5 * * *", "'*/5 * * *' is neither 'every <duration>' nor a 5-field cron string"),
    ("0 0 * * 8", "invalid cron string '0 0 * * 8': day of week '8': use 0-7 (0 and 7 are "
                  "Sunday) or sun-sat"),
    ("0 0 31 2 *", "the cron string '0 0 31 2 *' never fires"),
    ("every 0s", "the interval must be positive"),
    ("every -5m", "'every -5m' is not 'every <duration>' (use 90s, 15m, 2h, 1d or a number "
                  "of seconds)"),
])
def test_bad_schedules(text: str, message: str) -> None:
    """An invalid schedule says what is wrong with it."""
    with pytest.raises(ValueError) as caught:
        parse_schedule(text)
    assert str(caught.value) == message


def test_schedule_inheritance() -> None:
    """A table without `schedule:` runs on the defaults' schedule (every 5m when unset)."""
    tables = ("tables:\n  - {name: a, schedule: '*/10 * * * *', checks: [row_count: {}]}\n"
              "  - {name: b, checks: [row_count: {}]}\n")
    assert [str(t.schedule) for t in load(tables).tables] == ["*/10 * * * *", "every 5m"]
    with_defaults = HEAD + "defaults: {schedule: every 1h}\n"
    assert [t.schedule.period_s() for t in load(tables, head=with_defaults).tables] == \
        [600.0, 3600.0]


VARIABLES = """\
# ${NOPE} in a comment is never read
version: 1
warehouses:
  main:
    url: ${DQ_URL}
    statement_timeout: ${DQ_TIMEOUT:-45s}
    max_connections: ${DQ_CONNECTIONS:-2}
tables:
  - name: ${DQ_TABLE:-orders}_${DQ_SUFFIX}  # ${NOPE} here neither
    where: "region = '${DQ_REGION:-eu}'"
    checks:
      - validity: {name: known, column: c, in: ["${DQ_A}", b]}
"""


def test_variables_expand_in_values_only() -> None:
    """${VAR} and ${VAR:-default} are read from the environment in values, not in comments."""
    env = {"DQ_URL": "postgresql+psycopg://dq@db/shop", "DQ_CONNECTIONS": "8",
           "DQ_SUFFIX": "v2", "DQ_REGION": "", "DQ_A": "a"}
    config = parse_config(VARIABLES, "checks.yaml", env=env)
    warehouse, (table,) = config.warehouses["main"], config.tables
    assert (warehouse.url, warehouse.statement_timeout, warehouse.max_connections) == \
        ("postgresql+psycopg://dq@db/shop", 45.0, 8)
    assert (table.name, table.where) == ("orders_v2", "region = 'eu'")
    assert table.checks[0].params.in_ == ["a", "b"]  # type: ignore[union-attr]


def test_variable_set_to_empty_is_used_without_a_default() -> None:
    """`${VAR}` set to "" expands to "" while `${VAR:-x}` falls back to x, as in the shell."""
    tables = "tables:\n  - name: t\n    where: \"a = '${E}' and b = '${E:-x}'\"\n" \
             "    checks: [row_count: {}]\n"
    assert only_table(tables, env={"E": ""}).where == "a = '' and b = 'x'"


def test_unset_variable_names_the_variable() -> None:
    """An unset ${VAR} without a default is a located error naming it, and nothing else."""
    with pytest.raises(ConfigError) as caught:
        parse_config(VARIABLES, "checks.yaml", env={"DQ_SUFFIX": "x", "DQ_A": "a"})
    assert [str(p) for p in caught.value.problems] == [
        "checks.yaml:5 warehouses.main.url: environment variable DQ_URL is not set "
        "(set it, or write ${DQ_URL:-default})"]


def test_severity_inheritance() -> None:
    """Severity comes from the check, else its table, else defaults, else critical."""
    tables = """\
tables:
  - name: a
    checks:
      - row_count: {}
      - freshness: {column: c, max_age: 1h, severity: critical}
  - name: b
    severity: critical
    checks:
      - row_count: {}
      - freshness: {column: c, max_age: 1h, severity: warning}
"""
    severities = [(t.name, c.name, c.severity)
                  for t in load(tables, head=HEAD + "defaults: {severity: warning}\n").tables
                  for c in t.checks]
    assert severities == [("a", "row_count", "warning"), ("a", "freshness", "critical"),
                          ("b", "row_count", "critical"), ("b", "freshness", "warning")]
    assert {c.severity for t in load(tables).tables for c in t.checks if t.name == "a"} == \
        {"critical"}


@pytest.mark.parametrize(("line", "schema", "table"), [
    ("table: public.orders", "public", "orders"),
    ("table: raw.sales.orders", "raw.sales", "orders"),
    ("table: orders_v2", None, "orders_v2"),
    ("where: 'x > 0'", None, "orders"),
])
def test_table_names_split_schema(line: str, schema: str | None, table: str) -> None:
    """`table: schema.table` splits at the last dot; without `table:` the name is used."""
    spec = only_table(f"tables:\n  - name: orders\n    {line}\n    checks: [row_count: {{}}]\n")
    assert (spec.name, spec.schema, spec.table) == ("orders", schema, table)


def test_warehouse_is_optional_with_one_warehouse() -> None:
    """With exactly one warehouse a table may omit `warehouse:`."""
    spec = only_table("tables:\n  - name: t\n    checks: [row_count: {}]\n")
    assert spec.warehouse == "main"


def test_warehouse_is_chosen_by_name_among_several() -> None:
    """With several warehouses each table names its own."""
    head = HEAD + '  replica: {url: "sqlite:///demo/replica.db"}\n'
    tables = ("tables:\n  - {name: a, warehouse: replica, checks: [row_count: {}]}\n"
              "  - {name: b, warehouse: main, checks: [row_count: {}]}\n")
    assert [t.warehouse for t in load(tables, head=head).tables] == ["replica", "main"]


def test_warehouse_defaults() -> None:
    """A warehouse without settings gets statement_timeout 60 s, max_connections 4, UTC."""
    warehouse = load("tables:\n  - name: t\n    checks: [row_count: {}]\n").warehouses["main"]
    assert (warehouse.statement_timeout, warehouse.max_connections, warehouse.timezone) == \
        (60.0, 4, None)


def test_single_statement_rule_ignores_quoted_semicolons() -> None:
    """A ';' inside a string literal or comment, or one trailing ';', is still one statement."""
    tables = """\
tables:
  - name: t
    where: "note <> 'a;b' -- c;d"
    checks:
      - custom: {name: c, sql: "select count(*) from t where x = 'y;z';", max: 1}
"""
    assert only_table(tables).where == "note <> 'a;b' -- c;d"


def test_yaml_anchors_and_merge_keys() -> None:
    """YAML anchors and `<<:` merges work, and a mapping's own keys win over merged ones."""
    tables = """\
x-common: &common {warehouse: main, schedule: every 1h, severity: warning}
tables:
  - <<: *common
    name: a
    severity: critical
    checks: [row_count: {}]
"""
    with pytest.raises(ConfigError) as caught:  # x-common itself is an unknown key
        load(tables)
    assert [p.path for p in caught.value.problems] == ["x-common"]
    spec = only_table(tables.replace("x-common: &common", "defaults: &common")
                      .replace("warehouse: main, ", ""))
    assert (spec.schedule.period_s(), spec.checks[0].severity) == (3600.0, "critical")


def test_keys_are_read_as_written() -> None:
    """A key like `on:` is the word "on" (not YAML 1.1's True), so it is reported by name."""
    with pytest.raises(ConfigError) as caught:
        load("on: 1\ntables:\n  - name: t\n    checks: [row_count: {}]\n")
    assert str(caught.value).startswith("checks.yaml:4 on: unknown key 'on'")


def test_config_is_frozen() -> None:
    """A loaded config cannot be changed by the code that runs it."""
    config = load("tables:\n  - name: t\n    checks: [row_count: {}]\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tables[0].name = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        config.warehouses["main"].max_connections = 9  # type: ignore[misc]


def test_repo_checks_yaml_loads() -> None:
    """The repository's example checks.yaml loads with its 16 checks."""
    config = load_config(REPO / "checks.yaml", env={})
    assert [(t.name, [c.name for c in t.checks]) for t in config.tables] == [
        ("orders", ["freshness", "row_count", "completeness_order_id",
                    "completeness_customer_id", "completeness_amount", "amount_positive",
                    "status_known", "email_format", "amount_range", "uniqueness_order_id",
                    "schema", "late_shipments"]),
        ("customers", ["freshness", "row_count", "completeness_country",
                       "uniqueness_customer_id"]),
    ]
    assert sum(len(t.checks) for t in config.tables) == 16
    assert config.warehouses["main"].url == "sqlite:///demo/warehouse.db"


def test_default_config_path() -> None:
    """--config defaults to $DQMON_CONFIG, then ./checks.yaml."""
    assert default_config_path({"DQMON_CONFIG": "/etc/dq.yaml"}) == "/etc/dq.yaml"
    assert default_config_path({}) == "checks.yaml"
