"""Protection against slow consumers: a hard buffer limit and a stall clock.

A server writing to many clients must survive the one that stops reading.
asyncio, Node and Netty let the buffer grow without bound when the user
forgets to wait for backpressure; Redis protects itself with a hard limit
and a soft limit held for some seconds (``client-output-buffer-limit``).
The writer offers both: ``max_buffer`` (with a policy: refuse the write, or
abort the connection) and ``stall_timeout`` (abort when the buffer has stayed
over high water with nothing sent for that long).
"""

from __future__ import annotations

import math
from typing import Literal, final

import trio

#: What a write that would pass ``max_buffer`` does: ``"raise"`` refuses it
#: with :exc:`BufferLimitError` and leaves the writer usable; ``"abort"``
#: breaks the writer and closes the connection.
OverflowPolicy = Literal["raise", "abort"]


class BufferLimitError(Exception):
    """A write would have taken the writer past its ``max_buffer``.

    With the ``"raise"`` policy, :meth:`~BufferedWriter.write` raises this and
    queues nothing of that write; the writer stays usable.  With
    ``"abort"``, it is the ``__cause__`` of the
    :exc:`trio.BrokenResourceError` that every call raises from then on.
    """


class StallTimeoutError(Exception):
    """The writer stayed over high water with nothing sent for ``stall_timeout``
    seconds, and was aborted: the ``__cause__`` of its
    :exc:`trio.BrokenResourceError`."""


@final
class StallClock:
    """The sender's guard: a cancel scope around each send, and the stall clock.

    The clock runs while the writer applies backpressure (more than high
    water buffered, or a ``drain()`` still waiting for low water) and the
    wrapped stream accepts nothing; any bytes that get through restart it.  It is
    looked at when a send starts, when bytes get through, and when a
    ``drain()`` has to wait; a writer that never drains is caught by
    ``max_buffer`` instead.  When it runs out, the scope cancels the send.
    The same scope lets an overflow abort interrupt a send that is stuck.
    """

    __slots__ = ("_scope", "_since", "timeout")

    def __init__(self, timeout: float | None) -> None:
        #: Seconds over high water with no progress before aborting, or None.
        self.timeout = timeout
        self._scope: trio.CancelScope | None = None
        self._since: float | None = None

    def start_send(self, backpressured: bool) -> trio.CancelScope:
        """Return the cancel scope for a send that starts now."""
        self._scope = trio.CancelScope()
        self.arm(backpressured)
        return self._scope

    def end_send(self) -> None:
        self._scope = None

    def arm(self, backpressured: bool) -> None:
        """Start the clock if backpressure holds and it is not running."""
        if not backpressured:
            self._since = None
        elif self._since is None:
            self._since = trio.current_time()
        self._set_deadline()

    def progress(self, backpressured: bool) -> None:
        """Bytes got through: restart the clock (or stop it, without backpressure)."""
        self._since = trio.current_time() if backpressured else None
        self._set_deadline()

    def abort(self) -> None:
        """Interrupt the send in progress, if any."""
        if self._scope is not None:
            self._scope.cancel()

    @property
    def stalled_for(self) -> float:
        """Seconds the clock has been running (0.0 if it is not)."""
        if self._since is None:
            return 0.0
        return trio.current_time() - self._since

    def _set_deadline(self) -> None:
        scope = self._scope
        if scope is None:
            return
        if self._since is None or self.timeout is None:
            scope.deadline = math.inf
        else:
            scope.deadline = self._since + self.timeout
