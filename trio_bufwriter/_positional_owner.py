"""The owner task of a :class:`~trio_bufwriter.PositionalWriter`: batches of
pieces, planned by offset, written in one worker-thread trip each."""

from __future__ import annotations

import trio
from trio.lowlevel import checkpoint_if_cancelled

from ._positional_core import _PositionalCore
from ._pwrite import Outcome, write_runs
from ._ranges import plan_batch


class _PositionalOwner(_PositionalCore):
    """The owner task (:meth:`run`) and the batches it writes."""

    __slots__ = ()

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
        if self._started:
            raise RuntimeError("this PositionalWriter's owner task was already started")
        self._started = True
        task_status.started()
        try:
            await self._write_all()
        except BaseException as exc:
            if self._failure is None:
                if isinstance(exc, Exception):
                    self._fail(exc, [], "the PositionalWriter's owner task failed")
                else:
                    # As the stream writer's sender: no OSError to chain.
                    what = "cancelled" if isinstance(exc, trio.Cancelled) else "interrupted"
                    self._fail(None, [], f"the PositionalWriter's owner task was {what}")
            raise
        finally:
            self._owner_done.set()

    async def _write_all(self) -> None:
        """Write batches until closing with nothing left, or broken."""
        while self._failure is None:
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
