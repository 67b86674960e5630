"""OpenLineage dataset namespaces and names per dialect (https://openlineage.io/docs/spec/naming).

Pure: a warehouse URL and a table in, (namespace, name) out; credentials never come out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

def dataset_id(url: URL, schema: str | None, table: str) -> tuple[str, str]:
    """Return a table's OpenLineage dataset (namespace, name) for its warehouse URL."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        database = url.database or url.username or "postgres"
        return _authority("postgres", url, 5432), _join(database, schema or "public", table)
    if backend in ("mysql", "mariadb"):  # MariaDB speaks MySQL's protocol and naming
        return _authority("mysql", url, 3306), _join(schema or url.database, table)
    if backend in ("sqlite", "duckdb"):
        return _file_id(backend, url.database, schema, table)
    return _cloud_id(backend, url, schema, table)


def _cloud_id(backend: str, url: URL, schema: str | None, table: str) -> tuple[str, str]:
    """Snowflake (account), BigQuery (project) and Trino (host:port, catalog) names."""
    first, _, second = (url.database or "").partition("/")
    if backend == "snowflake":
        return f"snowflake://{(url.host or '').lower()}", _join(first, schema or second, table)
    if backend == "bigquery":
        return "bigquery", _join(url.host, schema or first, table)
    if backend == "trino":
        return _authority("trino", url, 8080), _join(first, schema or second, table)
    return f"{backend}://{url.host or 'localhost'}", _join(url.database, schema, table)


def _file_id(backend: str, database: str | None, schema: str | None,
             table: str) -> tuple[str, str]:
    """SQLite and DuckDB: the database file's absolute path, then [catalog.]schema.table.

    The naming spec has no entry for them; DuckDB follows dbt-ol (`duckdb://{path}`, the
    file's stem as catalog), SQLite the same shape without the catalog.
    """
    memory = database in (None, "", ":memory:")
    path = ":memory:" if memory else str(Path(database or "").absolute())
    if backend == "sqlite":
        return f"sqlite://{path}", _join(schema or "main", table)
    catalog = "memory" if memory else Path(path).stem
    return f"duckdb://{path}", _join(catalog, schema or "main", table)


def _authority(scheme: str, url: URL, default_port: int) -> str:
    host = url.host or str(url.query.get("host") or "") or "localhost"
    if host.startswith("/"):  # a Unix socket directory: the server is this host
        host = "localhost"
    return f"{scheme}://{host}:{url.port or default_port}"


def _join(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)
