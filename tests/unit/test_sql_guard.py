"""The SQL guard: what config SQL the loader accepts, per dialect, read by sqlglot."""

from __future__ import annotations

import pytest

from dqmon.config.sql_guard import UnsafeSql, check_condition, check_query

LIVE = ("postgresql", "mysql", "sqlite", "duckdb")

ACCEPTED_QUERIES = [
    ("postgresql", "select count(*) from orders where shipped_at > promised_at"),
    ("postgresql", "with late as (select * from orders where x > 1) select count(*) from late"),
    ("postgresql", "select count(*) filter (where amount < 0) from orders"),
    ("postgresql", "(select 1)"),
    ("postgresql", "select 1 union all select 2"),
    ("postgresql", "select count(*) from orders, pg_sleep(0)"),
    ("postgresql", "select $x$ a ; b $x$"),
    ("postgresql", "select 1 /* a /* nested */ ; still a comment */"),
    ("mysql", "select count(*) from orders where note regexp '^a;b'"),
    ("sqlite", "select count(*) from orders where datetime(created_at) > datetime('now', '-1 day')"),
    ("duckdb", "select count(*) from orders where amount > 0"),
    ("snowflake", "select count(*) from orders"),
]

REFUSED_QUERIES = [
    # a second statement, however it is hidden
    ("postgresql", "select E'\\''; commit; set session default_transaction_read_only = off; "
                   "commit; drop table victim; select '1'", "found 6 statements"),
    ("postgresql", "select 1 -- comment\r; drop table victim", "found 2 statements"),
    ("postgresql", "select a$ from t; select $b$", "cannot be read"),
    ("mysql", "select 1; drop table victim", "found 2 statements"),
    ("sqlite", "select 1; drop table victim", "found 2 statements"),
    ("duckdb", "select 1; drop table victim", "found 2 statements"),
    # statements that are not a SELECT
    ("postgresql", "copy victim to program 'id'", "COPY"),
    ("postgresql", "explain analyze delete from victim", "EXPLAIN"),
    ("postgresql", "values (1)", "VALUES"),
    ("mysql", "set global read_only = 1", "SET"),
    ("sqlite", "attach '/tmp/x.db' as x", "ATTACH"),
    ("sqlite", "vacuum into '/tmp/x.db'", "VACUUM"),
    ("sqlite", "pragma query_only = 0", "PRAGMA"),
    ("duckdb", "copy victim to '/tmp/x.csv'", "COPY"),
    ("duckdb", "export database '/tmp/x'", "cannot be read"),
    # writes, locks and INTO inside a SELECT
    ("postgresql", "with d as (delete from victim returning 1) select count(*) from d", "DELETE"),
    ("postgresql", "select count(*) from victim for update", "FOR UPDATE"),
    ("postgresql", "select * into copy_of_victim from victim", "INTO"),
    ("mysql", "select 1 into @x", "INTO"),
    ("mysql", "select @x := 1", "assigning"),
    ("mysql", "select * from victim into outfile '/tmp/x'", "cannot be read"),
    # side-effect functions
    ("postgresql", "select pg_read_file('/etc/passwd')::int", "pg_read_file"),
    ("postgresql", "select pg_terminate_backend(pid) from pg_stat_activity", "pg_terminate_backend"),
    ("postgresql", "select pg_advisory_lock(1)", "pg_advisory_lock"),
    ("postgresql", "select set_config('statement_timeout', '0', false)", "set_config"),
    ("postgresql", "select dblink_exec('dbname=x', 'drop table victim')", "dblink_exec"),
    ("postgresql", "select lo_export(1, '/tmp/x')", "lo_export"),
    ("postgresql", "select query_to_xml('drop table victim', true, true, '')", "query_to_xml"),
    ("postgresql", "select nextval('s')", "nextval"),
    ("mysql", "select get_lock('x', 10)", "get_lock"),
    ("mysql", "select load_file('/etc/passwd')", "load_file"),
    ("sqlite", "select load_extension('/tmp/evil')", "load_extension"),
    ("sqlite", "select writefile('/tmp/x', 'y')", "writefile"),
    ("duckdb", "select * from read_text('/proc/self/environ')", "read_text"),
    ("duckdb", "select * from read_csv('/etc/passwd')", "read_csv"),
    ("duckdb", "select * from query('drop table victim')", "query"),
    ("duckdb", "select * from sqlite_scan('/tmp/x.db', 't')", "sqlite_scan"),
]


@pytest.mark.parametrize(("backend", "sql"), ACCEPTED_QUERIES)
def test_read_only_queries_pass(backend: str, sql: str) -> None:
    """Ordinary read-only queries, including comments and strings holding ';', are accepted."""
    check_query(sql, backend)


@pytest.mark.parametrize(("backend", "sql", "reason"), REFUSED_QUERIES,
                         ids=[f"{b}-{r}-{i}" for i, (b, _, r) in enumerate(REFUSED_QUERIES)])
def test_unsafe_queries_are_refused(backend: str, sql: str, reason: str) -> None:
    """Second statements, non-SELECT statements, writes, locks and side effects are refused."""
    with pytest.raises(UnsafeSql) as refused:
        check_query(sql, backend)
    assert reason in str(refused.value)


@pytest.mark.parametrize("backend", LIVE)
@pytest.mark.parametrize("sql", ["status <> 'test'", "amount > 0 and customer_id is not null",
                                 "customer_id in (select id from customers)", "flag"])
def test_expressions_pass(backend: str, sql: str) -> None:
    """One boolean (or boolean-valued) expression is a valid where or condition."""
    check_condition(sql, backend)


@pytest.mark.parametrize("backend", LIVE)
@pytest.mark.parametrize("sql", ["1=1; delete from victim", "1=1) or (1=1",
                                 "1=1 union select 1", "(select 1)", ""])
def test_expressions_that_break_out_are_refused(backend: str, sql: str) -> None:
    """A where that closes its parenthesis, adds a statement or is a query is refused."""
    with pytest.raises(UnsafeSql):
        check_condition(sql, backend)


@pytest.mark.parametrize(("backend", "sql"), [
    ("postgresql", "x in (select pg_advisory_lock(1))"),
    ("postgresql", "pg_terminate_backend(1)"),
    ("mysql", "get_lock('x', 1) = 1"),
    ("sqlite", "load_extension('x') is null"),
    ("duckdb", "x in (select * from read_text('/etc/passwd'))"),
])
def test_expressions_with_side_effects_are_refused(backend: str, sql: str) -> None:
    """A where or condition may not call a denied function, even inside a subquery."""
    with pytest.raises(UnsafeSql):
        check_condition(sql, backend)


def test_a_refusal_never_quotes_the_sql() -> None:
    """The message says where parsing failed, never what the SQL says (it may hold secrets)."""
    with pytest.raises(UnsafeSql) as refused:
        check_query("select 's3cret-token'; drop table x -- ' ", "postgresql")
    assert "s3cret" not in str(refused.value)


def test_unknown_dialect_gets_every_deny_list() -> None:
    """Before a warehouse URL is known, SQL is read as generic SQL with all deny-lists."""
    for sql in ("select get_lock('x', 1)", "select pg_read_file('/x')", "select read_text('/x')"):
        with pytest.raises(UnsafeSql):
            check_query(sql, "")


def test_discover_templates_go_through_the_guard() -> None:
    """Check templates of a discover block are parsed like listed tables' SQL (SPEC 9)."""
    from dqmon.config import ConfigError, parse_config

    text = ("version: 1\nwarehouses:\n  main: {url: 'postgresql+psycopg://dq@db/shop'}\n"
            "discover:\n  - schemas: [public]\n    checks:\n"
            "      - custom: {name: wipe, sql: 'delete from victim', max: 0}\n"
            "      - validity: {name: v, condition: '1=1; drop table victim'}\n")
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "checks.yaml", env={})
    lines = [str(p) for p in refused.value.problems]
    assert lines == [
        "checks.yaml:7 discover[0].checks[0].custom.sql: must be a SELECT query (found DELETE)",
        "checks.yaml:8 discover[0].checks[1].validity.condition: must be one expression "
        "(found ';')"]

