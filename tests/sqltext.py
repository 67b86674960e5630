"""Queries compiled without a database, in every dialect dqmon writes SQL for (unit tests)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DIALECTS = {
    "postgresql": "postgresql+psycopg://u@h/db",
    "sqlite": "sqlite://",
    "mysql": "mysql+pymysql://u@h/db",
    "duckdb": "duckdb:///:memory:",
    "snowflake": "snowflake://u@account/db",
    "bigquery": "bigquery://project/dataset",
    "trino": "trino://u@h:8080/catalog",
}


def make_dialect(name: str) -> sa.engine.Dialect:
    """Return the SQLAlchemy dialect of DIALECTS[name]; skip when its package is missing."""
    try:
        return make_url(DIALECTS[name]).get_dialect()()
    except (ImportError, sa.exc.NoSuchModuleError):
        pytest.skip(f"the {name} dialect package is not installed")


def sql_text(query: sa.Select[object], dialect: sa.engine.Dialect, literal: bool = True) -> str:
    """Return `query` as `dialect` writes it (its values inline when `literal`)."""
    kwargs = {"literal_binds": literal, "render_postcompile": True}
    return str(query.compile(dialect=dialect, compile_kwargs=kwargs))
