"""Which values of a config are secrets, and the rule that they stay in the URLs.

A secret is a warehouse URL's password, any credential-like URL parameter, and any ${VAR}
value expanded into a URL's credentials (SPEC section 6). Such a value anywhere else in the
file (a check name is a metric label, SQL text reaches spans and --show-sql) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dqmon import redact
from dqmon.config.loader import Document, Path
from dqmon.config.urls import parse_url, url_secrets
from dqmon.errors import Problem

_USERINFO = re.compile(r"://[^:/?#@]*:([^/?#]*)@")


def collect(doc: Document) -> set[str]:
    """Return every secret of the document, and register them for scrubbing."""
    found = set(doc.secrets)
    for path, value in _strings(doc.data, ()):
        if _is_url(path):
            found |= _secrets_of(value)
    found = {s for s in found if len(s) >= redact.MIN_SECRET_LEN}
    redact.register(found)
    return found


def leaks(doc: Document, secrets: set[str]) -> list[Problem]:
    """Report each value outside the URLs that holds a secret (never saying which)."""
    return [doc.problem(path, "holds the value of a secret (a warehouse credential): keep "
                              "credentials in the warehouse URL only")
            for path, value in _strings(doc.data, ())
            if not _is_url(path) and any(secret in value for secret in secrets)]


def _secrets_of(url: str) -> set[str]:
    try:
        return url_secrets(parse_url(url))
    except ValueError:  # unparseable: its credentials are still what lies before the '@'
        match = _USERINFO.search(url)
        return {match.group(1)} if match else set()


def _is_url(path: Path) -> bool:
    return len(path) == 3 and path[0] == "warehouses" and path[2] == "url"


def _strings(data: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, (*path, i))
