"""Helpers shared by the PositionalWriter test modules."""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_bufwriter import PositionalWriter
from trio_bufwriter import _positional as _positional
from trio_bufwriter._pwrite import Outcome, write_runs
from trio_bufwriter._ranges import Run


def read(path: Path) -> bytes:
    return path.read_bytes()


def open_for_writing(path: Path) -> int:
    """A descriptor for *path*, created if need be, as a test's own writer would use."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC)


def owned_writer(path: Path, **options: Any) -> PositionalWriter:
    """A writer on a new descriptor for *path*, which its aclose() closes."""
    return PositionalWriter(open_for_writing(path), close_fd=True, **options)


async def record_outcome(
    results: list[BaseException | None], async_fn: Callable[[], Awaitable[object]]
) -> None:
    """Await *async_fn()* and append what it raised to *results*, or None if nothing."""
    try:
        await async_fn()
    except BaseException as exc:
        results.append(exc)
    else:
        results.append(None)


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class GatedTrips:
    """Hold each worker-thread trip of the positional writer until released.

    Installed over the ``write_runs`` the writer calls, it records each
    trip's runs, waits in the worker thread until the test calls
    :meth:`release`, then does the real writes.
    """

    def __init__(self) -> None:
        self.trips: list[list[Run]] = []
        self._entered = threading.Semaphore(0)
        self._permits = threading.Semaphore(0)

    def __call__(self, fd: int, runs: list[Run], sync: bool, datasync: bool = False) -> Outcome:
        self.trips.append(runs)
        self._entered.release()
        # A bound, so that a test that forgot to release fails, not hangs.
        if not self._permits.acquire(timeout=10):  # pragma: no cover
            raise AssertionError("a trip was never released")
        return write_runs(fd, runs, sync, datasync)

    async def wait_entered(self) -> None:
        """Wait (in a thread of its own) until a trip has entered the gate."""
        # Bounded: a trip that never comes must fail the test, not hang it
        # (a thread's wait cannot be cancelled by the test's fail_after).
        if not await trio.to_thread.run_sync(self._entered.acquire, True, 10):
            raise AssertionError("no trip entered the gate")

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._permits.release()


@contextmanager
def gated_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedTrips]:
    gate = GatedTrips()
    monkeypatch.setattr(_positional, "write_runs", gate)
    try:
        yield gate
    finally:
        # Never leave a worker thread parked behind the test.
        gate.release(100)
