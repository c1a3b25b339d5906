"""Waiting: ``drain()`` (backpressure) and ``flush()`` (a barrier), and what wakes them.

A ``drain()`` that has to wait parks in ``_drain_lot`` until the buffer is
down to low water; a ``flush()`` waits for ``sent`` to reach the total
written when it was called (see the counters in ``_core.py``).  The sender
wakes them as bytes are accepted (``_progress`` in ``_sender.py``), and
``_finish`` wakes them all when the writer closes or breaks.
"""

from __future__ import annotations

from collections import deque

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled

from ._core import _CLOSED
from ._run_context import RUN_CONTEXT
from ._socket_fast_path import _SocketFastPath


class _Waiting(_SocketFastPath):
    """The waits, and the rules for when a waiter is let go.

    A waiter is let go when what it waits for is reached, or when the
    writer finishes; one woken by a finish before its target raises
    (``_raise_for_waiter``).  Cancelling a wait never changes the writer.
    """

    __slots__ = ()

    async def drain(self) -> None:
        """Apply backpressure: wait while the buffer is over the high-water mark.

        If more than :attr:`high_water` bytes are buffered, wait until at most
        :attr:`low_water` are; otherwise return at once.

        It is always a cancellation point, but it only yields to the scheduler
        when it waits: when the buffer is at or below high water it returns
        without letting other tasks run (an already-cancelled caller gets
        :exc:`trio.Cancelled`, though).  That is deliberate: a drain that
        always yielded would run the sender after every message and defeat
        coalescing.  So a task that loops ``write(); await drain()`` does not
        by itself let the sender run until high water is passed; any other
        checkpoint (a receive, a sleep, :meth:`flush`) does.

        Any number of tasks may wait at once.  Cancelling a waiting drain
        leaves the writer and its data untouched.

        Raises:
          trio.BrokenResourceError: the wrapped stream failed (now or before).
          trio.ClosedResourceError: the writer is closed (or was closed while
              waiting with bytes still unsent).
        """
        if self._state:
            self._raise_if_finished()
        if len(self._buf) + self._inflight > self._high_water and not self._push_now():
            await self._wait_for_low_water()
        elif RUN_CONTEXT is not None:
            if RUN_CONTEXT.task._cancel_status.effectively_cancelled:
                await checkpoint()  # raises Cancelled
        else:  # pragma: no cover - only on a trio whose internals moved
            await checkpoint_if_cancelled()

    async def flush(self) -> None:
        """Wait until every byte written before this call has been accepted by
        the wrapped stream's ``send_all``.

        A barrier, not a drain: it waits for all bytes written before the call
        (even while corked, which it overrides).  Bytes written after it are
        not waited for as such, though a flush may return only once they are
        sent too, when the sender merged them into the same ``send_all``.
        It is always a checkpoint.  Any number of tasks may wait at once.
        Cancelling it leaves the writer and its data untouched: the bytes are
        still sent.

        "Accepted by ``send_all``" means what the wrapped stream says it
        means; for a socket, that the kernel has the bytes, not that the peer
        received them.

        Raises:
          trio.BrokenResourceError: the wrapped stream failed before the bytes
              were accepted (or before this call).
          trio.ClosedResourceError: the writer is closed (or was forcefully
              closed while waiting).
        """
        if self._state:
            self._raise_if_finished()
        await self._wait_sent(self._sent + self._inflight + len(self._buf))

    # ------------------------------------------------------------------
    # How the waits wait, and what lets them go

    async def _wait_for_low_water(self) -> None:
        # The sender must not sit on a corked buffer while we wait for it.
        self._wake_sender()
        if self._guard is not None:
            self._guard.arm(True)
        # Low water is reached once this much has been sent, if nothing more
        # is written: a graceful close that sent it all satisfies the wait.
        target = self._sent + self._inflight + len(self._buf) - self._low_water
        await self._drain_lot.park()
        # Woken either at low water or because the writer finished.
        if self._state >= _CLOSED and self._sent < target:
            self._raise_for_waiter()

    async def _wait_send_all_might_not_block(self) -> None:
        """Wait until a ``send_all`` of one byte might not block (see
        ``wait_send_all_might_not_block`` in ``_writer.py`` for the rule).

        Yields at least once.  Cancelling it leaves the writer as it was: a
        call to the wrapped stream in progress is simply cancelled.
        """
        waited = False
        while True:
            state = self._state
            if state:
                if state >= _CLOSED:
                    if waited:
                        self._raise_for_waiter()
                    self._raise_if_finished()
                # EOF sent or pending, or closing: a send_all raises at once.
                break
            buffered = len(self._buf) + self._inflight
            if buffered < self._high_water:
                break
            waited = True
            if buffered:
                # send_all would queue its bytes, then wait for low water:
                # wait for the wrapped stream to accept some first, until
                # this much has been accepted (all of it, for high water 0).
                high = self._high_water
                target = self._sent + (buffered - high + 1 if high else buffered)
                event = self._room_event = trio.Event()
                # The sender must not sit on a corked buffer while we wait.
                self._wake_sender()
                try:
                    await event.wait()
                finally:
                    self._room_event = None
                if self._state >= _CLOSED and self._sent >= target:
                    # A graceful close sent what we waited for (as drain()).
                    return
            elif await self._probe_stream():
                # high_water is 0 and nothing is held: a send_all would hand
                # its bytes straight to the wrapped stream, which said yes.
                break
        if not waited:
            await cancel_shielded_checkpoint()

    async def _probe_stream(self) -> bool:
        """Wait in the wrapped stream's ``wait_send_all_might_not_block``.

        Returns True if it returned, False if it was cut short: the sender
        cancelled it to send (``_end_probe``), or the writer finished.  The
        sender only calls the wrapped stream's ``send_all`` once this call
        has ended, so the two never overlap.
        """
        scope = trio.CancelScope()
        done = trio.Event()
        self._probe = scope
        self._probe_done = done
        # The writer's _finish cancels the scope before it closes the stream,
        # so a close or failure of the writer comes out of the loop as the
        # writer's own error.  What the stream's call raises while the writer
        # is open propagates as it is.
        try:
            with scope:
                await self._stream.wait_send_all_might_not_block()
        finally:
            self._probe = None
            self._probe_done = None
            done.set()
        return not scope.cancelled_caught

    def _wake_drainers_if_low(self) -> None:
        if self._drain_lot and len(self._buf) + self._inflight <= self._low_water:
            self._drain_lot.unpark_all()

    async def _wait_sent(self, target: int) -> None:
        if self._sent >= target:
            await checkpoint()
            return
        waiters = self._flush_waiters
        if waiters is None:
            waiters = self._flush_waiters = deque()
        if waiters and waiters[-1][0] == target:
            event = waiters[-1][1]
        else:
            event = trio.Event()
            waiters.append((target, event))
        self._wake_sender()
        # Counted while waiting, so that the sender overrides corks only for
        # flushes still waiting, not for cancelled ones.
        self._flush_waiting += 1
        try:
            await event.wait()
        finally:
            self._flush_waiting -= 1
        if self._sent < target:
            # Only _finish sets an event early.
            self._raise_for_waiter()

    def _wake_flushers(self) -> None:
        """Let go the flush() waits whose target ``sent`` has now reached."""
        waiters = self._flush_waiters
        sent = self._sent
        while waiters and waiters[0][0] <= sent:
            waiters.popleft()[1].set()
