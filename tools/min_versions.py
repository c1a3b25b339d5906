"""Print pip constraints that pin every declared minimum version.

``python tools/min_versions.py [EXTRA ...]`` reads ``pyproject.toml`` and
prints one ``name==version`` line for each requirement with a ``>=`` lower
bound among the package's dependencies and the extras named (``test`` when
none is named), with its environment marker if it has one.  Installing with
``pip install -c FILE`` then tests the oldest versions the package says it
supports: the minimum legs of CI and ``nox -s matrix`` do that, so a lower
bound in ``pyproject.toml`` is one that was tested, not one that was hoped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the backport, which pytest and nox depend on there
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parent.parent

#: ``name[extras] >= version [, more] [; marker]``
_LOWER_BOUND = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r">=\s*(?P<version>[^,;\s]+)[^;]*(?:;\s*(?P<marker>.+?))?\s*$"
)


def pins(requirements: list[str]) -> list[str]:
    """``name==version`` (and ``; marker``) for each requirement with a lower bound."""
    found = []
    for requirement in requirements:
        match = _LOWER_BOUND.match(requirement)
        if match is None:
            continue
        pin = f"{match['name']}=={match['version']}"
        if match["marker"]:
            pin += f"; {match['marker']}"
        found.append(pin)
    return found


def constraints(extras: list[str]) -> list[str]:
    """The pins for the package's dependencies and *extras*, each name once."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    seen: dict[str, str] = {}
    for pin in pins(requirements):
        seen.setdefault(pin.split("==")[0].lower(), pin)
    return list(seen.values())


def main() -> int:
    print("\n".join(constraints(sys.argv[1:] or ["test"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
