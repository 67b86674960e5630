"""Secrets: URL allow-lists, masking, ${VAR} credentials, and scrubbing of every output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dqmon import redact
from dqmon.config import ConfigError, parse_config
from dqmon.config.urls import checked_url, masked, parse_url, url_secrets


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    redact.clear()
    yield
    redact.clear()


def _config(url: str, tables: str = "") -> str:
    tables = tables or ("tables:\n  - name: orders\n    checks:\n"
                        "      - row_count: {min: 1}\n")
    return f"version: 1\nwarehouses:\n  main:\n    url: \"{url}\"\n{tables}"


@pytest.mark.parametrize(("url", "says"), [
    ("mysql+pymysql://u@h/db?init_command=SET+SESSION+TRANSACTION+READ+WRITE", "init_command"),
    ("mysql+pymysql://u@h/db?client_flag=65536", "client_flag"),
    ("mysql+mysqldb://u@h/db", "driver 'mysqldb'"),
    ("postgresql+psycopg://u@h/db?options=-c+default_transaction_read_only%3Doff", "options"),
    ("postgresql+psycopg2://u@h/db", "driver 'psycopg2'"),
    ("duckdb:///w.duckdb?access_mode=read_write", "access_mode"),
    ("sqlite:///file:w.db?mode=rw&uri=true", "mode, uri"),
    ("oracle://u@h/db", "unsupported dialect"),
])
def test_urls_that_override_safety_are_refused(url: str, says: str) -> None:
    """URL parameters and drivers that could undo the read-only session are config errors."""
    with pytest.raises(ValueError) as refused:
        checked_url(url)
    assert says in str(refused.value)


def test_driverless_urls_get_dqmon_drivers() -> None:
    """postgresql:// means psycopg 3 and mysql:// means PyMySQL, never a multi-statement driver."""
    assert checked_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert checked_url("mysql://u@h/db").drivername == "mysql+pymysql"


def test_credential_parameters_are_secret_and_masked() -> None:
    """A password or token in the query string is a secret, and masked like the password."""
    url = parse_url("postgresql+psycopg://u:pw1@h/db?sslpassword=k3y&password=pw2&sslmode=require")
    assert url_secrets(url) == {"pw1", "k3y", "pw2"}
    shown = masked(url)
    assert "pw1" not in shown and "k3y" not in shown and "pw2" not in shown
    assert "sslmode=require" in shown


def test_a_var_password_with_at_and_slash_cannot_split_the_url() -> None:
    """${VAR} in a URL's credentials is percent-encoded, so '@' and '/' stay in the password."""
    config = parse_config(_config("postgresql+psycopg://dq:${PW}@db.internal:5432/shop"),
                          env={"PW": "p@ss/w:rd"})
    url = parse_url(config.warehouses["main"].url)
    assert (url.host, url.database, url.password) == ("db.internal", "shop", "p@ss/w:rd")
    assert "p@ss/w:rd" in config.secrets
    assert redact.scrub("error near p@ss/w:rd and p%40ss%2Fw%3Ard") == "error near *** and ***"


def test_a_secret_reused_outside_the_url_is_refused_without_showing_it() -> None:
    """A credential in a check name (a metric label) or in SQL is refused; the value is not said."""
    tables = ("tables:\n  - name: orders\n    checks:\n"
              "      - custom: {name: \"c_${PW}\", sql: \"select 1 /* ${PW} */\", max: 1}\n")
    with pytest.raises(ConfigError) as refused:
        parse_config(_config("postgresql+psycopg://dq:${PW}@db/shop", tables),
                     env={"PW": "hunter22"})
    text = str(refused.value)
    assert "hunter22" not in text
    assert "custom.name: holds the value of a secret" in text
    assert "custom.sql: holds the value of a secret" in text


def test_var_values_outside_credentials_stay_usable() -> None:
    """${VAR} in SQL fields (dates, regions from an orchestrator) is expanded and not secret."""
    tables = ("tables:\n  - name: orders\n    where: \"region = '${REGION}'\"\n    checks:\n"
              "      - row_count: {min: 1}\n")
    config = parse_config(_config("sqlite:///demo/warehouse.db", tables), env={"REGION": "emea"})
    assert config.tables[0].where == "region = 'emea'"
    assert config.secrets == frozenset()


def test_server_messages_lose_quoted_literals() -> None:
    """Quoted values in a server error (a row, a file's contents) become '?' for logs and spans."""
    text = ('invalid input syntax for type integer: "root:x:0:0:root:/root:/bin/bash"; '
            "Truncated incorrect DOUBLE value: 'alice@example.com'")
    scrubbed = redact.scrub_literals(text)
    assert "root:x" not in scrubbed and "alice@" not in scrubbed
    assert scrubbed == ("invalid input syntax for type integer: ?; "
                        "Truncated incorrect DOUBLE value: ?")
