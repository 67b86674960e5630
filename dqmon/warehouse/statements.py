"""Statements compiled once per table and sent as text afterwards (issue 9).

Compiling a table's SQL on every run was a quarter of the daemon's CPU per check, and
SQLAlchemy's own cache (500 entries) never hits when 10,000 tables cycle through it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql.base import Executable

Params = Mapping[str, Any]


@dataclass(frozen=True)
class _Compiled:
    """A statement's text in the connection's dialect and the values it binds."""

    sql: str
    params: dict[str, Any]  # every bound value, by name (per-run values override them)
    positions: tuple[str, ...] | None  # the names in order, for positional paramstyles
    query: Executable | None = None  # set when only SQLAlchemy can run it (type processors)

    def bind(self, params: Params) -> dict[str, Any] | tuple[Any, ...]:
        """Return the driver's parameters: the compiled values, overridden by `params`."""
        values = {**self.params, **params} if params else self.params
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)


class Statement:
    """A query compiled once, on its first run, then sent as text (issue 9: compile per run).

    Per-run values (a partition's bounds) go in by bind parameter name. A query whose types
    need SQLAlchemy's bind or result processing in this dialect keeps running through it.
    """

    def __init__(self, query: sa.Select[Any]) -> None:
        self._query: sa.Select[Any] | None = query
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def text(self, render: Callable[[sa.Select[Any]], str]) -> str:
        """Return the text sent; before the first run, the query as `render` writes it."""
        with self._lock:
            if self._compiled is not None:
                return self._compiled.sql
            assert self._query is not None
            return render(self._query)

    def compiled(self, dialect: Dialect) -> _Compiled:
        """Compile in the connection's own dialect on the first call; reuse it afterwards."""
        with self._lock:
            if self._compiled is None:
                assert self._query is not None
                self._compiled = _compile(self._query, dialect)
                self._query = None  # the text is all later runs need (memory: 10k tables)
            return self._compiled


def _compile(query: sa.Select[Any], dialect: Dialect) -> _Compiled:
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    positions = tuple(compiled.positiontup or ()) if compiled.positional else None
    fallback = query if _needs_processing(query, compiled, dialect) else None
    return _Compiled(compiled.string, dict(compiled.params), positions, fallback)


def _needs_processing(query: sa.Select[Any], compiled: sa.sql.compiler.Compiled,
                      dialect: Dialect) -> bool:
    """Tell whether SQLAlchemy would convert a bound value or a result value in `dialect`."""
    try:
        binds = [b.type.dialect_impl(dialect).bind_processor(dialect)
                 for b in compiled.binds.values()]  # type: ignore[attr-defined]
        results = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                   for c in query.selected_columns]
    except Exception:  # noqa: BLE001 - a processor that needs the driver's type: keep it
        return True
    return any(p is not None for p in binds + results)


def execute(conn: Connection, query: Executable | Statement,
             params: Params) -> CursorResult[Any]:
    """Run a query, or a `Statement`'s compiled text without compiling it again."""
    if not isinstance(query, Statement):
        return conn.execute(query, dict(params)) if params else conn.execute(query)
    compiled = query.compiled(conn.dialect)
    if compiled.query is not None:
        return conn.execute(compiled.query, {**compiled.params, **params})
    return conn.exec_driver_sql(compiled.sql, compiled.bind(params))


class StatementCache:
    """The `Statement`s compiled for each table on one warehouse; a table's go when it goes."""

    def __init__(self) -> None:
        self._owners: dict[int, tuple[weakref.ref[Any], dict[Hashable, Statement]]] = {}
        self._lock = threading.RLock()  # the weakref callback may run inside `get`

    def get(self, owner: object, key: Hashable, build: Callable[[], sa.Select[Any]]) -> Statement:
        """Return `owner`'s statement `key`, building its query on the first call."""
        with self._lock:
            statements = self._statements_of(owner)
            statement = statements.get(key)
            if statement is None:
                statement = statements[key] = Statement(build())
            return statement

    def __len__(self) -> int:
        with self._lock:
            return sum(len(statements) for _ref, statements in self._owners.values())

    def _statements_of(self, owner: object) -> dict[Hashable, Statement]:
        entry = self._owners.get(id(owner))
        if entry is None or entry[0]() is not owner:
            entry = (weakref.ref(owner, functools.partial(self._forget, id(owner))), {})
            self._owners[id(owner)] = entry
        return entry[1]

    def _forget(self, key: int, ref: weakref.ref[Any]) -> None:
        with self._lock:
            entry = self._owners.get(key)
            if entry is not None and entry[0] is ref:
                del self._owners[key]
