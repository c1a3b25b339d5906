"""The buffered writer's state: the counters, settings and lifecycle every layer shares.

Everything the writer knows is kept as byte counters that only grow::

    bytes written = sent + inflight + len(buffer) + lost

``sent`` is what the wrapped stream's ``send_all`` has accepted, ``inflight``
what the sender has taken out of the buffer and is sending now, ``lost`` what
was still held when the writer broke or was closed.  ``flush()`` waits for
``sent`` to reach the total written when it was called; ``drain()`` looks at
``inflight + len(buffer)``.  Sequence numbers like these cannot miss a wakeup
the way a boolean "flushed" event can: a waiter compares numbers when it wakes.

The writer is one class built as a chain of layers, one concern per module
(``_writer.py`` lists them in order); this module is the bottom of the chain.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Literal

import trio
from trio.lowlevel import ParkingLot, Task

from ._anyio import as_send_stream
from ._buffers import BytesLike
from ._conflict import ConflictDetector
from ._limits import OverflowPolicy, StallClock
from ._socket import set_notsent_lowat, socket_sink
from ._state import WriterState, WriterStatistics
from ._water import check_size, water_marks

if TYPE_CHECKING:
    import anyio.abc
    from typing_extensions import TypedDict

    from ._socket import SocketSink

    class WriterOptions(TypedDict, total=False):
        """The keyword arguments of :class:`BufferedWriter`, for the wrappers
        that pass them through."""

        high_water: int | None
        low_water: int | None
        max_send_size: int
        notsent_lowat: int | Literal["leave"] | None
        max_buffer: int | None
        overflow: OverflowPolicy
        stall_timeout: float | None


DEFAULT_HIGH_WATER = 64 * 1024
# 1 MiB sends keep loopback TCP at ~0.97x of its bulk limit on the reference
# machine, 64 KiB sends only ~0.29x (see shared/ANCHORS.md).
DEFAULT_MAX_SEND_SIZE = 1024 * 1024
# See _socket.py: enough unsent bytes in the kernel to cover one refill.
DEFAULT_NOTSENT_LOWAT = DEFAULT_MAX_SEND_SIZE

# Module-level aliases: the hot paths compare against these, and ``if
# self._state:`` is the cheapest possible "is it still OPEN?" test because
# OPEN is the only state whose value is 0.
_OPEN = WriterState.OPEN
_EOF_PENDING = WriterState.EOF_PENDING
_EOF_SENT = WriterState.EOF_SENT
_CLOSING = WriterState.CLOSING
_CLOSED = WriterState.CLOSED
_BROKEN = WriterState.BROKEN


def _describe_failure(message: str, cause: BaseException | None) -> str | None:
    """The ``error`` of a statistics snapshot: the failure's message and cause."""
    if not message:
        return None
    if cause is None:
        return message
    return f"{message}: {type(cause).__name__}: {cause}"


class _WriterCore(trio.abc.SendStream):
    """The writer's state and what every layer above needs of it.

    It holds all of the writer's ``__slots__`` (Python allows only one base
    class with non-empty slots, so each layer above adds methods only, with
    ``__slots__ = ()``), and it is where the state is set up, read and ended:
    the constructor, the settings and their properties, :meth:`statistics`,
    and :meth:`_finish`, which every layer calls to close or break the
    writer, with the errors raised for a finished one.
    """

    __slots__ = (
        "_aborted",
        "_batch_mark",
        "_batches",
        "_buf",
        "_cork_mark",
        "_corks",
        "_direct_step",
        "_drain_lot",
        "_eof_event",
        "_eof_sent",
        "_error",
        "_error_message",
        "_error_reported",
        "_flush_waiters",
        "_flush_waiting",
        "_folded",
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
        "_probe",
        "_probe_done",
        "_room_event",
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
        "_turn_batched",
        "_turn_mark",
        "_turn_sent",
        "_write_calls",
    )

    def __init__(
        self,
        stream: trio.abc.SendStream | anyio.abc.ByteSendStream,
        *,
        high_water: int | None = None,
        low_water: int | None = None,
        max_send_size: int = DEFAULT_MAX_SEND_SIZE,
        notsent_lowat: int | Literal["leave"] | None = None,
        max_buffer: int | None = None,
        overflow: OverflowPolicy = "raise",
        stall_timeout: float | None = None,
    ) -> None:
        if not isinstance(stream, trio.abc.SendStream):
            # An anyio stream gets an adapter; anything else a TypeError.
            stream = as_send_stream(stream)
        if notsent_lowat is None:
            notsent_lowat = DEFAULT_NOTSENT_LOWAT
        elif isinstance(notsent_lowat, str):
            if notsent_lowat != "leave":
                raise ValueError(
                    f"notsent_lowat must be an int, None or 'leave', not {notsent_lowat!r}"
                )
        else:
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
        # Batches: hand-overs of queued writes to the wrapped stream that
        # carried at least one write none of which was handed over before
        # (_batch_mark: _write_calls at the last one), so that a write sent
        # in pieces counts once and write_calls / batches is at least 1.
        self._batches = 0
        self._batch_mark = 0
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
        # The task step (see _run_context.current_step) that made the last
        # direct send: one per step (see _socket_fast_path.py).  Forgotten
        # when the sender parks.
        self._direct_step: tuple[object, int] | None = None
        # Writes folded into corks: a corked block counts as one piece of a
        # turn, however many writes it made (_write_calls at the outermost
        # cork's start, and the writes beyond the first of each block).
        self._cork_mark = 0
        self._folded = 0
        # A BufferedStream's turns (see _stream.py): the pieces written and
        # the bytes sent when the current turn began, and whether the last
        # turn wrote several pieces (then this one's first write waits for
        # the end of the turn too, so that the whole batch leaves in one send).
        self._turn_mark = 0
        self._turn_sent = 0
        self._turn_batched = False
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
        # wait_send_all_might_not_block (``_waiting.py``): the event it waits
        # on for bytes to be accepted, and, while it asks the wrapped stream's
        # own wait_send_all_might_not_block, the scope the sender cancels to
        # take the stream back, and the event set once that call has ended.
        self._room_event: trio.Event | None = None
        self._probe: trio.CancelScope | None = None
        self._probe_done: trio.Event | None = None
        self._send_conflict = ConflictDetector(
            "another task is already using this writer's send_all, "
            "wait_send_all_might_not_block or send_eof (use write() to send "
            "from many tasks at once)"
        )
        self._max_send_size = check_size("max_send_size", max_send_size, 1)
        self._max_buffer = max_buffer
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_HIGH_WATER // 4
        self.set_water_marks(high_water, low_water)
        self._sink = socket_sink(stream)
        set_notsent_lowat(stream, None if notsent_lowat == "leave" else notsent_lowat)
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
          ValueError: a mark is negative, *low* is above *high*, or *high*
              is not below ``max_buffer`` (then :meth:`drain` could never
              wait before writes are refused).  The marks are unchanged.
        """
        marks = water_marks(high, low, DEFAULT_HIGH_WATER)
        max_buffer = self._max_buffer
        if max_buffer is not None and marks[0] >= max_buffer:
            default = "" if high is not None or low is not None else ", the default"
            raise ValueError(
                f"max_buffer ({max_buffer}) must be above high_water ({marks[0]}{default}): "
                "drain() waits only while more than high_water bytes are held, so it "
                "could never wait before max_buffer refuses writes; set high_water "
                f"below max_buffer (for example high_water={max_buffer // 2}) or "
                "raise max_buffer"
            )
        self._high_water, self._low_water = marks
        self._wake_drainers_if_low()
        if self._room_event is not None:
            self._room_event.set()

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

    @property
    def failure(self) -> trio.BrokenResourceError | None:
        """Why the writer broke, or None if it never did.

        None while the writer is healthy, and also once it is closed
        normally (closed is not a failure; ``write()`` then raises
        :exc:`trio.ClosedResourceError`).  Once the wrapped stream failed, a
        limit aborted the writer or the sender task was cancelled, it is the
        :exc:`trio.BrokenResourceError` that ``write()`` raises, with the
        same message and ``__cause__`` (the wrapped stream's own exception,
        the :exc:`BufferLimitError` or :exc:`StallTimeoutError`, or None for
        a cancelled sender); a new exception object on each read.  It stays
        set after :meth:`aclose`.

        Reading it does not count as reporting the failure: :meth:`aclose`
        still raises one that no call has raised.
        """
        if not self._error_message:
            return None
        error = trio.BrokenResourceError(self._error_message)
        error.__cause__ = self._error
        return error

    def statistics(self) -> WriterStatistics:
        """Return a :class:`WriterStatistics` snapshot of this writer's counters."""
        buffered = len(self._buf) + self._inflight
        self._peak = max(self._peak, buffered)
        return WriterStatistics(
            bytes_written=self._sent + buffered + self._lost,
            bytes_sent=self._sent,
            write_calls=self._write_calls,
            send_calls=self._send_calls if self._sink is None else self._sink.calls,
            batches=self._batches,
            peak_buffered=self._peak,
            buffered=buffered,
            state=self._state,
            overflows=self._overflows,
            stalled_for=self.stalled_for,
            error=_describe_failure(self._error_message, self._error),
        )

    # ------------------------------------------------------------------
    # The stall clock

    def _count_batch(self) -> None:
        """Bytes are being handed to the wrapped stream: a new batch if they
        include a write none of which was handed over before."""
        if self._write_calls != self._batch_mark:
            self._batches += 1
            self._batch_mark = self._write_calls

    def _backpressured(self) -> bool:
        """Over high water, or a drain() still waiting for low water: the
        stall clock runs while this holds and nothing gets through."""
        return len(self._buf) + self._inflight > self._high_water or bool(self._drain_lot)

    def _partial_progress(self) -> None:
        """The socket took part of a send: bytes got through."""
        assert self._guard is not None
        self._guard.progress(self._backpressured())

    # ------------------------------------------------------------------
    # Finishing, and the errors of a finished writer

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
        if self._room_event is not None:
            self._room_event.set()
        if self._probe is not None:
            self._probe.cancel()
        self._drain_lot.unpark_all()
        self._wake_sender()

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

    def _raise_if_finished(self) -> None:
        """Raise the error for a CLOSED or BROKEN writer; return otherwise."""
        if self._state is _BROKEN:
            self._error_reported = True
            raise trio.BrokenResourceError(self._error_message) from self._error
        if self._state is _CLOSED:
            raise trio.ClosedResourceError("the writer is closed")

    # ------------------------------------------------------------------
    # Provided by the layers above

    if TYPE_CHECKING:
        # A layer calls these although they are defined higher in the chain:
        # declared here for the type checker only.  At run time they are
        # found on the writer's class like any other method.

        def _direct_send(self, data: BytesLike, sink: SocketSink) -> None:
            """_socket_fast_path.py: the idle writer's send straight to the socket."""

        def _wake_drainers_if_low(self) -> None:
            """_waiting.py: let the waiting drain() calls go once at low water."""

        def _progress(self, sent: int, taken: int) -> None:
            """_sender.py: count bytes the stream accepted; wake the waiters."""

        def _wake_sender(self) -> None:
            """_sender.py: have the parked sender look at the writer again."""

        def _take_direct_step(self) -> bool:
            """_socket_fast_path.py: whether this task step may send directly."""

        def _uncork(self) -> None:
            """_socket_fast_path.py: the last cork is gone: send what it held."""
