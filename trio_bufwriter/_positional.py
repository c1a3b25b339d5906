"""PositionalWriter: many tasks' out-of-order writes into one file, coalesced.

What its users call; the state is in ``_positional_core.py`` and the owner
task in ``_positional_owner.py``.
"""

from __future__ import annotations

import operator
import os
from typing import final

import trio
from trio.lowlevel import checkpoint, checkpoint_if_cancelled

from ._buffers import BytesLike, byte_view
from ._positional_core import _MAX_FILE_OFFSET
from ._positional_owner import _PositionalOwner
from ._state import WriterState


@final
class PositionalWriter(_PositionalOwner):
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

    __slots__ = ()

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
            self._raise_if_finished()
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
            self._raise_if_finished()
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
            self._raise_if_finished()
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
            if not self._started:
                # Nobody ever ran the owner: do its work here.
                self._started = True
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
        failure = self._failure
        if failure is not None and not self._failure_reported:
            self._failure_reported = True
            raise self._new_error(failure)

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
