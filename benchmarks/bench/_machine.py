"""Facts about the machine, CPU pinning, optional libraries and socket options."""

from __future__ import annotations

import faulthandler
import importlib
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from types import ModuleType
from typing import Protocol

import trio

import trio_bufwriter

#: ``getsockopt`` names and levels reported for every peer's socket.
_SOCKET_OPTIONS: dict[str, tuple[int, int | None]] = {
    "TCP_NODELAY": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
    # Linux's number (trio uses it too when the socket module lacks the name).
    "TCP_NOTSENT_LOWAT": (
        socket.IPPROTO_TCP,
        getattr(socket, "TCP_NOTSENT_LOWAT", 25 if platform.system() == "Linux" else None),
    ),
    "SO_SNDBUF": (socket.SOL_SOCKET, socket.SO_SNDBUF),
    "SO_RCVBUF": (socket.SOL_SOCKET, socket.SO_RCVBUF),
}


class _HasGetsockopt(Protocol):
    def getsockopt(self, level: int, option: int, /) -> int: ...


def optional_module(name: str) -> ModuleType | None:
    """Import *name* if it is installed (uvloop, matplotlib), else return None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _version(name: str) -> str | None:
    module = optional_module(name)
    return None if module is None else str(getattr(module, "__version__", "?"))


def socket_options(sock: _HasGetsockopt) -> dict[str, int | None]:
    """The options of :data:`_SOCKET_OPTIONS` as set on *sock* (None: not available)."""
    values: dict[str, int | None] = {}
    for name, (level, option) in _SOCKET_OPTIONS.items():
        value: int | None = None
        if option is not None:  # pragma: no branch - None only off Linux
            try:
                value = sock.getsockopt(level, option)
            except OSError:  # pragma: no cover - an option the platform lacks
                value = None
        values[name] = value
    return values


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order ([] if affinity is not supported)."""
    if not hasattr(os, "sched_getaffinity"):  # pragma: no cover - not on Linux
        return []
    return sorted(os.sched_getaffinity(0))


def can_pin() -> bool:
    """Whether processes can be pinned to CPUs here (Linux's sched_setaffinity)."""
    return hasattr(os, "sched_setaffinity") and bool(usable_cpus())


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run this process on *cpu* alone inside the block (no-op for None); restore after."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not on Linux
        pass
    return None  # pragma: no cover - no model name


def source_revision() -> str | None:
    """The git commit of the measured source, ``+ uncommitted changes`` if the
    package differs from it; None outside a git checkout."""
    package = os.path.dirname(os.path.abspath(trio_bufwriter.__file__))
    try:
        commit = subprocess.run(
            ["git", "-C", package, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", package, "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - no git here
        return None
    return f"{commit} + uncommitted changes" if status.strip() else commit


def machine_facts(command: str) -> dict[str, object]:
    """What a reader needs to judge the numbers: hardware, software, load, date."""
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command,
        "cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "cpu_model": _cpu_model(),
        "load_average_at_start": load,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "trio": trio.__version__,
        "trio_bufwriter": trio_bufwriter.__version__,
        "source": source_revision(),
        "uvloop": _version("uvloop"),
        "matplotlib": _version("matplotlib"),
        "kernel": f"{platform.system()} {platform.release()}",
        "tcp_notsent_lowat_default": notsent_lowat_default(),
        "platform": platform.platform(),
    }


def notsent_lowat_default() -> int | None:
    """The system's default ``TCP_NOTSENT_LOWAT`` (Linux sysctl), or None."""
    try:
        with open("/proc/sys/net/ipv4/tcp_notsent_lowat", encoding="ascii") as sysctl:
            return int(sysctl.read().strip())
    except (OSError, ValueError):  # pragma: no cover - not on Linux
        return None


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """If the block runs longer than *seconds*, dump every thread's stack to
    stderr and exit with status 1: a hung run must not hang CI.

    A no-op where stderr has no file descriptor (as under some test runners).
    """
    stream = sys.__stderr__
    try:
        if stream is None:
            raise ValueError("no stderr")
        faulthandler.dump_traceback_later(seconds, exit=True, file=stream)
    except (ValueError, OSError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
