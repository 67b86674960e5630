"""Warehouse URLs: which drivers and query parameters dqmon accepts, and what in them is secret.

A leaf module (SQLAlchemy's URL type only), so that the config models can validate a URL
without importing the warehouse code (SPEC section 6: URL parameters are allow-listed per
driver, so a URL can never switch off the read-only session).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy.engine import URL, make_url

# Live dialects: dqmon enforces read-only sessions on these (tested against real engines).
LIVE = {
    "postgresql": "psycopg",  # the extended protocol refuses a second statement
    "mysql": "pymysql",       # no multi-statement flag unless asked: the allow-list forbids it
    "mariadb": "pymysql",
    "sqlite": "pysqlite",
    "duckdb": "duckdb_engine",
}
# Compiled only: dqmon cannot vouch for their sessions (see allow_privileged_role).
COMPILED = ("snowflake", "bigquery", "trino")

# Query parameters each live driver may receive; anything else is refused at load time.
ALLOWED_PARAMS: dict[str, frozenset[str]] = {
    "postgresql": frozenset({
        "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "sslsni",
        "sslnegotiation", "channel_binding", "gssencmode", "krbsrvname", "target_session_attrs",
        "connect_timeout", "host", "port", "password", "application_name",
    }),
    "mysql": frozenset({
        "charset", "ssl_ca", "ssl_cert", "ssl_key", "ssl_check_hostname", "ssl_verify_cert",
        "ssl_verify_identity", "ssl_disabled", "read_timeout", "write_timeout",
        "connect_timeout", "unix_socket", "password", "passwd",
    }),
    "sqlite": frozenset({"timeout"}),
    "duckdb": frozenset({"threads", "memory_limit"}),
}
ALLOWED_PARAMS["mariadb"] = ALLOWED_PARAMS["mysql"]

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # md:, s3://, http://, hf://, motherduck:
_CREDENTIAL_WORDS = ("pass", "pwd", "secret", "token", "key", "credential", "auth")


def parse_url(url: str) -> URL:
    """Parse a database URL; raise ValueError without echoing any part of it."""
    try:
        return make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy raises several types; all mean "bad URL"
        raise ValueError("not a database URL (expected dialect+driver://user@host/db)") from None


def checked_url(text: str) -> URL:
    """Parse `text` and apply dqmon's rules: known driver, allow-listed parameters."""
    url = normalized(parse_url(text))
    backend = url.get_backend_name()
    if backend in COMPILED:
        return url
    if backend not in LIVE:
        known = ", ".join([*LIVE, *COMPILED])
        raise ValueError(f"unsupported dialect '{backend}' (supported: {known})")
    if url.get_driver_name() != LIVE[backend]:
        raise ValueError(f"driver '{url.get_driver_name()}' is not supported for {backend}: "
                         f"use {backend}+{LIVE[backend]}://")
    if backend == "duckdb" and _REMOTE.match(url.database or ""):
        raise ValueError("a DuckDB database must be a local file (remote databases such as "
                         "md:, s3:// or http:// load extensions over the network)")
    refused = sorted(set(url.query) - ALLOWED_PARAMS[backend])
    if refused:
        raise ValueError(f"URL parameter(s) {', '.join(refused)} not allowed for {backend} "
                         f"(allowed: {', '.join(sorted(ALLOWED_PARAMS[backend])) or 'none'})")
    return url


def normalized(url: URL) -> URL:
    """Give a driver-less URL dqmon's driver (postgresql:// means psycopg 3, not psycopg2)."""
    backend = url.get_backend_name()
    if "+" not in url.drivername and backend in ("postgresql", "mysql", "mariadb"):
        return url.set(drivername=f"{backend}+{LIVE[backend]}")
    return url


def is_credential(param: str) -> bool:
    """Tell whether a URL query parameter holds a credential (password, token, key...)."""
    lowered = param.lower()
    return any(word in lowered for word in _CREDENTIAL_WORDS)


def url_secrets(url: URL) -> set[str]:
    """Return the password and every credential-like parameter value of `url`."""
    found = {url.password} if url.password else set()
    for param, value in url.query.items():
        if is_credential(param):
            found |= set(_values(value))
    return {str(s) for s in found if s}


def masked(url: URL) -> str:
    """Render `url` with its password and credential parameters as ***."""
    query = {k: ("***" if is_credential(k) else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _values(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
