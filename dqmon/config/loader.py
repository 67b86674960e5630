"""Read YAML into plain data, remembering the line of every value, and expand ${VAR}."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from dqmon.errors import Problem

Path = tuple[str | int, ...]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Document:
    """Plain YAML data plus the 1-based line of each path in it."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """Return the line of `path`, or of its nearest ancestor that exists."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1

    def problem(self, path: Path, message: str) -> Problem:
        """Build a problem located at `path`."""
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: Path) -> str:
    """Render ("tables", 0, "checks") as tables[0].checks."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_document(text: str, file: str, env: Mapping[str, str]) -> Document:
    """Parse YAML text; syntax errors and unset variables become problems."""
    doc = Document(file=file, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(Problem(file, 1, "", "the file is empty"))
            return doc
        doc.data = _build(node, (), loader, doc, env)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        doc.problems.append(Problem(file, line, "", f"invalid YAML: {exc.problem or exc}"))
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(file, 1, "", f"invalid YAML: {exc}"))
    finally:
        loader.dispose()
    return doc


def _build(node: yaml.Node, path: Path, loader: yaml.SafeLoader, doc: Document,
           env: Mapping[str, str]) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(node, path, loader, doc, env)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), loader, doc, env) for i, item in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    if isinstance(value, str) and node.tag == "tag:yaml.org,2002:str":
        return _expand(value, path, doc, env)
    return value


def _build_mapping(node: yaml.MappingNode, path: Path, loader: yaml.SafeLoader, doc: Document,
                   env: Mapping[str, str]) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) or key is None:
            doc.problems.append(doc.problem(path, "keys must be plain scalars"))
            continue
        key = str(key)
        child = (*path, key)
        if key in out:
            line = key_node.start_mark.line + 1
            doc.problems.append(Problem(doc.file, line, format_path(child), "duplicate key"))
            continue
        doc.lines[child] = key_node.start_mark.line + 1
        out[key] = _build(value_node, child, loader, doc, env)
    return out


def _expand(value: str, path: Path, doc: Document, env: Mapping[str, str]) -> str:
    """Replace ${VAR} and ${VAR:-default} from the environment (values only, never keys)."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        doc.problems.append(doc.problem(path, f"environment variable {name} is not set"))
        return ""

    return _VAR.sub(replace, value)
