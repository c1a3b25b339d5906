"""PositionalWriter: many tasks' out-of-order writes into one file, coalesced.

One class: the state, counters and failure (shared with the stream writers
through :class:`~._lifecycle.Lifecycle`), the owner task that takes the
queued pieces and writes them in batches, one worker-thread trip each
(``_ranges.py`` plans a batch, ``_pwrite.py`` writes it), and what users
call: ``write_at``, ``drain``, ``flush``, ``aclose``.
"""

from __future__ import annotations

import operator
import os
from typing import Final, final

import trio
from trio.lowlevel import ParkingLot, checkpoint, checkpoint_if_cancelled

from ._buffers import BytesLike, byte_view
from ._lifecycle import Lifecycle
from ._pwrite import Outcome, write_runs
from ._ranges import Range, coalesce, plan_batch
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


@final
class PositionalWriter(Lifecycle, trio.abc.AsyncResource):
    """Writes at file offsets from any number of tasks, merged into few system calls.

    :meth:`write_at` never blocks: it queues the piece.  One owner task
    (:meth:`run`) repeatedly takes the queued pieces (oldest first, up to
    half of *high_water* at a time), sorts them by offset, drops bytes a
    later write overwrote, gathers neighbours, and issues the whole batch's
    ``pwritev`` calls in a single trip to a worker thread.  The file ends up
    exactly as if the writes had been applied one by one in call order.

    Memory is bounded by backpressure on the bytes accepted and not yet
    written: :meth:`drain` waits while more than *high_water* are pending.

    Normally made by :func:`open_positional_writer`, which opens the file and
    runs the owner task.  To run it in a nursery of your own::

        writer = PositionalWriter(fd)
        await nursery.start(writer.run)
        ...
        await writer.aclose()

    Args:
      fd: A file descriptor open for writing, not in append mode (``pwrite``
        ignores the offset on ``O_APPEND`` descriptors on Linux): one in
        append mode is refused with :exc:`ValueError`.
      high_water: :meth:`drain` waits while more bytes than this are pending.
      low_water: ... until at most this many are.  Defaults to a quarter of
        *high_water*.
      fsync_on_close: :meth:`aclose` calls ``os.fsync`` after the last write,
        so that a clean close means the data is on stable storage.
      fdatasync: Sync with ``os.fdatasync`` instead of ``os.fsync`` (in
        ``flush(fsync=True)`` and ``fsync_on_close``), where the platform has
        it: it skips metadata that reading the data back does not need
        (timestamps), and still syncs a changed file size.
      close_fd: :meth:`aclose` closes *fd*.  Otherwise the descriptor is the
        caller's and is left open.

    Raises:
      TypeError: a water mark is not an int.
      ValueError: a water mark is negative, or *low_water* > *high_water*;
          or *fd* is in append mode (``O_APPEND``): open the file without it.
      NotImplementedError: the platform has no ``os.pwrite`` (Windows).

    A constructor that raises leaves *fd* open, ``close_fd`` or not: it is
    still the caller's.
    """

    __slots__ = (
        "_batches",
        "_bytes_accepted",
        "_bytes_superseded",
        "_bytes_written",
        "_close_fd",
        "_done_seq",
        "_drain_lot",
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
        "_sync_wanted",
        "_synced_seq",
        "_syscalls",
        "_unwritten",
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
        super().__init__()
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
        self._owner_done = trio.Event()
        # The failure's ranges and what failed (the message and cause are
        # the Lifecycle's).
        self._unwritten: list[Range] = []
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
        return super().failure  # type: ignore[return-value]

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
            error=self._describe_failure(),
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
        if self._message:  # a failure before this one
            unwritten += self._unwritten
            if self._cause is not None or cause is None:
                cause, what = self._cause, self._failure_what
        if isinstance(cause, OSError) and what in ("pwrite", "fsync", "fdatasync", "close"):
            what = f"{what} failed ({cause})"
        unwritten = coalesce(unwritten)
        self._failure_what = what
        self._unwritten = unwritten
        self._set_failure(cause, f"{what}; {_describe(unwritten)}")
        self._pending -= self._queued
        self._queued = 0
        self._pieces = []
        self._wake_everyone()

    def _make_failure(self, message: str) -> PositionalWriteError:
        return PositionalWriteError(message, list(self._unwritten))

    def _raise_not_writable(self) -> None:
        """Raise why new work is refused (the state is not OPEN)."""
        self._raise_if_finished()
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

    # ------------------------------------------------------------------
    # The owner task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the owner task until the writer is closed or broken.

        It takes the queued pieces (oldest first, up to half of high water),
        plans them (sort, drop overwritten bytes, gather neighbours) and
        writes the batch in one worker-thread trip; ``flush(fsync=True)``
        requests ride along in the same trip.  Start it with
        ``await nursery.start(writer.run)``.

        A trip in a worker thread is never abandoned: cancelling the owner
        lets it finish and records its result, then the writer becomes
        broken, with the pieces still queued listed as unwritten: its
        :exc:`PositionalWriteError` says "the PositionalWriter's owner task
        was cancelled" (or "interrupted", for a ``KeyboardInterrupt``), with
        no ``__cause__``, as no system call failed.  Any other exception
        that escapes it is chained as the cause.

        Raises:
          RuntimeError: it was already started.
        """
        self._enter_run()
        task_status.started()
        try:
            await self._write_all()
        except BaseException as exc:
            if not self._message:
                if isinstance(exc, Exception):
                    self._fail(exc, [], "the PositionalWriter's owner task failed")
                else:
                    # As the stream writer's sender: no OSError to chain.
                    what = self._how_task_ended(exc)
                    self._fail(None, [], f"the PositionalWriter's owner task was {what}")
            raise
        finally:
            self._owner_done.set()

    async def _write_all(self) -> None:
        """Write batches until closing with nothing left, or broken."""
        while not self._message:
            if self._pieces or self._sync_wanted > self._synced_seq:
                await self._write_batch()
            elif self._state:
                return
            else:
                # A flag rather than len(ParkingLot): write_at checks it per piece.
                self._owner_parked = True
                await self._owner_lot.park()

    def _take_batch(self) -> list[tuple[int, bytes]]:
        """Take the queued pieces, oldest first, up to half of high water (at least one)."""
        pieces = self._pieces
        limit = self._high_water // 2
        if self._queued <= limit:
            self._pieces = []
            taken = self._queued
        else:
            count = taken = 0
            for _, data in pieces:
                if count and taken + len(data) > limit:
                    break
                count += 1
                taken += len(data)
            self._pieces = pieces[count:]
            pieces = pieces[:count]
        self._queued -= taken
        # Room in the queue: producers may refill it while this batch is written.
        if self._drain_lot and self._has_room():
            self._drain_lot.unpark_all()
        return pieces

    async def _write_batch(self) -> None:
        # A pending cancellation must hit here, before the batch is taken and
        # waiting drains are told there is room, not in to_thread.run_sync's
        # own check (which yields first, letting those drains return).
        await checkpoint_if_cancelled()
        batch = self._take_batch()
        target = self._done_seq + len(batch)
        # An fsync rides along once the batch reaches every write it is for.
        sync = self._synced_seq < self._sync_wanted <= target
        plan = plan_batch(batch) if batch else None
        runs = plan.runs if plan is not None else []
        try:
            # Not abandonable: the thread is using self.fd, and a descriptor
            # must never be closed (and perhaps reused) under a write in
            # flight.  A cancellation arriving during the trip is delivered
            # at the owner's next checkpoint instead.
            outcome: Outcome = await trio.to_thread.run_sync(
                write_runs, self.fd, runs, sync, self._fdatasync, abandon_on_cancel=False
            )
        except BaseException:
            # Cancelled before the thread started (or the trip itself blew
            # up): none of the batch is recorded as written.
            self._pieces[:0] = batch
            self._queued += sum(len(data) for _, data in batch)
            raise
        self._hops += 1
        self._batches += 1 if batch else 0
        self._runs += outcome.runs_written
        self._syscalls += outcome.syscalls
        self._bytes_written += outcome.bytes_written
        if plan is not None:
            self._bytes_superseded += plan.superseded
        self._pending -= sum(len(data) for _, data in batch)
        if outcome.error is not None:
            if outcome.failed_call != "pwrite":
                self._done_seq = target  # the writes are in: only the sync failed
            self._fail(outcome.error, outcome.unwritten, outcome.failed_call)
            return
        self._done_seq = target
        if sync:
            self._fsyncs += 1
            self._synced_seq = target
        self._wake_waiters()

    # ------------------------------------------------------------------
    # Failure and wakeups

    def write_at(self, offset: int, data: BytesLike) -> None:
        """Queue *data* to be written at byte *offset* of the file.

        Synchronous: it never blocks and never yields.  *data* is any object
        with a C-contiguous buffer, of ``memoryview(data).nbytes`` bytes, as
        for ``write()``.  ``bytes`` are kept by reference; any other buffer
        (``bytearray``, ``memoryview``, an ``array``, an ``mmap``) is copied,
        so the caller may reuse it at once.  Where
        writes overlap, the later call's bytes win, exactly as if every write
        had been applied in call order.  Writing past the end of the file
        extends it (with a hole, where the file system supports them).

        Raises:
          TypeError: *offset* is not an integer, or *data* is not a
              C-contiguous bytes-like object (``str``, ``int``, ``None``, a
              non-contiguous ``memoryview``...).  Nothing is queued.
          ValueError: *offset* is negative, or the write would end past the
              largest file offset.
          PositionalWriteError: an earlier write failed.
          trio.ClosedResourceError: :meth:`aclose` has been called.
        """
        if self._state:
            self._raise_not_writable()
        if type(offset) is not int:
            if isinstance(offset, bool) or not hasattr(offset, "__index__"):
                raise TypeError(f"offset must be an int, not {type(offset).__name__}")
            offset = operator.index(offset)
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        if type(data) is not bytes:
            data = byte_view(data, "write_at()").tobytes()
        size = len(data)
        if offset + size > _MAX_FILE_OFFSET:
            raise ValueError(f"a write of {size} bytes at {offset} ends past the largest offset")
        self._write_at_calls += 1
        if not size:
            return
        self._pieces.append((offset, data))
        self._seq += 1
        self._bytes_accepted += size
        self._queued += size
        self._pending += size
        if self._pending > self._peak_pending:
            self._peak_pending = self._pending
        if self._owner_parked:
            self._owner_parked = False
            self._owner_lot.unpark()

    async def drain(self) -> None:
        """Apply backpressure: wait while more than :attr:`high_water` bytes are pending.

        If at most :attr:`high_water` bytes are pending, return at once.
        Otherwise wait until pending is back at or under *high_water* and at
        most :attr:`low_water` bytes are queued for the owner task (the rest
        being in a worker thread already).  The owner takes at most half of
        *high_water* into a trip, so producers refill the queue while the
        previous batch is being written, rather than taking turns with it.
        Like
        :meth:`BufferedWriter.drain`, it is always a cancellation point but
        yields only when it waits, so that a task looping ``write_at(); await
        drain()`` lets pieces pile up into large batches.  Cancelling a
        waiting drain leaves the writer and its pieces untouched.

        The bound it gives: producers that call ``await drain()`` *before*
        each :meth:`write_at` keep :attr:`pending` at most one piece over
        *high_water* (as long as *low_water* plus one piece per producer fits
        under *high_water*).  Producers that write first and drain after may
        each hold one piece in the writer while they wait, so the bound is
        one piece per producer over *high_water*.

        Raises:
          PositionalWriteError: a write failed (now or before).
          trio.ClosedResourceError: the writer is closed.
        """
        if self._state:
            self._raise_not_writable()
        if self._pending <= self._high_water:
            await checkpoint_if_cancelled()
            return
        while True:
            # A failure or close first: either empties pending, which would
            # otherwise look like room.
            self._raise_if_failed_or_closed()
            if self._has_room():
                return
            await self._drain_lot.park()

    async def flush(self, *, fsync: bool = False) -> None:
        """Wait until every :meth:`write_at` before this call has reached the OS.

        "Reached the OS" means the ``pwrite`` returned: other readers of the
        file see the bytes, but a power failure may still lose them.  With
        *fsync*, wait also for an ``os.fsync`` of the file that started after
        those writes, which makes them durable.

        It is always a checkpoint.  Any number of tasks may wait at once.
        Cancelling it abandons only the wait: the pieces are still written
        (and the fsync still runs, if it was asked for).

        Raises:
          PositionalWriteError: a write (or the fsync) failed before this
              call's writes were done.
          trio.ClosedResourceError: the writer is closed.
        """
        if self._state:
            self._raise_not_writable()
        target = self._seq
        if fsync and target > self._sync_wanted:
            self._sync_wanted = target
        if self._flushed(target, fsync):
            await checkpoint()
            return
        while True:
            waiter = (target, fsync, trio.Event())
            self._flush_waiters.append(waiter)
            self._wake_owner()
            try:
                await waiter[2].wait()
            finally:
                self._flush_waiters.remove(waiter)
            if self._flushed(target, fsync):
                return
            self._raise_if_failed_or_closed()

    def _flushed(self, target: int, fsync: bool) -> bool:
        return self._done_seq >= target and (not fsync or self._synced_seq >= target)

    # ------------------------------------------------------------------
    # Closing

    async def aclose(self) -> None:
        """Write everything pending, then close the file descriptor if this writer owns it.

        With ``fsync_on_close``, an ``os.fsync`` follows the last write.
        Later calls to anything but :meth:`aclose` and :meth:`statistics`
        raise :exc:`trio.ClosedResourceError`.

        If cancelled, pieces not yet handed to a worker thread are discarded;
        a trip already in a worker thread cannot be interrupted, so aclose
        waits for it (shielded) before closing the descriptor.  Nothing is
        recorded as written that was not.  Then :exc:`trio.Cancelled`
        propagates.  A call made while another is closing waits for the
        same writes; one made after the close returns at once.

        Raises:
          PositionalWriteError: a write failed and no call had reported it
              yet; the descriptor is closed all the same.
        """
        if self._state is WriterState.CLOSED:
            await checkpoint()
            return
        if self._state is WriterState.OPEN:
            self._state = WriterState.CLOSING
            if self._fsync_on_close and self._seq > self._sync_wanted:
                self._sync_wanted = self._seq
        self._wake_owner()
        try:
            if not self._run_entered:
                # Nobody ever ran the owner: do its work here.
                self._run_entered = True
                try:
                    await self._write_all()
                finally:
                    self._owner_done.set()
            await self._owner_done.wait()
        except BaseException:
            self._discard_queued()
            with trio.CancelScope(shield=True):
                await self._owner_done.wait()
                await self._close()
            raise
        with trio.CancelScope(shield=True):
            await self._close()
        if self._message and not self._reported:
            self._raise_failure()

    async def _close(self) -> None:
        """Enter CLOSED, wake every waiter, and close the descriptor if it is ours."""
        self._state = WriterState.CLOSED
        self._wake_everyone()
        if self._close_fd:
            self._close_fd = False
            try:
                # Closing can block (NFS flushes on close), so not in the event loop.
                await trio.to_thread.run_sync(os.close, self.fd)
            except OSError as exc:
                # Where close reports a write error (NFS), the data may be lost.
                self._fail(exc, [], "close")

    def _discard_queued(self) -> None:
        """Give up what no trip has taken yet: aclose() was cancelled.

        The queued pieces become a failure (left for a graceful aclose() to
        report: the cancelled one raises Cancelled), and no fsync that was
        asked for starts a trip of its own, so that the owner stops after the
        trip in flight.
        """
        self._sync_wanted = self._synced_seq
        if self._pieces:
            self._fail(None, [], "aclose() was cancelled before these writes reached a trip")

    # ------------------------------------------------------------------
    # The owner task
