"""Read YAML into plain data, remembering the line of every value, and expand ${VAR}."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import yaml

from dqmon.errors import Problem

Path = tuple[str | int, ...]

_MERGE = "tag:yaml.org,2002:merge"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# Values a file may build again through aliases: a few "billion laughs" lines must not hang
# dqmon. Values written out in the file count for nothing (its size bounds them), so a
# 10,000-table file loads (issue 9). DQMON_MAX_CONFIG_VALUES changes the limit.
MAX_VALUES = 100_000
MAX_VALUES_VAR = "DQMON_MAX_CONFIG_VALUES"
# `[` and `{` nested inside each other: PyYAML's scanner is quadratic in this depth (issue 8:
# 2,000 levels took seconds, 100,000 would take hours), and a real file nests a handful.
MAX_FLOW_DEPTH = 100

# Plain words in front of PyYAML's terse messages.
_YAML_HINTS = (
    ("expected <block end>", "bad indentation"),
    ("mapping values are not allowed here", "bad indentation, or an unquoted ': ' in a value"),
    ("found character '\\t'", "a tab where YAML allows only spaces"),
    ("expected ',' or ']'", "unclosed '['"),
    ("expected ',' or '}'", "unclosed '{'"),
    ("expected alphabetic or numeric character", "quote a value that starts with '*' or '&', "
                                                 "such as a cron string"),
    ("found undefined alias", "no anchor of that name, or an unquoted value that starts with '*'"),
)


class _TooDeep(Exception):
    """Lists and mappings nest deeper than MAX_FLOW_DEPTH (PyYAML would take minutes)."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing deep `[`/`{` nesting before its quadratic scan starts."""

    def fetch_flow_collection_start(self, token_class: type[yaml.Token]) -> None:
        if self.flow_level >= MAX_FLOW_DEPTH:
            raise _TooDeep
        super().fetch_flow_collection_start(token_class)


class _Unbuildable(Exception):
    """The YAML parses but cannot become plain data (a recursive or exploding alias)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Document:
    """Plain YAML data plus the 1-based line of each path in it."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    reported: set[Path] = field(default_factory=set)  # values whose problem is already said
    built: int = 0  # values built again through aliases
    max_values: int = MAX_VALUES
    visited: set[int] = field(default_factory=set)
    building: set[int] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)  # ${VAR} values put in URL credentials

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
    """Parse YAML text; syntax errors, bad characters and unset variables become problems."""
    doc = Document(file=file, data=None, max_values=_max_values(env))
    try:
        _load(text, doc, env)
    except yaml.reader.ReaderError as exc:  # raised by SafeLoader(text) itself, before parsing
        doc.problems.append(_character_problem(exc, text, file))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        doc.problems.append(Problem(file, line, "", yaml_message(exc.problem or str(exc))))
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(file, 1, "", yaml_message(" ".join(str(exc).split()))))
    except _Unbuildable as exc:
        doc.data = None
        doc.problems.append(exc.problem)
    except (RecursionError, _TooDeep):
        doc.data = None
        doc.problems.append(Problem(file, 1, "", "the file nests lists and mappings too deeply"))
    return doc


def _load(text: str, doc: Document, env: Mapping[str, str]) -> None:
    """Compose the single YAML document of `text` and build its plain data into `doc`."""
    yaml.reader.Reader(text)  # a character YAML never allows, anywhere: a ReaderError
    loader, node = _compose(text)
    try:
        if node is None:
            doc.problems.append(Problem(doc.file, 1, "", "the file is empty"))
            return
        doc.data = _build(node, (), loader, doc, env)
    finally:
        loader.dispose()


def _compose(text: str) -> tuple[Any, yaml.Node | None]:
    """Compose with libyaml where PyYAML has it (several times faster on a large file).

    A file libyaml refuses is composed again by PyYAML, whose messages the hints know.
    """
    if yaml.__with_libyaml__:
        loader = yaml.CSafeLoader(text)
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError as exc:
            loader.dispose()
            if "maximum nesting depth" in str(exc):  # libyaml's own limit on `[`/`{` nesting
                raise _TooDeep from None
    slow = _Loader(text)
    try:
        return slow, slow.get_single_node()
    except BaseException:
        slow.dispose()
        raise


def _character_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """Locate a character YAML never allows, not even in a comment (issue 8)."""
    position = int(exc.position)
    before = text[:position]
    line, column = before.count("\n") + 1, position - before.rfind("\n")
    code = exc.character if isinstance(exc.character, int) else 0xFFFD
    return Problem(file, line, "", f"invalid YAML: {_character_message(code, column)}")


def _character_message(code: int, column: int) -> str:
    """Name a disallowed character and say how to write it instead."""
    if unicodedata.category(chr(code)) != "Cc":
        return f"character U+{code:04X} at column {column} is not allowed in YAML"
    return (f"control character U+{code:04X} at column {column} is not allowed anywhere, "
            f"even in a comment (remove it, or write \"\\x{code:02x}\" inside double quotes)")


def _max_values(env: Mapping[str, str]) -> int:
    """Return the value limit: DQMON_MAX_CONFIG_VALUES when it is a positive integer."""
    text = env.get(MAX_VALUES_VAR, "")
    return int(text) if text.isdigit() and int(text) > 0 else MAX_VALUES


def yaml_message(problem: str) -> str:
    """Say what PyYAML found, with a plain-words hint where one is known."""
    hint = next((h for start, h in _YAML_HINTS if problem.startswith(start)), None)
    return f"invalid YAML: {hint} ({problem})" if hint else f"invalid YAML: {problem}"


def _build(node: yaml.Node, path: Path, loader: yaml.SafeLoader, doc: Document,
           env: Mapping[str, str]) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in doc.visited:
        doc.built += 1  # built again through an alias
    doc.visited.add(id(node))
    if doc.built > doc.max_values:
        raise _Unbuildable(doc.problem(path[:1], f"holds more than {doc.max_values} values "
                                                 f"(aliases of aliases? {MAX_VALUES_VAR} "
                                                 "raises the limit)"))
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, path, loader, doc, env)
    if id(node) in doc.building:
        raise _Unbuildable(doc.problem(path, "an alias refers to a value that contains it"))
    doc.building.add(id(node))
    try:
        if isinstance(node, yaml.MappingNode):
            return _build_mapping(node, path, loader, doc, env)
        return [_build(item, (*path, i), loader, doc, env) for i, item in enumerate(node.value)]
    finally:
        doc.building.discard(id(node))


def _scalar(node: yaml.ScalarNode, path: Path, loader: yaml.SafeLoader, doc: Document,
            env: Mapping[str, str]) -> Any:
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        raise
    except Exception:  # noqa: BLE001 - PyYAML's constructors raise anything on a bad !!tag value
        doc.reported.add(path)
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        doc.problems.append(doc.problem(path, f"cannot read {node.value!r} as {tag}"))
        return None
    if isinstance(value, str) and node.tag == "tag:yaml.org,2002:str":
        return _expand(value, path, doc, env)
    return value


def _build_mapping(node: yaml.MappingNode, path: Path, loader: yaml.SafeLoader, doc: Document,
                   env: Mapping[str, str]) -> dict[str, Any]:
    own = sum(key.tag != _MERGE for key, _ in node.value)
    loader.flatten_mapping(node)  # `<<: *anchor` pairs now come first
    merged, pairs = node.value[:len(node.value) - own], node.value[len(node.value) - own:]
    out: dict[str, Any] = {}
    for key_node, value_node in pairs:
        key = _key(key_node, path, doc)
        if key is None:
            continue
        child = (*path, key)
        line = key_node.start_mark.line + 1
        if key in out:
            doc.problems.append(Problem(doc.file, line, format_path(child),
                                        f"duplicate key (first at line {doc.lines[child]})"))
            continue
        doc.lines[child] = line
        out[key] = _build(value_node, child, loader, doc, env)
    # Merged keys never override the mapping's own; among merges the first listed wins (YAML).
    for key_node, value_node in reversed(merged):
        key = _key(key_node, path, doc)
        if key is not None and key not in out:
            out[key] = _build(value_node, (*path, key), loader, doc, env)
    return out


def _key(node: yaml.Node, path: Path, doc: Document) -> str | None:
    """Return a key as written (`on:` stays "on", not True), or None after a problem."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    doc.problems.append(Problem(doc.file, node.start_mark.line + 1, format_path(path),
                                "a key must be a plain word, not a list or mapping"))
    return None


def _expand(value: str, path: Path, doc: Document, env: Mapping[str, str]) -> str:
    """Replace ${VAR} and ${VAR:-default} from the environment (values only, never keys).

    In a warehouse URL's credentials (`user:${PASSWORD}@host`) the value is a secret and is
    percent-encoded, so that an `@` or `/` in a password cannot split the URL (SPEC 6).
    """
    userinfo = _userinfo_span(value) if _is_url(path) else None

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            found = env[name]
        elif default is not None:
            found = default
        else:
            doc.reported.add(path)
            hint = f"set it, or write ${{{name}:-default}}"
            doc.problems.append(doc.problem(path, f"environment variable {name} is not set "
                                                  f"({hint})"))
            return ""
        if userinfo is not None and userinfo[0] <= match.start() < userinfo[1]:
            doc.secrets.add(found)
            return quote(found, safe="")
        return found

    return _VAR.sub(replace, value)


def _is_url(path: Path) -> bool:
    return len(path) == 3 and path[0] == "warehouses" and path[2] == "url"


def _userinfo_span(template: str) -> tuple[int, int] | None:
    """Return where `user:password` lies in a URL template, reading ${...} as opaque."""
    masked = _VAR.sub(lambda m: "x" * len(m.group(0)), template)
    start = masked.find("://")
    if start < 0:
        return None
    start += 3
    end = next((i for i, ch in enumerate(masked[start:], start) if ch in "/?#"), len(masked))
    at = masked.rfind("@", start, end)
    return (start, at) if at >= 0 else None
