"""Write a pip constraints file that pins every dependency to its lower bound in pyproject.toml.

CI installs `.[test]` under these constraints and runs the tests again (issue 13), so each
`>=` floor in pyproject is a version that really installs and passes, not a hope. Covers
`[project] dependencies` and the `test` extra; a requirement without a `>=` bound is left to
the resolver. Extras and environment markers are dropped: constraints name packages only.

    python .ci/lower-bounds.py [pyproject.toml] > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# name[extras] then specifiers; the marker after `;` is ignored.
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")
_FLOOR = re.compile(r">=\s*([^,\s]+)")


def floors(requirements: list[str]) -> dict[str, str]:
    """Map each requirement's normalised name to its `>=` version, for those that have one."""
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        floor = _FLOOR.search(match.group(2)) if match else None
        if match and floor:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            pins[name] = floor.group(1)
    return pins


def main() -> None:
    """Print `name==floor` lines for the dependencies and the test extra."""
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    for name, version in sorted(floors(requirements).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
