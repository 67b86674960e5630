"""Config SQL must be one read-only query or one expression, as a real parser reads it.

SPEC section 6, layer 2. `custom.sql` is exactly one SELECT (or WITH ... SELECT, or a set
operation of SELECTs); `where` and validity `condition` are one expression. sqlglot parses
them in the warehouse's dialect, after ${VAR} expansion; anything it cannot read is refused,
and so are statements and clauses that write, lock or reach outside the database, and the
functions with side effects listed below (docs/security.md explains each list).
"""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect

# sqlglot warns with the SQL text in the message ("... contains unsupported syntax"): config
# SQL may hold anything, so its logger never reaches dqmon's logs (SPEC section 6).
logging.getLogger("sqlglot").setLevel(logging.CRITICAL)

# SQLAlchemy backend name -> sqlglot dialect.
DIALECTS = {
    "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite",
    "duckdb": "duckdb", "snowflake": "snowflake", "bigquery": "bigquery", "trino": "trino",
}

# Nodes that are never part of a read-only query, wherever they appear (a data-modifying
# CTE, SELECT ... INTO, FOR UPDATE / FOR SHARE, a statement sqlglot only knows as a command).
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.DML, exp.DDL, exp.Command, exp.Copy, exp.Set, exp.Pragma, exp.Attach, exp.Detach,
    exp.Use, exp.Transaction, exp.Commit, exp.Rollback, exp.Into, exp.Lock, exp.LoadData,
    exp.Grant, exp.Revoke, exp.Kill, exp.Export, exp.Install, exp.Insert, exp.Update,
    exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Analyze,
    exp.Cache, exp.Uncache, exp.Refresh, exp.Declare, exp.Execute,
)

# Functions with side effects, or that read files, run SQL given as text, or hold locks.
_DENIED: dict[str, frozenset[str]] = {
    "postgres": frozenset({
        "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
        "dblink_open", "dblink_fetch", "set_config", "nextval", "setval", "currval", "lastval",
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
        "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema", "schema_to_xml",
        "database_to_xml", "txid_current", "txid_current_if_assigned", "current_setting",
        "lo_import", "lo_export", "lo_create", "lo_unlink", "lo_put", "lo_from_bytea",
        "lo_open", "lo_write", "lowrite", "loread", "lo_truncate",
        # run SQL given as text, which no parser here reads
        "ts_stat", "ts_rewrite",
        # index maintenance that writes even in a read-only transaction
        "brin_summarize_new_values", "brin_summarize_range", "brin_desummarize_range",
        "gin_clean_pending_list", "setseed",
    }),
    "mysql": frozenset({
        "get_lock", "release_lock", "release_all_locks", "load_file", "benchmark",
        "master_pos_wait", "source_pos_wait", "master_gtid_wait", "wait_for_executed_gtid_set",
        "wait_until_sql_thread_after_gtids", "sys_exec", "sys_eval", "last_insert_id",
        "setval", "nextval", "lastval",
    }),
    "sqlite": frozenset({
        "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile",
        "fsdir", "sqlar_compress", "sqlar_uncompress",
    }),
    "duckdb": frozenset({
        "getenv", "query", "query_table", "glob", "sniff_csv", "duckdb_secrets",
        "which_secret", "load_extension", "set_variable", "getvariable", "parquet_metadata",
        "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata", "current_setting",
        "nextval", "setval", "currval", "checkpoint", "force_checkpoint", "enable_logging",
        "disable_logging", "truncate_duckdb_logs", "enable_profiling", "disable_profiling",
        "setseed",
    }),
}
# Whole families: PostgreSQL's pg_* administration functions (but a few harmless ones),
# DuckDB's file readers (read_csv, read_text, ...) and foreign scanners (*_scan).
_DENIED_PREFIXES = {"postgres": ("pg_", "lo_", "dblink", "http"), "duckdb": ("read_",),
                    "sqlite": ("sqlite_",)}
_DENIED_SUFFIXES = {"duckdb": ("_scan",)}
# Slow is not harmful: statement_timeout and the client-side deadline cut pg_sleep and sleep.
_ALLOWED = frozenset({"pg_typeof", "pg_column_size", "pg_size_pretty", "pg_relation_size",
                      "pg_total_relation_size", "pg_table_size", "pg_sleep", "sqlite_version"})


_EXECUTABLE_COMMENT = re.compile(r"/\*M?!", re.IGNORECASE)
_CLAUSES = {TokenType.SELECT, TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY,
            TokenType.HAVING, TokenType.ORDER_BY, TokenType.QUALIFY, TokenType.LIMIT}


class UnsafeSql(ValueError):
    """Config SQL that dqmon refuses to run; the message says why, never the SQL itself."""


def check_query(sql: str, backend: str) -> None:
    """Accept exactly one read-only query (custom.sql); raise UnsafeSql otherwise."""
    _check_text(sql, backend)
    statements = _parse(sql, backend)
    if len(statements) != 1:
        raise UnsafeSql(f"must be exactly one query (found {len(statements)} statements)")
    query = statements[0]
    if isinstance(query, exp.Subquery):
        query = query.unnest()
    if not isinstance(query, (exp.Select, exp.SetOperation)):
        raise UnsafeSql(f"must be a SELECT query (found {_describe(query)})")
    _check_tree(query, backend)


def check_condition(sql: str, backend: str) -> None:
    """Accept exactly one expression (where, condition); raise UnsafeSql otherwise."""
    _check_text(sql, backend, expression=True)
    dialect = _dialect(backend)
    try:
        tree = sqlglot.parse_one(sql, read=dialect, into=exp.Condition)
    except Exception as exc:  # noqa: BLE001 - sqlglot raises ParseError, TokenError and others
        raise UnsafeSql(f"must be one {dialect or 'SQL'} expression ({_where(exc)})") from None
    if isinstance(tree, (exp.Query, exp.Subquery)) and not isinstance(tree, exp.Paren):
        raise UnsafeSql("must be an expression, not a query")
    _check_tree(tree, backend)


def _parse(sql: str, backend: str) -> list[exp.Expr]:
    dialect = _dialect(backend)
    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except Exception as exc:  # noqa: BLE001 - sqlglot raises ParseError, TokenError and others
        raise UnsafeSql(f"cannot be read as one {dialect or 'SQL'} query ({_where(exc)})") from None
    return [statement for statement in parsed if statement is not None]


def _check_text(sql: str, backend: str, *, expression: bool = False) -> None:
    """Refuse what a tree no longer shows: MySQL `/*! ... */`, a `;`, DuckDB's `FROM 'file'`."""
    dialect = _dialect(backend)
    if dialect in ("mysql", None) and _EXECUTABLE_COMMENT.search(sql):
        raise UnsafeSql("MySQL executable comments (/*! ... */, /*M! ... */) are not allowed: "
                        "the server runs what a parser skips")
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except Exception:  # noqa: BLE001 - the parse that follows says it cannot be read
        return
    if expression and any(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise UnsafeSql("must be one expression (found ';')")
    if dialect in ("duckdb", None) and _string_as_table(tokens):
        raise UnsafeSql("a string as a table (a file or URL DuckDB would read) is not allowed")


def _string_as_table(tokens: list[Token]) -> bool:
    """Tell whether a string literal stands where a FROM or JOIN names a table."""
    clause: list[TokenType] = [TokenType.SELECT]  # the clause open at each paren depth
    previous = TokenType.SELECT
    for token in tokens:
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            clause.append(TokenType.SELECT)
        elif kind == TokenType.R_PAREN and len(clause) > 1:
            clause.pop()
        elif kind in _CLAUSES:
            clause[-1] = kind
        elif kind == TokenType.STRING and (previous in (TokenType.FROM, TokenType.JOIN) or (
                previous == TokenType.COMMA and clause[-1] == TokenType.FROM)):
            return True
        previous = kind
    return False


def _dialect(backend: str) -> str | None:
    """Return sqlglot's dialect for a backend; None (generic SQL) when it is not known yet."""
    return DIALECTS.get(backend, backend) or None


def _check_tree(tree: exp.Expr, backend: str) -> None:
    dialect = _dialect(backend)
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise UnsafeSql(f"{_describe(node)} is not allowed: dqmon only reads")
        if isinstance(node, exp.PropertyEQ) and isinstance(node.this, exp.Parameter):
            raise UnsafeSql("assigning a variable (:=) is not allowed: dqmon only reads")
        if isinstance(node, exp.Func) and _denied(function_name(node, dialect), dialect):
            raise UnsafeSql(f"function {function_name(node, dialect)}() is not allowed "
                            "(it has side effects or reads outside the table)")


def function_name(node: exp.Func, dialect: str | None) -> str:
    """Return a function's name as the dialect spells it, lower case."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _denied(name: str, dialect: str | None) -> bool:
    """Apply the dialect's list; generic SQL (dialect not known yet) gets every list."""
    if name in _ALLOWED:
        return False
    dialects = [dialect] if dialect else list(_DENIED)
    return any(name in _DENIED.get(d, frozenset())
               or name.startswith(_DENIED_PREFIXES.get(d, ()))
               or name.endswith(_DENIED_SUFFIXES.get(d, ())) for d in dialects)


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return f"the statement {str(node.this).upper()}"
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Lock):
        return "FOR UPDATE / FOR SHARE"
    return type(node).__name__.upper()


def _where(exc: Exception) -> str:
    """Say where parsing failed, never what the SQL says there (it may hold anything)."""
    errors = getattr(exc, "errors", None) or [{}]
    line, col = errors[0].get("line"), errors[0].get("col")
    if line is None:
        return "it cannot be tokenized" if "tokeniz" in str(exc) else "it cannot be parsed"
    return f"parse error at line {line}, column {col}"
