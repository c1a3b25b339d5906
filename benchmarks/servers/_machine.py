"""What the report says about the machine and the software it measured."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import trio

#: The Python packages whose versions the report gives.
_PACKAGES = ("trio", "h11", "hypercorn", "uvloop")
#: The programs whose versions the report gives, and the flag that asks.
_PROGRAMS = {"redis-benchmark": "--version", "redis-server": "--version", "wrk": "--version"}


def cpu_model() -> str:
    """The CPU's model name, from ``lscpu`` or else ``/proc/cpuinfo``."""
    if shutil.which("lscpu"):
        result = subprocess.run(["lscpu"], capture_output=True, text=True, check=False)
        for line in result.stdout.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "Model name":
                return value.strip()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str | None:
    """*name*'s installed version, None if it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def program_version(name: str) -> str | None:
    """The first line *name* prints about its version, None if it is not on PATH."""
    if shutil.which(name) is None:
        return None
    try:
        result = subprocess.run(
            [name, _PROGRAMS.get(name, "--version")],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "?"
    # (wrk prints its version, then its usage, and exits with status 1.)
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def machine_facts(env: dict[str, str]) -> dict[str, object]:
    """The CPU, cores, Python, and the versions of everything measured by
    servers started with *env*."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "trio": trio.__version__,
        "trio_bufwriter": library_seen_by(env),
        "packages": {name: package_version(name) for name in _PACKAGES},
        "programs": {name: program_version(name) for name in _PROGRAMS},
    }


def short_version(line: str | None) -> str:
    """The version number in a program's version line (``Redis server
    v=7.0.15 sha=...`` gives ``7.0.15``), or the line itself if none is there."""
    if line is None:
        return "not installed"
    match = re.search(r"\d+\.\d+(?:\.\d+)?", line)
    return line if match is None else match[0]


def format_facts(facts: dict[str, object]) -> str:
    """The facts as the report's header lines."""
    packages = facts["packages"]
    programs = facts["programs"]
    assert isinstance(packages, dict)
    assert isinstance(programs, dict)
    installed = ", ".join(
        f"{name} {short_version(version)}" for name, version in {**packages, **programs}.items()
    )
    return "\n".join(
        [
            f"CPU: {facts['cpu']}, {facts['cores']} cores ({facts['platform']})",
            f"Python {facts['python']}, trio {facts['trio']}, "
            f"trio_bufwriter {facts['trio_bufwriter']}",
            f"tools: {installed}",
        ]
    )


def library_seen_by(env: dict[str, str]) -> str:
    """The trio_bufwriter version and folder that a server started with *env* imports."""
    code = (
        "import trio_bufwriter as t, pathlib; print(t.__version__, pathlib.Path(t.__file__).parent)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout.strip() or f"not importable: {result.stderr.strip()[-200:]}"
