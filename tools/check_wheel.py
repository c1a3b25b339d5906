"""Build the wheel and check that it holds the library and nothing else.

``python tools/check_wheel.py`` builds ``trio_bufwriter``'s wheel with pip
into a temporary folder and fails (exit 1) unless every file in it is under
``trio_bufwriter/`` or its ``.dist-info/``, ``trio_bufwriter/py.typed`` is
there, and nothing of the measuring lab (``benchmarks/``), the tests, the
examples or the tools came along.  CI runs it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wheel_files(folder: Path) -> list[str]:
    """Build the wheel into *folder* and return the names of the files in it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(folder),
            str(ROOT),
        ],
        check=True,
    )
    [wheel] = folder.glob("trio_bufwriter-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return sorted(archive.namelist())


def problems(names: list[str]) -> list[str]:
    """What is wrong with a wheel holding *names* (nothing: an empty list)."""
    found = [
        f"not part of the library: {name}"
        for name in names
        if not name.startswith("trio_bufwriter/")
        and not (name.startswith("trio_bufwriter-") and ".dist-info/" in name)
    ]
    if "trio_bufwriter/py.typed" not in names:
        found.append("trio_bufwriter/py.typed is missing")
    if "trio_bufwriter/__init__.py" not in names:
        found.append("trio_bufwriter/__init__.py is missing")
    return found


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        names = wheel_files(Path(folder))
    modules = [name for name in names if name.startswith("trio_bufwriter/")]
    print(f"wheel: {len(names)} files, {len(modules)} in trio_bufwriter/:")
    print("  " + " ".join(name.removeprefix("trio_bufwriter/") for name in modules))
    found = problems(names)
    for problem in found:
        print(f"FAIL: {problem}")
    print("wheel: FAIL" if found else "wheel: only the library: PASS")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
