"""The worker-thread side of the positional writer: one batch's system calls.

Everything here runs in a worker thread, in one trip per batch, and touches
nothing of the writer's: it takes the planned runs and returns an
:class:`Outcome` that the owner task applies when the thread is done.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import final

from ._ranges import Range, Run


@final
@dataclass(slots=True)
class Outcome:
    """What one trip to the worker thread did."""

    #: Bytes the kernel accepted.
    bytes_written: int = 0
    #: ``pwrite``/``pwritev`` calls made (a failing one included).
    syscalls: int = 0
    #: Runs written to their last byte.
    runs_written: int = 0
    #: Whether the requested sync (``fsync`` or ``fdatasync``) ran and succeeded.
    synced: bool = False
    #: The first error, after which nothing more was attempted.
    error: OSError | None = None
    #: The call that raised :attr:`error`: ``"pwrite"``, ``"fsync"`` or ``"fdatasync"``.
    failed_call: str = "pwrite"
    #: The ranges of the batch that were not written because of :attr:`error`.
    unwritten: list[Range] = field(default_factory=list)


def _pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
    """One ``pwritev`` of *buffers* at *offset* (one ``pwrite`` for one buffer).

    Where there is no ``os.pwritev`` (macOS before 11), the first buffer
    only: the caller's loop goes on with the rest.  It is looked up here, at
    each call, so that the tests can take it away.
    """
    if len(buffers) == 1:
        return os.pwrite(fd, buffers[0], offset)
    pwritev: Callable[[int, list[memoryview], int], int] | None = getattr(os, "pwritev", None)
    if pwritev is None:
        return os.pwrite(fd, buffers[0], offset)
    return pwritev(fd, buffers, offset)


def _advance(buffers: list[memoryview], done: int) -> list[memoryview]:
    """The buffers left after the first *done* bytes of *buffers* were written."""
    for index, buffer in enumerate(buffers):
        if done < len(buffer):
            return [buffer[done:], *buffers[index + 1 :]]
        done -= len(buffer)
    return []


def write_runs(fd: int, runs: list[Run], sync: bool, datasync: bool = False) -> Outcome:
    """Write every run at its offset, each to the last byte, then sync if *sync*.

    The sync is ``os.fdatasync`` with *datasync* (where there is one), else
    ``os.fsync``.

    A short write (a signal, a quota, the 2 GiB cap per call) is continued
    from where it stopped.  The first error stops the trip: the outcome names
    the ranges not written, and no later run is attempted, so the file never
    holds a later write's bytes without an earlier one's that the caller was
    told succeeded.
    """
    outcome = Outcome()
    for index, run in enumerate(runs):
        offset = run.offset
        buffers = run.buffers
        remaining = run.length
        try:
            while remaining:
                outcome.syscalls += 1  # counted before: a failing call is one too
                done = _pwritev(fd, buffers, offset)
                if done <= 0:
                    # Only a zero-length request may write nothing; never spin.
                    raise OSError(errno.EIO, "the positional write made no progress")
                outcome.bytes_written += done
                offset += done
                remaining -= done
                if remaining:
                    buffers = _advance(buffers, done)
        except OSError as exc:
            outcome.error = exc
            outcome.unwritten = [(offset, offset + remaining)]
            outcome.unwritten += [(later.offset, later.end) for later in runs[index + 1 :]]
            return outcome
        outcome.runs_written += 1
    if sync:
        datasync = datasync and hasattr(os, "fdatasync")
        try:
            if datasync:
                os.fdatasync(fd)
            else:
                os.fsync(fd)
        except OSError as exc:
            outcome.error = exc
            outcome.failed_call = "fdatasync" if datasync else "fsync"
            return outcome
        outcome.synced = True
    return outcome
