"""Pydantic's validation errors as located problems in plain words."""

from __future__ import annotations

import difflib
import types
from inspect import isclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dqmon.config.kinds import KINDS, CheckEntry
from dqmon.config.loader import Document, Path
from dqmon.config.models import ConfigFile
from dqmon.errors import Problem

_PLAIN = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}
_TEMPLATES = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be {expected}",
    "too_long": "must have at most {max_length} items",
}


def located(exc: ValidationError, doc: Document) -> list[Problem]:
    """Turn each pydantic error into a problem at the file line of the field it names."""
    problems: dict[str, Problem] = {}
    for error in exc.errors():
        path = _data_path(error["loc"], doc.data)
        if path in doc.reported:
            continue  # e.g. "NOPE is not set" already says why this value is empty
        problem = doc.problem(path, message(error, path))
        problems.setdefault(problem.path, problem)  # a union reports one place several times
    return list(problems.values())


def message(error: ErrorDetails, path: Path) -> str:
    """Say what is wrong with one field, as a person would."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(error["loc"])
    if kind == "missing":
        return _missing(path)
    if kind == "too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else \
            f"must have at least {ctx.get('min_length')} items"
    if kind in _TEMPLATES:
        return _TEMPLATES[kind].format(**ctx)
    return _PLAIN.get(kind) or error["msg"].removeprefix("Value error, ")


def _missing(path: Path) -> str:
    if len(path) >= 2 and path[-1] == "name" and path[-2] in ("validity", "custom"):
        return f"missing: {path[-2]} checks have no default name"
    return "missing (required)"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    allowed = _keys_at(loc[:-1])
    what = "check kind" if allowed == list(KINDS) else "key"
    if not allowed:
        return f"unknown {what} '{key}'"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "expected one of " + ", ".join(allowed)
    return f"unknown {what} '{key}' ({hint})"


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """Return the keys the model at pydantic location `loc` accepts (empty if unknown)."""
    tp: Any = ConfigFile
    for part in loc:
        tp = _step(_unwrap(tp), part)
    model = _unwrap(tp)
    if not (isclass(model) and issubclass(model, BaseModel)):
        return []
    if model is CheckEntry:
        return list(KINDS)
    return [field.alias or name for name, field in model.model_fields.items()]


def _step(tp: Any, part: int | str) -> Any:
    if isclass(tp) and issubclass(tp, BaseModel):
        fields = tp.model_fields
        return next((f.annotation for n, f in fields.items() if part in (n, f.alias)), None)
    origin, args = get_origin(tp), get_args(tp)
    if origin is list and isinstance(part, int):
        return args[0]
    if origin is dict and isinstance(part, str):
        return args[1]
    return None


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and `| None` down to the one type inside."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(tp) if a is not type(None)]
            if len(options) != 1:
                return tp
            tp = options[0]
        else:
            return tp


def _data_path(loc: tuple[int | str, ...], data: Any) -> Path:
    """Keep the parts of a pydantic location that exist in the data (drop union tags)."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and (part in node or last):
            path.append(part)
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
    return tuple(path)
