"""Warehouse plumbing that needs no server: URLs, read-only options, error wording."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from dqmon.config.models import Warehouse as Settings
from dqmon.warehouse import Warehouse, _is_timeout, parse_url
from dqmon.warehouse.session import connect_options


class QueryCanceled(Exception):
    """Stands in for psycopg.errors.QueryCanceled: only its name and text matter here."""


def test_timeout_is_told_from_a_shutdown_cancel() -> None:
    """A statement timeout reads as a timeout; dqmon's own cancel on SIGTERM does not."""
    assert _is_timeout(QueryCanceled("canceling statement due to statement timeout"))
    assert not _is_timeout(QueryCanceled("canceling statement due to user request"))
    assert not _is_timeout(ValueError("canceling statement due to statement timeout"))


def test_postgres_sessions_are_read_only_with_timeout_and_zone() -> None:
    """PostgreSQL sessions start read-only, with the statement timeout and the warehouse zone."""
    settings = Settings(url="postgresql+psycopg://u:pw@h/db", statement_timeout=2.5)
    _, args = connect_options(parse_url(settings.url), settings, ZoneInfo("Asia/Tokyo"))
    assert args["options"] == ("-c default_transaction_read_only=on -c statement_timeout=2500 "
                               "-c TimeZone=Asia/Tokyo -c standard_conforming_strings=on")
    assert (args["keepalives"], args["connect_timeout"]) == (1, 10)


def test_sqlite_files_open_read_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A SQLite file is opened through a mode=ro URI."""
    db = tmp_path / "w.db"
    db.write_bytes(b"")
    settings = Settings(url=f"sqlite:///{db}")
    url, _ = connect_options(parse_url(settings.url), settings, ZoneInfo("UTC"))
    assert url.database == f"file:{db.resolve()}"
    assert dict(url.query) == {"mode": "ro", "uri": "true"}


def test_masked_url_and_bad_url() -> None:
    """URLs are shown without their password; a malformed one is refused without echoing it."""
    warehouse = Warehouse("main", Settings(url="postgresql+psycopg://u:s3cret@h:5432/db"))
    assert warehouse.masked_url == "postgresql+psycopg://u:***@h:5432/db"
    with pytest.raises(ValueError) as raised:
        parse_url("not a url with s3cret")
    assert "s3cret" not in str(raised.value)
