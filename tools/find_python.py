"""Find an interpreter of one Python version: ``python tools/find_python.py 3.10``.

Prints the path of a CPython ``X.Y`` that runs, or fails (exit 1) saying
where it looked.  Looked at, in order: ``pythonX.Y`` on ``PATH`` (a pyenv
shim for a version pyenv has not made active fails to run, and is passed
over), pyenv's ``versions/X.Y.*`` under ``$PYENV_ROOT``, ``pyenv root`` and
``~/.pyenv`` (the newest patch release first), then ``/usr/local/bin`` and
``/usr/bin``.  CI's extra legs and ``nox -s matrix`` use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _runs_as(path: str, version: str) -> bool:
    """Whether *path* is an interpreter that runs and is Python *version*."""
    try:
        result = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def _pyenv_roots() -> list[Path]:
    roots = []
    if "PYENV_ROOT" in os.environ:
        roots.append(Path(os.environ["PYENV_ROOT"]))
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        result = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if result.returncode == 0 and result.stdout.strip():
            roots.append(Path(result.stdout.strip()))
    roots.append(Path.home() / ".pyenv")
    return roots


def _patch_level(folder: Path) -> tuple[int, ...]:
    parts = folder.name.split(".")
    return tuple(int(part) if part.isdigit() else -1 for part in parts)


def candidates(version: str) -> list[str]:
    """Where an interpreter of *version* may be, in the order tried."""
    name = f"python{version}"
    found: list[str] = []
    on_path = shutil.which(name)
    if on_path is not None:
        found.append(on_path)
    for root in _pyenv_roots():
        releases = sorted(
            (folder for folder in root.glob(f"versions/{version}.*") if folder.is_dir()),
            key=_patch_level,
            reverse=True,
        )
        found += [str(folder / "bin" / name) for folder in releases]
    found += [f"/usr/local/bin/{name}", f"/usr/bin/{name}"]
    return list(dict.fromkeys(found))


def find_python(version: str) -> str | None:
    """The first of :func:`candidates` that runs as Python *version*, or None."""
    for path in candidates(version):
        if os.path.exists(path) and _runs_as(path, version):
            return path
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python tools/find_python.py X.Y", file=sys.stderr)
        return 2
    version = sys.argv[1]
    path = find_python(version)
    if path is None:
        print(
            f"no Python {version} found; looked at: {', '.join(candidates(version))}",
            file=sys.stderr,
        )
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
