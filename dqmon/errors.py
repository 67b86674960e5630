"""Errors that carry decisions: located config problems and warehouse failures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a config file, at a place a person can find."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


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
