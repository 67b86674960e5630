"""One definition of a secret, and the scrubbing every output path applies (SPEC section 6).

Secrets are the passwords and credential parameters of warehouse URLs and every `${VAR}`
value that lands in a URL's credentials. They are registered once per loaded config, for
the whole process, so that logs, errors, span attributes and printed output all scrub the
same set. Server error text additionally loses its quoted literals in telemetry and logs:
an error can quote a row's value or a file's contents.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# A value this short would mask ordinary words; URLs are still rendered with it masked.
MIN_SECRET_LEN = 3

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first, so a secret inside another is masked whole

# From a quote to the LAST quote of its kind: servers do not escape quotes inside the values
# they quote ("a"b"@x"), so pairing quotes would leave part of a value behind.
_LITERALS = (re.compile(r'".*"|"[^"]*$', re.DOTALL), re.compile(r"'.*'|'[^']*$", re.DOTALL))


def register(values: Iterable[str]) -> None:
    """Add secrets to the process-wide set (and their URL-encoded spellings)."""
    global _secrets
    new = {form for value in values if len(value) >= MIN_SECRET_LEN for form in _spellings(value)}
    with _lock:
        _secrets = tuple(sorted(set(_secrets) | new, key=len, reverse=True))


def _spellings(value: str) -> set[str]:
    """A secret as printed raw, URL-encoded, in a repr() and in a JSON string."""
    return {value, quote(value, safe=""), quote_plus(value), repr(value)[1:-1],
            json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


def scrub(text: str) -> str:
    """Replace every registered secret in `text` by ***."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_literals(text: str) -> str:
    """Replace quoted literals in a server message by `?`, then scrub secrets."""
    for literal in _LITERALS:
        text = literal.sub("?", text)
    return scrub(text)


def clear() -> None:
    """Forget every secret (tests)."""
    global _secrets
    with _lock:
        _secrets = ()
