"""The public API does not change by accident.

``tests/data/public_api.txt`` lists every public name, class member,
parameter and default (``tests/api_snapshot.py`` writes it).  A change meant
to alter the API updates the file in the same commit:
``python tests/api_snapshot.py > tests/data/public_api.txt``.
"""

from __future__ import annotations

from pathlib import Path

from api_snapshot import lines

SNAPSHOT = Path(__file__).parent / "data" / "public_api.txt"


def test_the_public_api_matches_its_snapshot() -> None:
    assert list(lines()) == SNAPSHOT.read_text().splitlines()
