"""The buffered writer: a synchronous ``write()`` in front of one coalescing sender task.

Everything the writer knows is kept as byte counters that only grow::

    bytes written = sent + inflight + len(buffer) + lost

``sent`` is what the wrapped stream's ``send_all`` has accepted, ``inflight``
what the sender has taken out of the buffer and is sending now, ``lost`` what
was still held when the writer broke or was closed.  ``flush()`` waits for
``sent`` to reach the total written when it was called; ``drain()`` looks at
``inflight + len(buffer)``.  Sequence numbers like these cannot miss a wakeup
the way a boolean "flushed" event can: a waiter compares numbers when it wakes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, final

import trio
from trio.lowlevel import (
    Abort,
    ParkingLot,
    RaiseCancelT,
    Task,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from ._buffers import BytesLike, bad_data, is_contiguous_buffer
from ._cancel import RUN_CONTEXT
from ._conflict import ConflictDetector
from ._limits import BufferLimitError, OverflowPolicy, StallClock, StallTimeoutError
from ._socket import set_notsent_lowat, socket_sink
from ._state import WriterState, WriterStatistics
from ._water import check_size, water_marks

if TYPE_CHECKING:
    from typing_extensions import TypedDict

    class WriterOptions(TypedDict, total=False):
        """The keyword arguments of :class:`BufferedWriter`, for the wrappers
        that pass them through."""

        high_water: int | None
        low_water: int | None
        max_send_size: int
        notsent_lowat: int | None
        max_buffer: int | None
        overflow: OverflowPolicy
        stall_timeout: float | None


DEFAULT_HIGH_WATER = 64 * 1024
# 1 MiB sends keep loopback TCP at ~0.97x of its bulk limit on the reference
# machine, 64 KiB sends only ~0.29x (see shared/ANCHORS.md).
DEFAULT_MAX_SEND_SIZE = 1024 * 1024
# See _socket.py: enough unsent bytes in the kernel to cover one refill.
DEFAULT_NOTSENT_LOWAT = DEFAULT_MAX_SEND_SIZE
# A bytes object at least this long is queued by reference, not copied: it
# cannot change under us, and above this size the copy costs more than the
# bookkeeping (measured: a 1 MiB copy is ~20% of a 1 MiB loopback send).
BY_REFERENCE_MIN = 64 * 1024

# Module-level aliases: the hot paths compare against these, and ``if
# self._state:`` is the cheapest possible "is it still OPEN?" test because
# OPEN is the only state whose value is 0.
_OPEN = WriterState.OPEN
_EOF_PENDING = WriterState.EOF_PENDING
_EOF_SENT = WriterState.EOF_SENT
_CLOSING = WriterState.CLOSING
_CLOSED = WriterState.CLOSED
_BROKEN = WriterState.BROKEN


_NO_ITEM = object()


class _BufferedSendBase(trio.abc.SendStream):
    """The writer's whole implementation, shared by :class:`BufferedWriter`
    (one-way) and :class:`~trio_bufwriter.BufferedStream` (two-way)."""

    __slots__ = (
        "_aborted",
        "_buf",
        "_corks",
        "_direct_used",
        "_drain_lot",
        "_eof_event",
        "_eof_sent",
        "_error",
        "_error_message",
        "_error_reported",
        "_flush_waiters",
        "_flush_waiting",
        "_guard",
        "_high_water",
        "_inflight",
        "_lost",
        "_low_water",
        "_max_buffer",
        "_max_send_size",
        "_overflow_abort",
        "_overflows",
        "_parked_sender",
        "_peak",
        "_segments",
        "_send_all_calls",
        "_send_calls",
        "_send_conflict",
        "_sender_started",
        "_sender_wants_data",
        "_sending",
        "_sent",
        "_sink",
        "_state",
        "_stream",
        "_write_calls",
    )

    def __init__(
        self,
        stream: trio.abc.SendStream,
        *,
        high_water: int | None = None,
        low_water: int | None = None,
        max_send_size: int = DEFAULT_MAX_SEND_SIZE,
        notsent_lowat: int | None = DEFAULT_NOTSENT_LOWAT,
        max_buffer: int | None = None,
        overflow: OverflowPolicy = "raise",
        stall_timeout: float | None = None,
    ) -> None:
        if not isinstance(stream, trio.abc.SendStream):
            raise TypeError(
                f"expected a trio.abc.SendStream to wrap, not {type(stream).__name__!r}"
            )
        if notsent_lowat is not None:
            check_size("notsent_lowat", notsent_lowat, 0)
        if max_buffer is not None:
            check_size("max_buffer", max_buffer, 0)
        if overflow not in ("raise", "abort"):
            raise ValueError(f"overflow must be 'raise' or 'abort', not {overflow!r}")
        if stall_timeout is not None and not (
            isinstance(stall_timeout, int | float) and stall_timeout > 0
        ):
            raise ValueError(f"stall_timeout must be a positive number, not {stall_timeout!r}")
        self._stream = stream
        self._buf = bytearray()
        # Whole buffers queued *before* _buf: large immutable writes held by
        # reference, and the _buf they interrupted.  Counted in _inflight.
        self._segments: list[BytesLike] = []
        self._sent = 0
        # Bytes out of _buf but not yet accepted: queued segments plus the
        # send in progress.
        self._inflight = 0
        self._lost = 0
        self._write_calls = 0
        self._send_calls = 0
        self._send_all_calls = 0
        self._peak = 0
        self._state = _OPEN
        self._error: BaseException | None = None
        self._error_message = ""
        self._error_reported = False
        self._corks = 0
        self._sender_started = False
        # True only while the sender is parked with nothing to do and no cork:
        # then, and only then, write() has to wake it.
        self._sender_wants_data = False
        # Whether the one direct send allowed per idle spell was used (see
        # _write_when_idle); reset when the sender parks or the stream reads.
        self._direct_used = False
        # True while the sender is inside a send: then only it may touch
        # what it took (see _push_now).
        self._sending = False
        # The sender task while it is parked waiting for work, else None.
        # (A bare wait_task_rescheduled rather than a ParkingLot: for an idle
        # writer the lot's bookkeeping costs ~500 bytes.)
        self._parked_sender: Task | None = None
        self._drain_lot = ParkingLot()
        # (target, event) in non-decreasing target order: flush() targets are
        # the running total written, which only grows.
        # (Created on first use: an empty deque costs ~600 bytes, a lot for
        # an idle writer.)
        self._flush_waiters: deque[tuple[int, trio.Event]] | None = None
        self._flush_waiting = 0
        self._eof_event: trio.Event | None = None
        self._eof_sent = False
        self._send_conflict = ConflictDetector(
            "another task is already using this writer's send_all, "
            "wait_send_all_might_not_block or send_eof (use write() to send "
            "from many tasks at once)"
        )
        self._max_send_size = check_size("max_send_size", max_send_size, 1)
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_HIGH_WATER // 4
        self.set_water_marks(high_water, low_water)
        self._sink = socket_sink(stream)
        set_notsent_lowat(stream, notsent_lowat)
        self._max_buffer = max_buffer
        self._overflow_abort = overflow == "abort"
        self._overflows = 0
        self._aborted = False
        # Only a writer that can abort needs a cancel scope around its sends.
        self._guard: StallClock | None = None
        if stall_timeout is not None or (max_buffer is not None and overflow == "abort"):
            self._guard = StallClock(stall_timeout)
            if self._sink is not None:
                self._sink.on_progress = self._partial_progress

    # ------------------------------------------------------------------
    # Configuration and introspection

    def set_water_marks(self, high: int | None = None, low: int | None = None) -> None:
        """Set the backpressure thresholds used by :meth:`drain`.

        As in asyncio: with neither given, *high* is 64 KiB; with only *low*
        given, *high* is ``4 * low``; with only *high* given, *low* is
        ``high // 4``.  Tasks already waiting in :meth:`drain` are woken if the
        buffer is already at or below the new low-water mark.

        Raises:
          TypeError: a mark is not an int.
          ValueError: a mark is negative, or *low* is above *high*.
        """
        self._high_water, self._low_water = water_marks(high, low, DEFAULT_HIGH_WATER)
        self._wake_drainers_if_low()

    @property
    def high_water(self) -> int:
        """:meth:`drain` waits while more than this many bytes are buffered."""
        return self._high_water

    @property
    def low_water(self) -> int:
        """A waiting :meth:`drain` returns once the buffer is down to this many bytes."""
        return self._low_water

    @property
    def max_send_size(self) -> int:
        """The most bytes handed to the wrapped stream's ``send_all`` in one call."""
        return self._max_send_size

    @property
    def buffered(self) -> int:
        """Bytes written but not yet accepted by the wrapped stream's ``send_all``
        (queued, plus those being sent right now)."""
        return len(self._buf) + self._inflight

    @property
    def need_drain(self) -> bool:
        """Whether :meth:`drain` would wait now: more than :attr:`high_water` bytes
        are buffered."""
        return len(self._buf) + self._inflight > self._high_water

    @property
    def max_buffer(self) -> int | None:
        """The most bytes the writer will hold (None: no limit); see ``overflow``."""
        return self._max_buffer

    @property
    def stalled_for(self) -> float:
        """Seconds the buffer has been over high water while the wrapped stream
        took nothing (0.0 if it is not stalled).  Measured only by a writer
        with a ``stall_timeout`` or an ``"abort"`` limit; 0.0 otherwise."""
        return 0.0 if self._guard is None else self._guard.stalled_for

    @property
    def state(self) -> WriterState:
        """The writer's :class:`WriterState`."""
        return self._state

    def statistics(self) -> WriterStatistics:
        """Return a :class:`WriterStatistics` snapshot of this writer's counters."""
        buffered = len(self._buf) + self._inflight
        self._peak = max(self._peak, buffered)
        return WriterStatistics(
            bytes_written=self._sent + buffered + self._lost,
            bytes_sent=self._sent,
            write_calls=self._write_calls,
            send_calls=self._send_calls,
            peak_buffered=self._peak,
            buffered=buffered,
            state=self._state,
            overflows=self._overflows,
            stalled_for=self.stalled_for,
        )

    # ------------------------------------------------------------------
    # Writing: synchronous, never blocks, never yields

    def write(self, data: BytesLike) -> None:
        """Queue *data* to be sent, and return at once.

        Never blocks and never yields to the scheduler.  The bytes are copied,
        so a mutable buffer can be reused as soon as this returns (a ``bytes``
        object of 64 KiB or more, which cannot change, is held by reference
        instead).  The bytes of one call are sent contiguously: writes from
        any number of tasks never interleave.  The background sender picks
        them up the next time it runs, together with everything else queued
        by then; over a :class:`trio.SocketStream`, a write to an idle writer
        is handed to the kernel at once instead (see :meth:`corked` to hold
        several writes together).

        This does not apply backpressure; call :meth:`drain` for that.

        Raises:
          TypeError: *data* is not a C-contiguous bytes-like object (``str``,
              ``int``, ``None``, a non-contiguous ``memoryview``...).  Nothing
              is queued.
          trio.ClosedResourceError: after :meth:`aclose` or :meth:`send_eof`.
          trio.BrokenResourceError: the wrapped stream failed earlier (or the
              sender task was cancelled); the original error is its
              ``__cause__``.  Raised by every call from then on.  Also raised
              (from a :exc:`BufferLimitError`) by the write that would pass
              ``max_buffer`` with ``overflow="abort"``: the writer is aborted.
          BufferLimitError: with ``max_buffer`` and ``overflow="raise"``, the
              write would pass ``max_buffer``.  Nothing is queued and the
              writer stays usable.
        """
        if self._state:
            self._raise_not_writable()
        if self._sender_wants_data:
            self._write_when_idle(data)
        else:
            try:
                # len() first: it is the cheaper test, and small writes are
                # the hot path.  (Corked bytes are copied: the uncork must
                # send them in one go.)
                if len(data) >= BY_REFERENCE_MIN and type(data) is bytes and not self._corks:
                    self._queue_by_reference(data)
                    self._write_calls += 1
                    return
                self._buf += data
            except TypeError:
                raise bad_data(data) from None
            if self._max_buffer is not None and len(self._buf) + self._inflight > self._max_buffer:
                size = memoryview(data).nbytes
                del self._buf[len(self._buf) - size :]
                self._refuse(size)
        self._write_calls += 1

    def _queue_by_reference(self, data: bytes | memoryview) -> None:
        self._check_room(len(data))
        buf = self._buf
        if buf:
            self._segments.append(buf)
            self._inflight += len(buf)
            self._buf = bytearray()
        self._segments.append(data)
        self._inflight += len(data)

    def _write_when_idle(self, data: BytesLike) -> None:
        # The sender is parked with nothing queued or in flight.
        sink = self._sink
        if sink is None or self._direct_used:
            if type(data) is bytes and len(data) >= BY_REFERENCE_MIN:
                self._queue_by_reference(data)
            else:
                try:
                    self._buf += data
                except TypeError:
                    raise bad_data(data) from None
                if self._max_buffer is not None and len(self._buf) > self._max_buffer:
                    self._buf = bytearray()  # it was empty: the sender is idle
                    self._refuse(memoryview(data).nbytes)
            self._wake_sender()
            return
        # One direct send per idle spell: the next write finds _direct_used
        # set and queues for the sender, so a burst of writes still
        # coalesces, while a lone write (a reply, a ping) skips the trip
        # through the scheduler and does not wake the sender at all.
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise bad_data(data) from None
        # A write too big for the limit is refused even if the socket could
        # take some of it now: refusing means nothing of it is sent.
        self._check_room(len(view))
        self._direct_used = True
        try:
            sent = sink.try_send(view)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._finish(_BROKEN, exc, "the wrapped stream's send_all failed")
            self._error_reported = True
            raise trio.BrokenResourceError(self._error_message) from exc
        size = len(view)
        if sent:
            self._send_calls += 1
            self._peak = max(self._peak, size)
            self._sent += sent
        if sent < size:
            rest = view[sent:]
            if type(data) is bytes and len(rest) >= BY_REFERENCE_MIN:
                self._segments.append(rest)
                self._inflight += len(rest)
            else:
                self._buf += rest
            self._wake_sender()

    def writelines(self, data: Iterable[BytesLike]) -> None:
        """Queue every buffer of *data*, in order, as one atomic write.

        The same as ``write(b"".join(data))`` without building the joined
        copy.  It is all or nothing: if an item is not bytes-like (or the
        iterable raises) nothing of this call is queued.

        It raises what :meth:`write` raises, and whatever iterating *data*
        raises.
        """
        if self._state:
            self._raise_not_writable()
        buf = self._buf
        mark = len(buf)
        item: object = _NO_ITEM
        try:
            for item in data:
                buf += item
        except BaseException:
            # All or nothing: take back what this call already appended.
            del buf[mark:]
            if item is not _NO_ITEM and not is_contiguous_buffer(item):
                raise bad_data(item, "writelines()") from None
            raise
        if self._max_buffer is not None and len(buf) + self._inflight > self._max_buffer:
            size = len(buf) - mark
            del buf[mark:]
            self._refuse(size)
        self._write_calls += 1
        if self._sender_wants_data:
            self._wake_sender()

    @contextmanager
    def corked(self) -> Iterator[None]:
        """Hold back sending while inside this (synchronous) context manager.

        While any cork is held the sender does not start a new send, so
        everything written meanwhile goes out together, in one ``send_all``,
        once the last cork is released.  Corks nest and count, and several
        tasks may hold them at once.  A send already in progress is not
        interrupted.

        A cork only delays; it never makes a waiter wait forever:
        :meth:`flush`, a :meth:`drain` that has to wait, :meth:`send_eof` and
        :meth:`aclose` all send the buffered bytes even while corked.
        """
        self._corks += 1
        # A parked sender stays parked, and write() must not take the
        # idle writer's direct path to the socket while corked.
        self._sender_wants_data = False
        try:
            yield
        finally:
            self._corks -= 1
            if not self._corks:
                self._wake_sender()

    # ------------------------------------------------------------------
    # Waiting

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
    # trio.abc.SendStream

    async def send_all(self, data: BytesLike) -> None:
        """:meth:`write` *data*, then wait as :meth:`drain` does.

        This is what makes the writer a :class:`trio.abc.SendStream`.  Unlike
        a raw stream's ``send_all`` it returns once the bytes are queued and
        the buffer is not over high water, not once they are sent.  It is a
        full checkpoint.  If cancelled before it queues the bytes nothing is
        queued; if cancelled while waiting, the bytes are queued and will be
        sent, and the writer stays usable (so, unlike a raw stream, a
        cancelled ``send_all`` here does not doom the stream).

        As trio's contract requires, only one task at a time may be in
        ``send_all``, :meth:`wait_send_all_might_not_block` or
        :meth:`send_eof`; use :meth:`write` to write from many tasks.

        Besides what :meth:`write` and :meth:`drain` raise:

        Raises:
          trio.BusyResourceError: another task is in one of those methods.
        """
        with self._send_conflict:
            await checkpoint_if_cancelled()
            self.write(data)
            self._send_all_calls += 1
            if len(self._buf) + self._inflight > self._high_water:
                await self._wait_for_low_water()
            else:
                await cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait as :meth:`drain` does, but always as a full checkpoint.

        Returns once the buffer is at or below high water (waiting for low
        water if it was over), when a small ``send_all`` would not block.

        Besides what :meth:`drain` raises:

        Raises:
          trio.BusyResourceError: another task is in ``send_all``, this method
              or :meth:`send_eof`.
        """
        with self._send_conflict:
            await checkpoint_if_cancelled()
            if self._state:
                self._raise_if_finished()
            if len(self._buf) + self._inflight > self._high_water:
                await self._wait_for_low_water()
            else:
                await cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        """Send everything buffered, then half-close the wrapped stream.

        From the moment it is called, :meth:`write` raises
        :exc:`trio.ClosedResourceError`.  It waits until the queued bytes are
        sent and the wrapped stream's ``send_eof()`` has returned (the sender
        task calls it, so it never races a ``send_all``).  Calling it again
        is a no-op checkpoint.  If it is cancelled while waiting, the bytes
        and the end-of-file are still sent.

        Raises:
          TypeError: the wrapped stream is not a
              :class:`trio.abc.HalfCloseableStream`.  Nothing changes.
          trio.BusyResourceError: another task is in ``send_all``,
              :meth:`wait_send_all_might_not_block` or ``send_eof``.
          trio.ClosedResourceError: the writer is closed (or was closed before
              the end-of-file went out).
          trio.BrokenResourceError: the wrapped stream failed.
        """
        with self._send_conflict:
            if not isinstance(self._stream, trio.abc.HalfCloseableStream):
                raise TypeError(
                    f"cannot send EOF: the wrapped {type(self._stream).__name__} is "
                    "not a trio.abc.HalfCloseableStream (use aclose() instead)"
                )
            state = self._state
            if state is _OPEN:
                self._state = _EOF_PENDING
                self._eof_event = trio.Event()
                self._wake_sender()
            elif state is not _EOF_PENDING and state is not _EOF_SENT:
                self._raise_if_finished()
                raise trio.ClosedResourceError("the writer is closing")
            if self._eof_sent:
                await checkpoint()
                return
            assert self._eof_event is not None
            await self._eof_event.wait()
            if not self._eof_sent:
                self._raise_for_waiter()

    async def aclose(self) -> None:
        """Send everything buffered, then close the wrapped stream.

        From the moment it is called, :meth:`write` raises
        :exc:`trio.ClosedResourceError`.  It waits until the buffered bytes
        (corked or not) have been accepted by the wrapped stream, then closes
        it.  Whatever happens, the wrapped stream is closed when this
        returns or raises: if it is cancelled while flushing (as
        :func:`trio.aclose_forcefully` does) the remaining bytes are discarded
        and the wrapped stream is closed at once.  Calling it again is a
        checkpoint and does nothing.  The sender task then returns.

        Data is never dropped silently: if bytes were left unsent because the
        wrapped stream failed, ``aclose()`` raises, unless that failure was
        already raised to a caller by another method.  The exception is a
        writer used only through trio's stream interface (``send_all``, never
        ``write()``/``writelines()``): it behaves as a trio stream does, whose
        ``aclose()`` does not report a failure the sends did not get to
        report.  :class:`trio.SSLStream` on top relies on that: it sends its
        close_notify and closes, and a peer that already left is normal.

        Raises:
          trio.BrokenResourceError: the wrapped stream failed with bytes
              still unsent, and no call had reported it yet.
          trio.Cancelled: cancelled while flushing (the stream is closed
              all the same; the unsent bytes are discarded).
        """
        state = self._state
        if state is _CLOSED:
            await checkpoint()
            return
        try:
            if state is not _BROKEN:
                if state is not _CLOSING:
                    self._state = _CLOSING
                    self._wake_sender()
                try:
                    await self._wait_sent(self._sent + self._inflight + len(self._buf))
                except trio.BrokenResourceError:
                    if self._write_api_used():
                        raise
                except trio.ClosedResourceError:
                    # Another task's aclose() closed it meanwhile (forcefully):
                    # closed is what this call was asked for.
                    pass
        finally:
            # Decide before _finish turns BROKEN into CLOSED.
            unreported = (
                self._state is _BROKEN
                and not self._error_reported
                and self._lost > 0
                and self._write_api_used()
            )
            if self._state is not _CLOSED:
                self._finish(_CLOSED)
            await self._stream.aclose()
        if unreported:
            self._error_reported = True
            raise trio.BrokenResourceError(
                f"{self._error_message}; {self._lost} written bytes were not sent"
            ) from self._error

    # ------------------------------------------------------------------
    # The sender task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the background sender task; returns once the writer is closed.

        Start it in a nursery that outlives your use of the writer::

            writer = BufferedWriter(stream)
            await nursery.start(writer.run)

        (:func:`open_buffered_writer` does this for you.)  It may only be
        run once.  It sends whatever is queued, merging everything written
        since its last send into one ``send_all`` (split at
        :attr:`max_send_size`), with no timer delay.

        It returns when the writer is closed, after ``send_eof``, or when the
        wrapped stream fails: a failure does not escape into your nursery,
        it is raised by the writer's methods instead.  If it is cancelled
        (say, your nursery is), the writer becomes broken: ``write()`` and
        the waiters raise :exc:`trio.BrokenResourceError` from then on, and a
        ``send_all`` it was in the middle of may have sent any part of its
        bytes.

        Raises:
          RuntimeError: it was already started once.
        """
        if self._sender_started:
            raise RuntimeError("this writer's sender task was already started")
        self._sender_started = True
        task_status.started()
        try:
            stream = self._stream
            while True:
                state = self._state
                if (self._buf or self._segments) and (
                    not self._corks or state or self._flush_waiting or self._drain_lot
                ):
                    if not await self._send_buffer(stream):
                        break
                elif state is _OPEN or state is _CLOSING:
                    self._sender_wants_data = not self._corks
                    self._direct_used = False
                    self._parked_sender = current_task()
                    try:
                        await wait_task_rescheduled(self._abort_park)
                    finally:
                        self._sender_wants_data = False
                elif state is _EOF_PENDING:
                    assert isinstance(stream, trio.abc.HalfCloseableStream)
                    try:
                        await stream.send_eof()
                    except Exception as exc:
                        if self._state < _CLOSED:
                            self._finish(_BROKEN, exc, "the wrapped stream's send_eof failed")
                        break
                    if self._state is _EOF_PENDING:
                        self._state = _EOF_SENT
                    self._eof_sent = True
                    assert self._eof_event is not None
                    self._eof_event.set()
                    break
                else:  # EOF_SENT, CLOSED, BROKEN: nothing more will ever be sent
                    break
            if self._aborted:
                # Aborting means the connection goes, not just the writer.
                await trio.aclose_forcefully(self._stream)
        except BaseException as exc:
            # Errors from the wrapped stream are handled inside the loop; this
            # is Cancelled or KeyboardInterrupt, and we do not keep those.
            if self._state < _CLOSED:
                what = "cancelled" if isinstance(exc, trio.Cancelled) else "interrupted"
                message = f"the writer's sender task was {what}"
                if self._inflight:
                    message += (
                        f" in the middle of a send: an unknown part of its "
                        f"{self._inflight} bytes reached the stream"
                    )
                self._finish(_BROKEN, None, message)
            raise

    async def _send_buffer(self, stream: trio.abc.SendStream) -> bool:
        """Send everything queued; return False if the writer finished meanwhile."""
        # Swap rather than copy: the writers start filling a fresh buffer
        # while this one is sent.
        buf = self._buf
        self._buf = bytearray()
        self._inflight += len(buf)
        segments = self._segments
        if segments:
            self._segments = []
            if buf:
                segments.append(buf)
        else:
            segments = [buf]
        guard = self._guard
        self._sending = True
        try:
            if guard is None:
                return await self._send_segments(stream, segments)
            with guard.start_send(self._backpressured()) as scope:
                done = await self._send_segments(stream, segments)
            guard.end_send()
        finally:
            self._sending = False
        if scope.cancelled_caught:
            if self._state < _CLOSED:
                # The stall clock ran out.  (An overflow abort broke the
                # writer before cancelling.)
                timeout = guard.timeout
                self._abort(
                    StallTimeoutError(
                        f"over high water ({self._high_water} bytes) with nothing "
                        f"sent for {timeout} s"
                    ),
                    f"aborted: the peer took nothing for {timeout} s (stall_timeout)",
                )
            return False
        return done

    async def _send_segments(self, stream: trio.abc.SendStream, segments: list[BytesLike]) -> bool:
        max_send = self._max_send_size
        send_all = stream.send_all if self._sink is None else self._sink.send_all
        try:
            for data in segments:
                size = len(data)
                if size <= max_send:
                    self._send_calls += 1
                    await send_all(data)
                    if not self._sent_some(size):
                        return False
                    continue
                with memoryview(data) as view:
                    for start in range(0, size, max_send):
                        with view[start : start + max_send] as chunk:
                            self._send_calls += 1
                            await send_all(chunk)
                            if not self._sent_some(len(chunk)):
                                return False
            return True
        except Exception as exc:
            # trio #889: a failed send_all sent an unknown amount; never retry.
            if self._state < _CLOSED:
                self._finish(_BROKEN, exc, "the wrapped stream's send_all failed")
            return False

    def _sent_some(self, size: int) -> bool:
        if self._state >= _CLOSED:
            # Closed (or broken) while that send was in flight: the counters
            # were settled by _finish, and nothing more is to be sent.
            return False
        self._progress(size, size)
        return True

    def _progress(self, sent: int, taken: int) -> None:
        """*sent* more bytes were accepted, *taken* of them counted in _inflight;
        wake whoever that lets go."""
        buffered = len(self._buf) + self._inflight
        if buffered > self._peak:
            self._peak = buffered
        self._sent += sent
        self._inflight -= taken
        if self._guard is not None:
            self._guard.progress(self._backpressured())
        waiters = self._flush_waiters
        if waiters:
            sent = self._sent
            while waiters and waiters[0][0] <= sent:
                waiters.popleft()[1].set()
        self._wake_drainers_if_low()

    # ------------------------------------------------------------------
    # Internals

    def _push_now(self) -> bool:
        """Over high water: try handing the buffer to the socket right here.

        Only over a SocketStream, and only when the sender holds nothing
        (so that order is kept) and no cork is held.  Returns whether the
        buffer is now at or below low water, so drain() need not wait.  This
        is asyncio's model at the high-water mark: the kernel's buffer
        absorbs the batch when it can, and a trip through the scheduler to
        the sender task (two task switches per batch) is only paid when the
        socket is full.
        """
        sink = self._sink
        if sink is None or self._sending or self._corks or self._state:
            return False
        try:
            segments = self._segments
            while segments:
                # Large writes held by reference come before the buffer.
                segment = segments[0]
                sent = sink.try_send(memoryview(segment).cast("B"))
                if sent:
                    self._send_calls += 1
                    self._progress(sent, sent)
                if sent < len(segment):
                    segments[0] = memoryview(segment)[sent:]
                    return False
                del segments[0]
            buf = self._buf
            sent = sink.try_send(memoryview(buf))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._finish(_BROKEN, exc, "the wrapped stream's send_all failed")
            self._error_reported = True
            raise trio.BrokenResourceError(self._error_message) from exc
        if sent:
            self._send_calls += 1
            self._peak = max(self._peak, len(buf) + self._inflight)
            del buf[:sent]
            self._progress(sent, 0)
        return len(buf) + self._inflight <= self._low_water

    def _backpressured(self) -> bool:
        """Over high water, or a drain() still waiting for low water: the
        stall clock runs while this holds and nothing gets through."""
        return len(self._buf) + self._inflight > self._high_water or bool(self._drain_lot)

    def _partial_progress(self) -> None:
        """The socket took part of a send: bytes got through."""
        assert self._guard is not None
        self._guard.progress(self._backpressured())

    def _check_room(self, size: int) -> None:
        """Refuse a write of *size* bytes that would pass max_buffer."""
        if (
            self._max_buffer is not None
            and len(self._buf) + self._inflight + size > self._max_buffer
        ):
            self._refuse(size)

    def _refuse(self, size: int) -> NoReturn:
        """Apply the overflow policy to a write of *size* bytes (not queued)."""
        held = len(self._buf) + self._inflight
        message = (
            f"a write of {size} bytes would hold {held + size} bytes, "
            f"over max_buffer={self._max_buffer}"
        )
        if not self._overflow_abort:
            self._overflows += 1
            raise BufferLimitError(message)
        cause = BufferLimitError(message)
        self._abort(cause, f"aborted: {message}")
        self._error_reported = True
        raise trio.BrokenResourceError(self._error_message) from cause

    def _abort(self, cause: BaseException, message: str) -> None:
        """Break the writer, interrupt the send, and have the sender close the stream."""
        self._aborted = True
        self._finish(_BROKEN, cause, message)
        if self._guard is not None:
            self._guard.abort()

    def _write_api_used(self) -> bool:
        """Whether write()/writelines() were used, not only send_all().

        A writer used only as a trio stream keeps trio's close semantics:
        its aclose() does not report a failure its sends did not report.
        """
        return self._write_calls > self._send_all_calls

    def _wake_sender(self) -> None:
        self._sender_wants_data = False
        task = self._parked_sender
        if task is not None:
            self._parked_sender = None
            reschedule(task)

    def _abort_park(self, _: RaiseCancelT) -> Abort:
        self._parked_sender = None
        return Abort.SUCCEEDED

    def _wake_drainers_if_low(self) -> None:
        if self._drain_lot and len(self._buf) + self._inflight <= self._low_water:
            self._drain_lot.unpark_all()

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

    def _finish(
        self, state: WriterState, cause: BaseException | None = None, message: str = ""
    ) -> None:
        """Enter CLOSED or BROKEN: discard what can no longer be sent, wake everyone."""
        if state is _BROKEN:
            self._error = cause
            self._error_message = message
        self._state = state
        self._peak = max(self._peak, len(self._buf) + self._inflight)
        self._lost += len(self._buf) + self._inflight
        self._inflight = 0
        self._buf = bytearray()
        self._segments = []
        waiters = self._flush_waiters
        while waiters:
            waiters.popleft()[1].set()
        if self._eof_event is not None:
            self._eof_event.set()
        self._drain_lot.unpark_all()
        self._wake_sender()

    def _raise_not_writable(self) -> None:
        self._raise_if_finished()
        raise trio.ClosedResourceError(
            "the writer is closing" if self._state is _CLOSING else "the writer has sent EOF"
        )

    def _raise_for_waiter(self) -> None:
        """Raise for a call that was waiting when the writer finished.

        The failure if the writer broke meanwhile, even if another task has
        closed it since (so every waiter sees the same chained error);
        otherwise ClosedResourceError.
        """
        if self._error_message:
            self._error_reported = True
            raise trio.BrokenResourceError(self._error_message) from self._error
        self._raise_if_finished()
        raise trio.ClosedResourceError("the writer is closing")  # pragma: no cover

    def _raise_if_finished(self, *, broken_only: bool = False) -> None:
        """Raise the error for a CLOSED or BROKEN writer; return otherwise."""
        if self._state is _BROKEN:
            self._error_reported = True
            raise trio.BrokenResourceError(self._error_message) from self._error
        if self._state is _CLOSED and not broken_only:
            raise trio.ClosedResourceError("the writer is closed")


@final
class BufferedWriter(_BufferedSendBase):
    """A :class:`trio.abc.SendStream` wrapper with a synchronous :meth:`write`.

    Bytes written are appended to a buffer; one background sender task (see
    :meth:`run`) sends everything queued since its last send in a single
    ``send_all`` on the wrapped stream.  :meth:`drain` applies backpressure,
    :meth:`flush` is a barrier, :meth:`aclose` flushes then closes.

    Args:
      stream: the :class:`trio.abc.SendStream` to write to.  The writer owns
          it from now on: closing the writer closes it, and nothing else
          should send on it.
      high_water: :meth:`drain` waits while more than this many bytes are
          buffered (default 64 KiB, or ``4 * low_water`` if only that is given).
      low_water: ... until at most this many are (default ``high_water // 4``).
      max_send_size: the most bytes passed to one ``send_all`` (default 1 MiB).
      max_buffer: the most bytes the writer may hold (queued plus in
          flight); None (the default) for no limit.  See "Slow consumers".
      overflow: what a write that would pass *max_buffer* does: ``"raise"``
          (default) refuses it with :exc:`BufferLimitError`, queues nothing
          of it and leaves the writer usable; ``"abort"`` breaks the writer
          (every later call raises :exc:`trio.BrokenResourceError` whose
          cause is the :exc:`BufferLimitError`), discards the buffer and
          closes *stream*.
      stall_timeout: abort as above (the cause is a
          :exc:`StallTimeoutError`) when backpressure has held for this many
          seconds (more than *high_water* bytes buffered, or a :meth:`drain`
          still waiting for *low_water*) with nothing accepted by *stream*;
          bytes that get through restart the clock.  The clock is
          checked when a send starts or makes progress and when a
          :meth:`drain` waits.  None (the default): never.
      notsent_lowat: if *stream* is a :class:`trio.SocketStream`, set its
          ``TCP_NOTSENT_LOWAT`` socket option to this (default 1 MiB, the
          size of one maximum send, instead of trio's 16 KiB, which costs
          bulk transfers about half their throughput); None leaves the
          socket's setting alone.  Other streams are not touched.

    When *stream* is a :class:`trio.SocketStream`, a ``write()`` to an idle
    writer (sender parked, nothing queued) also tries one non-blocking send
    on the socket at once, as asyncio does, to save the trip through the
    scheduler; later writes in the same tick are queued and coalesced.

    Usually made with :func:`open_buffered_writer`, which also runs the sender.
    """

    __slots__ = ()

    @property
    def transport_stream(self) -> trio.abc.SendStream:
        """The wrapped stream."""
        return self._stream
