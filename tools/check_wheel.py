"""Build the release files and check them as a user would get them.

``python tools/check_wheel.py`` (CI runs it; it needs ``build`` and
``twine``, which the ``dev`` extra brings) does, in a temporary folder:

1. builds the sdist and the wheel with ``python -m build``;
2. ``twine check``s both (the metadata, and the README as PyPI renders it);
3. fails (exit 1) unless every file in the wheel is under
   ``trio_bufwriter/`` or its ``.dist-info/``, ``trio_bufwriter/py.typed``
   is there, and nothing of the measuring lab (``benchmarks/``), the tests,
   the examples or the tools came along;
4. installs the wheel alone (not editable, no extra) in a fresh venv,
   imports it there, from outside the source tree, and runs the demo
   briefly (``python -m trio_bufwriter demo --messages 2000 --repeat 1``).

``--no-install`` stops after step 3.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What the installed wheel must run, from a folder outside the clone.
IMPORT_CHECK = (
    "import pathlib, trio_bufwriter; "
    "print(trio_bufwriter.__version__, pathlib.Path(trio_bufwriter.__file__).parent)"
)
DEMO = ["-m", "trio_bufwriter", "demo", "--messages", "2000", "--repeat", "1"]


def run(command: list[str], cwd: Path | None = None) -> str:
    """Run *command* (echoed), fail on a non-zero exit, and return its output."""
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(
        command,
        cwd=cwd,
        check=False,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"FAIL: exit {result.returncode}: {' '.join(command)}")
    return result.stdout


def build(folder: Path) -> tuple[Path, Path]:
    """Build the sdist and the wheel into *folder*; return their paths."""
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(folder), str(ROOT)])
    [sdist] = folder.glob("trio_bufwriter-*.tar.gz")
    [wheel] = folder.glob("trio_bufwriter-*.whl")
    return sdist, wheel


def wheel_files(wheel: Path) -> list[str]:
    """The names of the files in *wheel*."""
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


def install_and_run(wheel: Path, folder: Path) -> None:
    """Install *wheel* alone in a fresh venv under *folder*; import it and run the demo."""
    env_dir = folder / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    run([python, "-m", "pip", "install", "--quiet", str(wheel)])
    # From an empty folder, so that the clone's trio_bufwriter/ cannot be imported instead.
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    location = run([python, "-c", IMPORT_CHECK], cwd=elsewhere).split()[-1]
    if not Path(location).is_relative_to(env_dir):
        raise SystemExit(f"FAIL: trio_bufwriter imported from {location}, not the venv")
    run([python, *DEMO], cwd=elsewhere)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-install", action="store_true", help="build and check, but install nothing"
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        sdist, wheel = build(folder / "dist")
        run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)])
        names = wheel_files(wheel)
        modules = [name for name in names if name.startswith("trio_bufwriter/")]
        print(f"wheel: {len(names)} files, {len(modules)} in trio_bufwriter/:")
        print("  " + " ".join(name.removeprefix("trio_bufwriter/") for name in modules))
        found = problems(names)
        for problem in found:
            print(f"FAIL: {problem}")
        print("wheel: FAIL" if found else "wheel: only the library: PASS")
        if found:
            return 1
        if not options.no_install:
            install_and_run(wheel, folder)
            print(f"release files: {sdist.name}, {wheel.name}: built, checked, installed: PASS")
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)  # the installed wheel alone, not the clone
    sys.exit(main())
