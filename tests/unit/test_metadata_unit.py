"""Metadata monitors and discovery without a database: globs, catalog rows, values, config (SPEC 9)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from dqmon.checks import metadata
from dqmon.checks.metadata import Observed, TableMetadata
from dqmon.config import CheckSpec, Config, ConfigError, discovered_table, parse_config
from dqmon.discovery import matches

COLUMNS = {"id": "integer", "amount": "numeric(10,2)", "note": "text"}


def load(text: str) -> Config:
    """Parse a whole checks.yaml text."""
    return parse_config(text, "checks.yaml", env={})


def problems(text: str) -> list[str]:
    """Parse a checks.yaml text that must be refused; return its problems as printed."""
    with pytest.raises(ConfigError) as refused:
        load(text)
    return [str(p) for p in refused.value.problems]


def one_check(url: str, check: str) -> str:
    """Return a checks.yaml text with one warehouse at `url` and one table with one check."""
    return ("version: 1\nwarehouses:\n  main: {url: \"" + url + "\"}\n"
            "tables:\n  - name: t\n    checks:\n      - " + check + "\n")


def spec(check: str) -> CheckSpec:
    """Return the resolved CheckSpec of one check on a PostgreSQL table."""
    (table,) = load(one_check("postgresql://u@db/w", check)).tables
    (found,) = table.checks
    return found


def look(rows: float | None = 10.0, token: str | None = "1", modified_s: float | None = None,
         columns: dict[str, str] | None = None) -> TableMetadata:
    """Return one table's catalog answer."""
    return TableMetadata(rows, token, modified_s, COLUMNS if columns is None else columns)


# --- discovery globs ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "include", "exclude", "expected"), [
    ("orders", ["*"], [], True),
    ("orders", ["ord*"], [], True),
    ("customers", ["ord*"], [], False),
    ("tmp_orders", ["*"], ["tmp_*"], False),
    ("orders_bak", ["*"], ["tmp_*", "*_bak"], False),
    ("orders_bak2", ["*"], ["*_bak"], True),
    ("orders", ["ord*"], ["ord*"], False),  # exclude wins over include
    ("Orders", ["orders"], [], False),  # case-sensitive, whatever the platform
    ("order1", ["order?"], [], True),
    ("order12", ["order?"], [], False),
    ("order_a", ["order_[ab]"], [], True),
    ("orders", [], [], False),  # nothing included, nothing found
])
def test_matches_takes_an_include_glob_and_no_exclude_glob(
        name: str, include: list[str], exclude: list[str], expected: bool) -> None:
    """A table is discovered when one include glob and no exclude glob matches its name."""
    assert matches(name, include, exclude) is expected


def test_discovered_table_is_named_schema_dot_table_with_the_blocks_checks() -> None:
    """A discovered table is an ordinary TableSpec `schema.table` with the block's checks."""
    config = load("version: 1\nwarehouses:\n  main: {url: \"sqlite:///w.db\"}\n"
                  "defaults: {schedule: every 10m, severity: warning}\n"
                  "discover:\n  - schemas: [main]\n"
                  "    checks: [volume: {min: 1}, schema_change: {}]\n")
    (block,) = config.discover
    table = discovered_table(block, "main", "orders")
    assert (table.name, table.warehouse, table.schema, table.table) == (
        "main.orders", "main", "main", "orders")
    assert table.schedule.text == "every 10m"
    assert [(c.table, c.name, c.kind, c.severity, c.metric) for c in table.checks] == [
        ("main.orders", "volume", "volume", "warning", "dq.row_count"),
        ("main.orders", "schema_change", "schema_change", "warning", "dq.schema_changes")]
    assert table.checks[0].threshold.as_dict() == {"min": 1}
    assert table.checks[1].threshold.as_dict() == {"max": 0}


# --- schema_changes, observe, evaluate ---------------------------------------------------------

def test_schema_changes_names_added_removed_and_retyped_columns_sorted() -> None:
    """Columns added, removed and retyped between two looks are listed, each sorted."""
    after = {"id": "bigint", "amount": "numeric(10,2)", "z": "int", "b": "text"}
    assert metadata.schema_changes(COLUMNS, after) == {
        "added": ["b", "z"], "removed": ["note"], "retyped": ["id"]}
    assert metadata.schema_changes(COLUMNS, dict(COLUMNS)) == {
        "added": [], "removed": [], "retyped": []}


def test_observe_moves_the_change_time_only_when_the_token_moves() -> None:
    """The first look and a moved token are changes at `now`; a still token keeps the old time."""
    first = metadata.observe(None, look(token="5"), 100.0)
    assert (first.change_token, first.changed_at_s) == ("5", 100.0)
    still = metadata.observe(first, look(token="5", columns={"id": "integer"}), 160.0)
    assert (still.change_token, still.changed_at_s) == ("5", 100.0)
    assert still.columns == {"id": "integer"}  # the columns always follow the latest look
    moved = metadata.observe(still, look(token="6"), 220.0)
    assert (moved.change_token, moved.changed_at_s) == ("6", 220.0)


def test_volume_is_the_catalogs_row_count_and_errors_without_one() -> None:
    """Volume returns the catalog's count (never below 0); no count or NaN is an error."""
    volume = spec("volume: {min: 1}")
    seen = Observed("1", 0.0, COLUMNS)
    assert metadata.evaluate(volume, look(rows=1234.0), None, seen, 50.0) == 1234.0
    assert metadata.evaluate(volume, look(rows=-1.0), None, seen, 50.0) == 0.0
    for rows in (None, math.nan):
        with pytest.raises(ValueError, match="no row count"):
            metadata.evaluate(volume, look(rows=rows), None, seen, 50.0)


def test_schema_change_counts_changes_since_the_previous_look_and_zero_first() -> None:
    """schema_change is 0 on the first look, then the number of columns that changed."""
    check = spec("schema_change: {}")
    now = look(columns={"id": "bigint", "amount": "numeric(10,2)", "z": "int"})
    seen = Observed("1", 0.0, now.columns)
    assert metadata.evaluate(check, now, None, seen, 10.0) == 0.0
    assert metadata.evaluate(check, now, COLUMNS, seen, 10.0) == 3.0  # z, note, id
    assert metadata.evaluate(check, now, now.columns, seen, 20.0) == 0.0


def test_metadata_freshness_prefers_the_catalogs_time_then_the_observed_change() -> None:
    """Freshness is now minus the catalog's change time, else minus the observed change."""
    check = spec("freshness: {source: metadata, max_age: 1h}")
    seen = Observed("1", 1000.0, COLUMNS)
    assert metadata.evaluate(check, look(modified_s=900.0), None, seen, 1500.0) == 600.0
    assert metadata.evaluate(check, look(modified_s=None), None, seen, 1500.0) == 500.0
    # a change time ahead of dqmon's clock (clock skew) reads as just changed, not negative
    assert metadata.evaluate(check, look(modified_s=2000.0), None, seen, 1500.0) == 0.0


def test_metadata_checks_are_not_scanned_and_scan_freshness_is() -> None:
    """volume, schema_change and metadata freshness skip the scan; column freshness does not."""
    for check in ("volume: {}", "schema_change: {}", "freshness: {source: metadata, max_age: 1h}"):
        assert (spec(check).metadata, spec(check).scanned) == (True, False), check
    scan = spec("freshness: {column: created_at, max_age: 1h}")
    assert (scan.metadata, scan.scanned) == (False, True)


# --- catalog rows ------------------------------------------------------------------------------

def test_parse_rows_reads_counts_times_and_both_column_shapes() -> None:
    """Rows give counts, tokens, UTC change times and columns from JSON text, lists or objects."""
    rows: list[dict[str, object]] = [
        {"table_name": "a", "row_count": 12, "change_token": 7,
         "modified_at": datetime(2026, 1, 1, tzinfo=UTC),
         "columns": '[["id", "INTEGER"], ["note", "text"]]'},
        {"table_name": "b", "row_count": None, "change_token": None, "modified_at": None,
         "columns": [{"column_name": "x", "data_type": "STRING"}]},
        {"table_name": "c", "row_count": "3", "change_token": "3", "modified_at": None,
         "columns": None},
    ]
    parsed = metadata.parse_rows(rows, UTC)
    assert parsed["a"] == TableMetadata(12.0, "7", datetime(2026, 1, 1, tzinfo=UTC).timestamp(),
                                        {"id": "integer", "note": "text"})
    assert parsed["b"] == TableMetadata(None, None, None, {"x": "string"})
    assert parsed["c"] == TableMetadata(3.0, "3", None, {})


@pytest.mark.parametrize(("dialect", "needles"), [
    ("snowflake", ["information_schema.tables", "t.row_count", "t.last_altered",
                   "information_schema.columns", "upper(t.table_schema) = upper('analytics')"]),
    ("bigquery", ["`analytics`.__TABLES__", "t.row_count", "t.last_modified_time",
                  "`analytics`.INFORMATION_SCHEMA.COLUMNS"]),
    ("trino", ["information_schema.columns", "c.table_schema = 'analytics'",
               "group by c.table_name"]),
])
def test_catalog_query_compiles_for_warehouses_without_a_live_server(
        dialect: str, needles: list[str]) -> None:
    """Snowflake, BigQuery and Trino get their documented catalog views, compiled in dialect."""
    query = metadata.catalog_query(dialect, "analytics")
    assert "select" in str(query).lower()
    sa_dialect = sa.engine.make_url(f"{dialect}://").get_dialect()()
    compiled = str(query.compile(dialect=sa_dialect, compile_kwargs={"literal_binds": True}))
    for needle in needles:
        assert needle in compiled, (needle, compiled)
    for name in ("table_name", "change_token", "modified_at", "columns"):
        assert name in compiled


def test_bigquery_dataset_cannot_break_out_of_its_backticks() -> None:
    """A backtick in a BigQuery dataset name is dropped, so the name stays one identifier."""
    text = str(metadata.catalog_query("bigquery", "a`; drop table x; --"))
    assert "`a; drop table x; --`.__TABLES__" in text
    assert text.count("`") == 4


def test_sqlite_query_counts_each_registered_table_with_quoted_names() -> None:
    """SQLite's fallback counts every registered table in the one query, names quoted."""
    text = str(metadata.catalog_query("sqlite", "main", ["orders", 'we"ird', "it's"]))
    assert text.count("count(*)") == 3
    assert 'from "orders"' in text and 'from "we""ird"' in text and "'it''s'" in text
    listing = str(metadata.catalog_query("sqlite", "main", ["orders"], counts=False))
    assert "count(*)" not in listing


# --- config errors -----------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "check", "message"), [
    ("sqlite:///w.db", "freshness: {source: metadata, column: x, max_age: 1d}",
     "checks.yaml:7 tables[0].checks[0].freshness: source: metadata reads the catalog: "
     "drop 'column'"),
    ("sqlite:///w.db", "freshness: {max_age: 1d}",
     "checks.yaml:7 tables[0].checks[0].freshness: give 'column' (or source: metadata)"),
    ("trino://u@trino:8080/hive/sales", "volume: {}",
     "checks.yaml:7 tables[0].checks[0].volume: Trino's catalog holds no row counts: "
     "use row_count"),
    ("trino://u@trino:8080/hive/sales", "freshness: {source: metadata, max_age: 1d}",
     "checks.yaml:7 tables[0].checks[0].freshness: Trino's catalog records no change time"),
    ("sqlite:///w.db", "freshness: {source: metadata, max_age: 1d}",
     "checks.yaml:7 tables[0].checks[0].freshness: SQLite records no change time: "
     "give freshness a column"),
    ("sqlite:///w.db", "volume: {min: 5, max: 1}",
     "checks.yaml:7 tables[0].checks[0].volume: min must not be greater than max"),
])
def test_metadata_checks_a_warehouse_cannot_answer_are_config_errors(
        url: str, check: str, message: str) -> None:
    """Each impossible metadata check is one located config error."""
    assert problems(one_check(url, check)) == [message]


def test_trino_keeps_the_checks_its_catalog_can_answer() -> None:
    """On Trino, schema_change and scan freshness load: only volume and metadata freshness fail."""
    for check in ("schema_change: {}", "freshness: {column: c, max_age: 1d}"):
        (table,) = load(one_check("trino://u@trino:8080/hive/sales", check)).tables
        assert len(table.checks) == 1


def test_a_discover_block_is_checked_like_a_table() -> None:
    """A discover block's impossible check is refused at its own place in the file."""
    text = ("version: 1\nwarehouses:\n  main: {url: \"trino://u@trino:8080/hive/sales\"}\n"
            "discover:\n  - schemas: [sales]\n    checks: [volume: {}]\n")
    assert problems(text) == [
        "checks.yaml:6 discover[0].checks[0].volume: Trino's catalog holds no row counts: "
        "use row_count"]


def test_a_file_with_neither_tables_nor_discover_is_refused() -> None:
    """Something must be watched: no tables and no discover block is a config error."""
    assert problems("version: 1\nwarehouses:\n  main: {url: \"sqlite:///w.db\"}\n") == [
        "checks.yaml:1: list tables, or discover them (tables: or discover:)"]
