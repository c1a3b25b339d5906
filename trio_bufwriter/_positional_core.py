"""The state of a :class:`~trio_bufwriter.PositionalWriter`, and how it fails.

The positional writer is one class built as a chain of layers, as the
stream writer is (see ``_writer.py``), each a subclass of the one before:

* this module: the error it raises, its state and counters (all of its
  ``__slots__``), the settings and statistics, and how it fails;
* ``_positional_owner.py``: the owner task, which takes the queued pieces
  and writes them in batches, one worker-thread trip each;
* ``_positional.py``: :class:`~trio_bufwriter.PositionalWriter` itself, with
  what its users call: ``write_at``, ``drain``, ``flush``, ``aclose``.
"""

from __future__ import annotations

import operator
import os
from typing import Final, final

import trio
from trio.lowlevel import ParkingLot

from ._ranges import Range, coalesce
from ._state import PositionalStatistics, WriterState
from ._water import water_marks

#: The default budget of bytes accepted by :meth:`PositionalWriter.write_at`
#: and not yet written, above which :meth:`~PositionalWriter.drain` waits.
DEFAULT_POSITIONAL_HIGH_WATER: Final = 8 * 1024 * 1024

# An off_t is signed 64-bit; os.pwrite raises OverflowError past it, far
# from the call that caused it.  Refuse such writes in write_at instead.
_MAX_FILE_OFFSET: Final = (1 << 63) - 1


@final
class PositionalWriteError(trio.BrokenResourceError):
    """A positional write failed; the writer is broken.

    Its ``__cause__`` is the :exc:`OSError` the system call raised (for
    example ``ENOSPC``, ``EFBIG``, ``EIO``), or None when no system call
    failed: the owner task was cancelled or interrupted, or a cancelled
    ``aclose()`` discarded queued pieces (the message says which).
    :attr:`unwritten` lists the byte ranges of accepted writes that are not
    in the file.  Every later
    call on the writer raises a new :exc:`PositionalWriteError` with the same
    cause and ranges.
    """

    #: ``(start, end)`` byte ranges (end exclusive), sorted and disjoint, of
    #: accepted writes that did not reach the file.  When an ``fsync``
    #: failed, only writes still queued behind it are listed: the written
    #: ones reached the file, but which of them are durable is unknown.
    unwritten: list[Range]

    def __init__(self, message: str, unwritten: list[Range]) -> None:
        super().__init__(message)
        self.unwritten = unwritten


def _refuse_append_mode(fd: int) -> None:
    """Raise :exc:`ValueError` if *fd* is in append mode (``pwrite`` would
    ignore the offsets).  A descriptor whose flags cannot be read (not open,
    or negative) is left to fail at the first write."""
    import fcntl  # (POSIX only, as os.pwrite, checked before this)

    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except (OSError, ValueError):  # (ValueError: a negative number)
        return
    if flags & os.O_APPEND:
        raise ValueError(
            f"file descriptor {fd} is in append mode (O_APPEND): every write would "
            "land at the end of the file, whatever its offset; open the file "
            "without append mode (os.O_WRONLY, or mode 'r+b' rather than 'ab')"
        )


def _describe(ranges: list[Range], limit: int = 5) -> str:
    if not ranges:
        return "no accepted write was left unwritten"
    total = sum(end - start for start, end in ranges)
    shown = ", ".join(f"[{start}, {end})" for start, end in ranges[:limit])
    more = f" and {len(ranges) - limit} more" if len(ranges) > limit else ""
    return f"{total} bytes in {len(ranges)} ranges not written: {shown}{more}"


def _describe_error(failure: PositionalWriteError) -> str:
    cause = failure.__cause__
    if cause is None:
        return str(failure)
    return f"{failure}: {type(cause).__name__}: {cause}"


class _PositionalCore(trio.abc.AsyncResource):
    """The positional writer's state, settings, statistics and failure.

    It holds all of the writer's ``__slots__`` (the layers above add methods
    only, with ``__slots__ = ()``).
    """

    __slots__ = (
        "_batches",
        "_bytes_accepted",
        "_bytes_superseded",
        "_bytes_written",
        "_close_fd",
        "_done_seq",
        "_drain_lot",
        "_failure",
        "_failure_reported",
        "_failure_what",
        "_fdatasync",
        "_flush_waiters",
        "_fsync_on_close",
        "_fsyncs",
        "_high_water",
        "_hops",
        "_low_water",
        "_owner_done",
        "_owner_lot",
        "_owner_parked",
        "_peak_pending",
        "_pending",
        "_pieces",
        "_queued",
        "_runs",
        "_seq",
        "_started",
        "_state",
        "_sync_wanted",
        "_synced_seq",
        "_syscalls",
        "_write_at_calls",
        "fd",
    )

    def __init__(
        self,
        fd: int,
        *,
        high_water: int = DEFAULT_POSITIONAL_HIGH_WATER,
        low_water: int | None = None,
        fsync_on_close: bool = False,
        fdatasync: bool = False,
        close_fd: bool = False,
    ) -> None:
        if not hasattr(os, "pwrite"):  # Windows
            raise NotImplementedError("PositionalWriter needs os.pwrite (a POSIX system)")
        high_water, low_water = water_marks(high_water, low_water, DEFAULT_POSITIONAL_HIGH_WATER)
        if isinstance(fd, bool):
            raise TypeError("fd must be a file descriptor (an int), not a bool")
        fd = operator.index(fd)
        _refuse_append_mode(fd)
        #: The file descriptor written to.
        self.fd = fd
        self._high_water = high_water
        self._low_water = low_water
        self._fsync_on_close = fsync_on_close
        self._fdatasync = fdatasync
        self._close_fd = close_fd
        self._state = WriterState.OPEN
        # Pieces accepted since the owner's last trip, in call order.
        self._pieces: list[tuple[int, bytes]] = []
        # Bytes in _pieces; _pending adds the batch in a worker thread.
        self._queued = 0
        self._pending = 0
        self._peak_pending = 0
        # Sequence numbers count non-empty write_at calls.  Every piece up to
        # _done_seq has reached the OS; up to _synced_seq, an fsync followed.
        self._seq = 0
        self._done_seq = 0
        self._synced_seq = 0
        self._sync_wanted = 0
        self._flush_waiters: list[tuple[int, bool, trio.Event]] = []
        self._owner_lot = ParkingLot()
        self._owner_parked = False
        self._drain_lot = ParkingLot()
        self._started = False
        self._owner_done = trio.Event()
        self._failure: PositionalWriteError | None = None
        self._failure_reported = False
        self._failure_what = ""
        self._write_at_calls = 0
        self._bytes_accepted = 0
        self._bytes_written = 0
        self._bytes_superseded = 0
        self._runs = 0
        self._syscalls = 0
        self._hops = 0
        self._batches = 0
        self._fsyncs = 0

    # ------------------------------------------------------------------
    # Introspection

    @property
    def high_water(self) -> int:
        """:meth:`drain` waits while more than this many bytes are pending."""
        return self._high_water

    @property
    def low_water(self) -> int:
        """A waiting :meth:`drain` returns once at most this many are queued
        for the owner task (and pending is back under :attr:`high_water`)."""
        return self._low_water

    @property
    def pending(self) -> int:
        """Bytes accepted by :meth:`write_at` that have not reached the OS yet."""
        return self._pending

    @property
    def state(self) -> WriterState:
        """:attr:`~WriterState.OPEN`, :attr:`~WriterState.CLOSING`,
        :attr:`~WriterState.CLOSED` or :attr:`~WriterState.BROKEN`."""
        return self._state

    @property
    def failure(self) -> PositionalWriteError | None:
        """Why the writer broke, or None if it never did.

        None while the writer is healthy, and also once it is closed
        normally (closed is not a failure: :meth:`write_at` then raises
        :exc:`trio.ClosedResourceError`).  Once a write, an fsync or the
        close of the descriptor failed (or the owner task was cancelled, or
        a cancelled :meth:`aclose` discarded queued pieces), it is the
        :exc:`PositionalWriteError` the writer's calls raise: the same
        message, :attr:`~PositionalWriteError.unwritten` ranges and
        ``__cause__``; a new exception object on each read.  It stays set
        after :meth:`aclose`.

        Reading it does not count as reporting the failure: :meth:`aclose`
        still raises one that no call has raised.
        """
        failure = self._failure
        return None if failure is None else self._new_error(failure)

    def statistics(self) -> PositionalStatistics:
        """A snapshot of the writer's counters."""
        return PositionalStatistics(
            write_at_calls=self._write_at_calls,
            bytes_accepted=self._bytes_accepted,
            pending=self._pending,
            peak_pending=self._peak_pending,
            bytes_written=self._bytes_written,
            bytes_superseded=self._bytes_superseded,
            runs=self._runs,
            syscalls=self._syscalls,
            thread_hops=self._hops,
            batches=self._batches,
            fsyncs=self._fsyncs,
            state=self._state,
            error=None if self._failure is None else _describe_error(self._failure),
        )

    # ------------------------------------------------------------------
    # Writing

    def _has_room(self) -> bool:
        """Whether a waiting :meth:`drain` may return."""
        return self._queued <= self._low_water and self._pending <= self._high_water

    def _fail(self, cause: BaseException | None, unwritten: list[Range], what: str) -> None:
        """Break the writer (or add to how it broke): what failed, and the ranges lost.

        The queued pieces are dropped and listed too.  A later failure adds
        its ranges to an earlier one's, and keeps the earlier cause unless
        that one had none; it is reported anew either way.
        """
        unwritten = unwritten + [(offset, offset + len(data)) for offset, data in self._pieces]
        previous = self._failure
        if previous is not None:
            unwritten += previous.unwritten
            if previous.__cause__ is not None or cause is None:
                cause, what = previous.__cause__, self._failure_what
        if isinstance(cause, OSError) and what in ("pwrite", "fsync", "fdatasync", "close"):
            what = f"{what} failed ({cause})"
        unwritten = coalesce(unwritten)
        self._failure_what = what
        self._failure = PositionalWriteError(f"{what}; {_describe(unwritten)}", unwritten)
        self._failure.__cause__ = cause
        self._failure_reported = False
        self._pending -= self._queued
        self._queued = 0
        self._pieces = []
        if self._state is not WriterState.CLOSED:
            self._state = WriterState.BROKEN
        self._wake_everyone()

    def _new_error(self, failure: PositionalWriteError) -> PositionalWriteError:
        error = PositionalWriteError(str(failure), list(failure.unwritten))
        error.__cause__ = failure.__cause__
        return error

    def _raise_if_finished(self) -> None:
        """Raise why new work is refused (the state is not OPEN)."""
        if self._failure is not None and self._state is WriterState.BROKEN:
            self._failure_reported = True
            raise self._new_error(self._failure)
        raise trio.ClosedResourceError("the PositionalWriter is closed")

    def _raise_if_failed_or_closed(self) -> None:
        """Raise why a waiter's wait is over (a waiter keeps waiting through CLOSING)."""
        if self._state is WriterState.BROKEN or self._state is WriterState.CLOSED:
            self._raise_if_finished()

    def _wake_owner(self) -> None:
        self._owner_lot.unpark_all()

    def _wake_waiters(self) -> None:
        if self._drain_lot and self._has_room():
            self._drain_lot.unpark_all()
        for target, sync, event in self._flush_waiters:
            if self._done_seq >= target and (not sync or self._synced_seq >= target):
                event.set()

    def _wake_everyone(self) -> None:
        self._owner_lot.unpark_all()
        self._drain_lot.unpark_all()
        for _, _, event in self._flush_waiters:
            event.set()
