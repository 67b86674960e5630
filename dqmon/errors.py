"""Errors that carry decisions: located config problems and warehouse failures."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# Control characters (and Unicode line separators) shown as escapes: one problem, one line.
_ONE_LINE = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {
    0x85: "\\x85", 0x2028: "\\u2028", 0x2029: "\\u2029"}


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a config file, at a place a person can find."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        text = f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return text.translate(_ONE_LINE)  # a key or value may hold "\r" or "\n"


class ConfigError(Exception):
    """All the problems found in a config file, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(Exception):
    """A command line that asks for something the config cannot give (exit 2)."""


class WarehouseError(Exception):
    """A query or connection failed; the message is safe to show (no password)."""

    def __init__(self, message: str, *, timeout: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.unreachable = unreachable  # no connection at all: later queries would fail too


class ExitCode(IntEnum):
    """run-once exit codes (SPEC section 4); a higher precedence wins: 2 > 3 > 1 > 0."""

    OK = 0  # every check passed (warnings included)
    FAILED = 1  # a critical check failed
    USAGE = 2  # usage or config error
    ERROR = 3  # a check could not run
