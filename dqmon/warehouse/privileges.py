"""What the connected role may do: refuse dangerous roles, warn about writable ones.

SPEC section 6, layer 1. One catalog query per warehouse, on its first connection. Membership
counts, not only inherited privileges: a NOINHERIT member can still SET ROLE into the role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_POSTGRES = sa.text("""
select r.rolname as role,
       r.rolsuper as superuser,
       r.rolreplication as replication,
       pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') as execute_program,
       pg_has_role(current_user, 'pg_write_server_files', 'MEMBER') as write_files,
       pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') as read_files,
       exists (select 1 from pg_catalog.pg_class c
               join pg_catalog.pg_namespace n on n.oid = c.relnamespace
               where c.relkind in ('r', 'p')
                 and n.nspname not in ('pg_catalog', 'information_schema')
                 and n.nspname not like 'pg\\_toast%'
                 and has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
         as can_write
from pg_catalog.pg_roles r where r.rolname = current_user
""")
_POSTGRES_DANGERS = {
    "superuser": "superuser (rolsuper)",
    "replication": "replication (rolreplication)",
    "execute_program": "pg_execute_server_program (runs programs on the server)",
    "write_files": "pg_write_server_files (writes files on the server)",
    "read_files": "pg_read_server_files (reads files on the server)",
}

# SHOW GRANTS lists the user's own grants and those of its enabled roles (information_schema
# shows a user only its own rows, so a privilege held through a role would be missed).
_GRANT = re.compile(r"^GRANT (.+?) ON ", re.IGNORECASE)
_MYSQL_DANGERS = ("SUPER", "FILE", "PROCESS", "CONNECTION ADMIN", "CONNECTION_ADMIN", "RELOAD",
                  "SHUTDOWN", "SYSTEM_VARIABLES_ADMIN")
_MYSQL_WRITES = {"INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "INDEX",
                 "CREATE VIEW", "TRIGGER", "DELETE HISTORY"}


@dataclass(frozen=True)
class RoleReport:
    """The connected role's dangerous privileges, and whether it can write to tables."""

    role: str
    dangers: tuple[str, ...] = ()
    can_write: bool = False


def probe(conn: Connection, backend: str) -> RoleReport:
    """Ask the catalog what the connected role may do."""
    if backend == "postgresql":
        return _postgres(conn)
    if backend in ("mysql", "mariadb"):
        return _mysql(conn)
    return RoleReport(role="")  # SQLite and DuckDB have no roles: file permissions guard them


def _postgres(conn: Connection) -> RoleReport:
    row = conn.execute(_POSTGRES).mappings().one()
    dangers = tuple(text for key, text in _POSTGRES_DANGERS.items() if row[key])
    return RoleReport(str(row["role"]), dangers, bool(row["can_write"]))


def _mysql(conn: Connection) -> RoleReport:
    role = str(conn.execute(sa.text("select current_user()")).scalar_one())
    grants: list[object] = list(conn.execute(sa.text("show grants")).scalars())
    granted = {p for line in grants for p in _privileges(str(line))}
    if "ALL PRIVILEGES" in granted or "ALL" in granted:
        granted |= {*_MYSQL_DANGERS, *_MYSQL_WRITES}
    dangers = tuple(p for p in _MYSQL_DANGERS if p in granted)
    return RoleReport(role, dangers, bool(granted & _MYSQL_WRITES))


def _privileges(grant: str) -> set[str]:
    """Return the privileges of one `GRANT ... ON ... TO ...` line (column lists dropped)."""
    match = _GRANT.match(str(grant))
    if match is None:
        return set()  # a role grant (`GRANT role TO user`) or a default-role line
    names = re.sub(r"\([^)]*\)", "", match.group(1))
    return {name.strip().upper() for name in names.split(",") if name.strip()}


def refusal(report: RoleReport, warehouse: str) -> str:
    """Say why dqmon will not connect as this role, and how to opt in."""
    return (f"refusing to run as role {report.role!r} on warehouse {warehouse}: it has "
            f"{', '.join(report.dangers)}; connect as a least-privilege role "
            "(docs/security.md) or set allow_privileged_role: true")
