"""The buffered writer: a synchronous ``write()`` in front of one coalescing sender task.

:class:`BufferedWriter` composes three objects, and data flows one way
through them::

    write() --> SendQueue (_send_queue.py) --> run(): sender --> sink (_sink.py)

* the :class:`~._send_queue.SendQueue` holds the bytes and the counters, and
  the ``max_buffer`` rule;
* the sink sends: any stream's ``send_all``, or a socket's non-blocking
  ``write(2)`` (which also lets an idle writer's ``write()`` hand its bytes
  straight to the kernel);
* this class runs the sender task and the waiters (``drain()``, ``flush()``,
  ``send_eof()``, ``aclose()``), and its state comes from
  :class:`~._lifecycle.Lifecycle`.

``DESIGN.md`` says why it works the way it does.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, NoReturn, final

import trio
from trio.lowlevel import (
    Abort,
    ParkingLot,
    RaiseCancelT,
    Task,
    cancel_shielded_checkpoint,
    checkpoint,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from ._anyio import as_send_stream
from ._buffers import BytesLike, byte_view
from ._conflict import ConflictDetector
from ._file_region import FileRegion, RegionError, file_region
from ._lifecycle import START_ADVICE, Lifecycle
from ._limits import BufferLimitError, OverflowPolicy, StallClock, StallTimeoutError
from ._options import WRITER_OPTIONS, named_options
from ._run_context import RUN_CONTEXT, current_step
from ._send_queue import Item, SendQueue
from ._sink import IOV_CAP, make_sink
from ._socket import set_notsent_lowat
from ._state import WriterState, WriterStatistics
from ._water import check_size, water_marks

if TYPE_CHECKING:
    import anyio.abc


DEFAULT_HIGH_WATER = 64 * 1024
# 1 MiB sends keep loopback TCP at ~0.97x of its bulk limit on the reference
# machine, 64 KiB sends only ~0.29x (see shared/ANCHORS.md).
DEFAULT_MAX_SEND_SIZE = 1024 * 1024
# Enough unsent bytes in the kernel to cover one refill (see _socket.py).
DEFAULT_NOTSENT_LOWAT = DEFAULT_MAX_SEND_SIZE

# A bytes object at least this long is queued by reference, not copied: it
# cannot change under us, and above this size the copy costs more than the
# bookkeeping (measured: a 1 MiB copy is ~20% of a 1 MiB loopback send).
BY_REFERENCE_MIN = 64 * 1024


def _frozen(data: object) -> bool:
    """Whether *data* may be held by reference: a ``bytes``, or a read-only
    byte ``memoryview`` of one (nobody can change either).  A ``bytearray``,
    a writable view, an ``mmap`` or an ``array`` may change after
    ``write()`` returns, so they are copied."""
    return type(data) is bytes or (
        type(data) is memoryview
        and data.readonly
        and type(data.obj) is bytes
        and data.format == "B"
        and data.ndim == 1
        and data.c_contiguous
    )


# ``if self._state:`` is the hot paths' "no longer OPEN?" test (OPEN is 0).
_OPEN = WriterState.OPEN
_EOF_PENDING = WriterState.EOF_PENDING
_EOF_SENT = WriterState.EOF_SENT
_CLOSING = WriterState.CLOSING
_CLOSED = WriterState.CLOSED
_BROKEN = WriterState.BROKEN

_SEND_FAILED = "the wrapped stream's send_all failed"


def _step_in_trio(what: str) -> tuple[object, int]:
    """The current task step (see current_step), or the RuntimeError for a
    call from outside trio's thread, before anything has changed."""
    try:
        return current_step()
    except (AttributeError, RuntimeError):  # no task on this thread
        raise RuntimeError(
            f"{what} was called from outside the trio thread that runs the writer; "
            f"from a worker thread, call it through trio.from_thread.run_sync({what[:-2]}, ...)"
        ) from None


@final
class BufferedWriter(Lifecycle, trio.abc.SendStream):
    """A :class:`trio.abc.SendStream` wrapper with a synchronous :meth:`write`.

    Bytes written are appended to a buffer; one background sender task (see
    :meth:`run`) sends everything queued since its last send in a single
    ``send_all`` on the wrapped stream.  :meth:`drain` applies backpressure,
    :meth:`flush` is a barrier, :meth:`aclose` flushes then closes.

    Args:
      stream: the :class:`trio.abc.SendStream` to write to (or, on anyio's
          trio backend, an ``anyio.abc.ByteSendStream``: see "anyio on the
          trio backend").  The writer owns it from now on: closing the
          writer closes it, and nothing else should send on it.
      high_water: :meth:`drain` waits while more than this many bytes are
          buffered (default 64 KiB, or ``4 * low_water`` if only that is given).
      low_water: ... until at most this many are (default ``high_water // 4``).
      max_send_size: the most bytes passed to one ``send_all`` (default 1 MiB).
      max_buffer: the most bytes the writer may hold (queued plus in
          flight); None (the default) for no limit.  It must be above
          *high_water* (:exc:`ValueError` otherwise: :meth:`drain` would
          never wait before writes are refused), so with a small limit give
          a *high_water* below it too.  See "Slow consumers".
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
          ``TCP_NOTSENT_LOWAT`` socket option to this many bytes.  None (the
          default) means :data:`DEFAULT_NOTSENT_LOWAT`, 1 MiB, the size of
          one maximum send, instead of trio's 16 KiB, which costs bulk
          transfers about half their throughput; ``"leave"`` leaves the
          socket's setting alone (trio's 16 KiB, or whatever you set).
          Other streams are not touched.

    When *stream* is a :class:`trio.SocketStream`, a ``write()`` to an idle
    writer (sender parked, nothing queued) also tries one non-blocking send
    on the socket at once, as asyncio does, to save the trip through the
    scheduler; later writes in the same tick are queued and coalesced.

    Its sender task must run (:meth:`run`) for bytes to be sent: usually
    it is made with :func:`open_buffered_writer`, which runs it.  A
    :meth:`flush` or :meth:`drain` that would wait for a sender that was
    never started raises :exc:`RuntimeError` instead of waiting forever.

    Raises:
      TypeError: *stream* is not a send stream, or an option is unknown
          (the error names the nearest option) or not an int.
      ValueError: an option is out of range.
    """

    __slots__ = (
        "_aborted",
        "_cork_mark",
        "_corks",
        "_direct_step",
        "_drain_lot",
        "_eof_event",
        "_eof_sent",
        "_flush_waiters",
        "_flush_waiting",
        "_folded",
        "_guard",
        "_high_water",
        "_hold_direct",
        "_in_writelines",
        "_low_water",
        "_max_send_size",
        "_overflow_abort",
        "_parked_sender",
        "_probe",
        "_probe_done",
        "_q",
        "_room_event",
        "_send_all_calls",
        "_send_conflict",
        "_sender_wants_data",
        "_sending",
        "_sink",
        "_stream",
    )

    @named_options("BufferedWriter()", WRITER_OPTIONS)
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
        self._max_send_size = check_size("max_send_size", max_send_size, 1)
        super().__init__()
        self._stream = stream
        self._q = SendQueue(max_buffer)
        self._sink = make_sink(stream)
        self._send_all_calls = 0
        # Corks held, and how many writes the corked blocks folded into one
        # piece each (a BufferedStream counts a turn's pieces).
        self._corks = 0
        self._cork_mark = 0
        self._folded = 0
        self._in_writelines = False
        # The sender: parked (its task, else None); True only while it is
        # parked with nothing to do and no cork, when write() must wake it;
        # True while it is inside a send (then only it may touch what it took).
        self._parked_sender: Task | None = None
        self._sender_wants_data = False
        self._sending = False
        # The task step that made the last direct send: one per step.
        self._direct_step: tuple[object, int] | None = None
        # Set by a BufferedStream: hold writes for the sender, not the socket.
        self._hold_direct = False
        self._drain_lot = ParkingLot()
        # flush() waits: (target, event), targets non-decreasing.  (Made on
        # first use: an empty deque costs ~600 bytes per idle writer.)
        self._flush_waiters: deque[tuple[int, trio.Event]] | None = None
        self._flush_waiting = 0
        self._eof_event: trio.Event | None = None
        self._eof_sent = False
        # wait_send_all_might_not_block: its event, and while it asks the
        # wrapped stream itself, the scope the sender cancels to take the
        # stream back and the event set once that call has ended.
        self._room_event: trio.Event | None = None
        self._probe: trio.CancelScope | None = None
        self._probe_done: trio.Event | None = None
        self._send_conflict = ConflictDetector(
            "another task is already using this writer's send_all, "
            "wait_send_all_might_not_block or send_eof (use write() to send "
            "from many tasks at once)"
        )
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_HIGH_WATER // 4
        self.set_water_marks(high_water, low_water)
        set_notsent_lowat(stream, None if notsent_lowat == "leave" else notsent_lowat)
        self._overflow_abort = overflow == "abort"
        self._aborted = False
        # Only a writer that can abort needs a cancel scope around its sends.
        self._guard: StallClock | None = None
        if stall_timeout is not None or (max_buffer is not None and overflow == "abort"):
            self._guard = StallClock(stall_timeout)
            self._sink.on_progress = self._partial_progress

    def __del__(self) -> None:
        # Like an unclosed socket: bytes that will never be sent are worth a warning.
        try:
            held = self._q.held
            state = self._state
        except AttributeError:  # the constructor raised
            return
        if held and state < _CLOSED:
            warnings.warn(
                f"a BufferedWriter with {held} unsent bytes was garbage-collected "
                f"without aclose() (was its run() ever started? {START_ADVICE})",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )

    # ------------------------------------------------------------------
    # Settings and introspection

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
        max_buffer = self._q.max_buffer
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
    def transport_stream(self) -> trio.abc.SendStream:
        """The wrapped stream."""
        return self._stream

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
        q = self._q
        return len(q.buf) + q.inflight

    @property
    def need_drain(self) -> bool:
        """Whether :meth:`drain` would wait now: more than :attr:`high_water` bytes
        are buffered."""
        return self._q.held > self._high_water

    @property
    def max_buffer(self) -> int | None:
        """The most bytes the writer will hold (None: no limit); see ``overflow``."""
        return self._q.max_buffer

    @property
    def stalled_for(self) -> float:
        """Seconds the buffer has been over high water while the wrapped stream
        took nothing (0.0 if it is not stalled).  Measured only by a writer
        with a ``stall_timeout`` or an ``"abort"`` limit; 0.0 otherwise."""
        return 0.0 if self._guard is None else self._guard.stalled_for

    def statistics(self) -> WriterStatistics:
        """Return a :class:`WriterStatistics` snapshot of this writer's counters."""
        q = self._q
        held = q.held
        q.peak = max(q.peak, held)
        return WriterStatistics(
            bytes_written=q.written,
            bytes_sent=q.sent,
            write_calls=q.write_calls,
            send_calls=self._sink.calls,
            batches=q.batches,
            peak_buffered=q.peak,
            buffered=held,
            state=self._state,
            overflows=q.overflows,
            stalled_for=self.stalled_for,
            error=self._describe_failure(),
        )

    # ------------------------------------------------------------------
    # Writing: synchronous, never blocks, never yields

    def write(self, data: BytesLike) -> None:
        """Queue *data* to be sent, and return at once.

        Never blocks and never yields to the scheduler.  The bytes are copied,
        so a mutable buffer can be reused as soon as this returns (a ``bytes``
        object of 64 KiB or more, or a read-only byte ``memoryview`` of one,
        which cannot change, is held by reference instead).  The bytes of
        one call are sent contiguously: writes from any number of tasks
        never interleave.  The sender picks them up the
        next time it runs, with everything else queued by then; over a
        :class:`trio.SocketStream`, a write to an idle writer is handed to
        the kernel at once instead (see :meth:`corked` to hold several
        writes together).  It does not apply backpressure: :meth:`drain` does.

        *data* is any object with a C-contiguous buffer (``bytes``,
        ``bytearray``, ``memoryview``, ``array.array``, ``mmap``...).

        Raises:
          TypeError: *data* is not such an object (``str``, ``int``, a
              non-contiguous ``memoryview``...).  Nothing is queued.
          RuntimeError: called while :meth:`writelines` of this writer is
              iterating (from the iterable), or from another thread when it
              would wake the sender.  Nothing is queued.
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
        # The hot path: the queue's fields are used directly (a method call
        # per write would cost ~15% of write()); the rules are still the
        # queue's (check_room, hold).
        if self._state:
            self._raise_not_writable()
        if self._sender_wants_data:
            self._write_when_idle(data)
            return
        q = self._q
        try:
            if len(data) >= BY_REFERENCE_MIN and not self._corks and _frozen(data):
                q.check_room(len(data))
                # (A view of our own: the caller may release theirs.)
                q.hold(data if type(data) is bytes else memoryview(data))
            elif q.max_buffer is None:
                q.buf += data  # takes any C-contiguous buffer, refuses the rest
            elif type(data) is bytes:
                q.check_room(len(data))
                q.buf += data
            else:
                view = byte_view(data, "write()")
                q.check_room(len(view))
                q.buf += view
        except TypeError:
            # No len() (a PickleBuffer), or not a buffer at all: the rule decides.
            self._queue_copy(byte_view(data, "write()"))
        except BufferLimitError as exc:
            self._refuse(exc)
        q.write_calls += 1

    def writelines(self, data: Iterable[BytesLike]) -> None:
        """Queue every buffer of *data*, in order, as one atomic write.

        The same as ``write(b"".join(data))`` without building the joined
        copy; items :meth:`write` would hold by reference (a ``bytes`` of 64
        KiB or more) are held by reference here too, and over a
        :class:`trio.SocketStream` leave with the copied bytes around them
        in one ``writev(2)``.  It is all or nothing: if an item is not bytes-like, the
        iterable raises, or the whole would pass ``max_buffer``, nothing of
        this call is queued.  The iterable must not write to this writer
        (that raises :exc:`RuntimeError`, and nothing of it is queued).

        It raises what :meth:`write` raises, and whatever iterating *data*
        raises.
        """
        if self._state:
            self._raise_not_writable()
        if self._in_writelines:
            self._raise_reentrant("writelines()")
        wants_data = self._sender_wants_data
        if wants_data:
            _step_in_trio("writer.writelines()")  # it will wake the sender
        # While the iterable runs, a write() from it must take the checked
        # path (_write_when_idle), which refuses it: nothing else can touch
        # the queue until this call has put its bytes in.
        self._in_writelines = True
        self._sender_wants_data = True
        chunk = bytearray()
        # Large immutable items are held by reference, between copied runs
        # (over a socket they then leave gathered, in one writev).
        held: list[BytesLike] = []
        size = 0
        by_reference = not self._corks
        try:
            for item in data:
                try:
                    if by_reference and len(item) >= BY_REFERENCE_MIN and _frozen(item):
                        if chunk:
                            held.append(chunk)
                            size += len(chunk)
                            chunk = bytearray()
                        held.append(item if type(item) is bytes else memoryview(item))
                        size += len(item)
                        continue
                    chunk += item
                except TypeError:
                    chunk += byte_view(item, "writelines()")
        finally:
            self._in_writelines = False
            self._sender_wants_data = wants_data
        if held:
            self._check_room(size + len(chunk))
            for item in held:
                if type(item) is bytearray:
                    self._q.buf += item
                else:
                    self._q.hold(item)
            self._q.buf += chunk
        else:
            self._queue_copy(chunk)
        self._q.write_calls += 1
        if self._sender_wants_data:
            self._wake_sender()

    def write_file(
        self, file: object, offset: int = 0, count: int | None = None, *, thread: bool = False
    ) -> None:
        """Queue *count* bytes of an open *file* from *offset*, and return at once.

        Like :meth:`write`: synchronous, never yields, and the region is sent
        in order with the bytes written before and after it, never
        interleaved.  *file* is a file opened in binary mode (anything with
        a ``fileno()`` of a regular file); *count* None means to the end of
        the file as it is now.  The file's descriptor is duplicated, so the
        file may be closed as soon as this returns (``with open(path, "rb")
        as f: writer.write_file(f)``); the duplicate is closed once the
        region is sent or discarded.  The file must not shrink before then.

        Over a :class:`trio.SocketStream` the region goes out with
        ``sendfile(2)``: the bytes never pass through Python.  Over any other
        stream (TLS, memory streams, anyio) it is read in chunks of at most
        256 KiB (and :attr:`max_send_size`) and passed to ``send_all``, one
        chunk in memory at a time.  With *thread* True the file is read in a
        worker thread, so a file not in the page cache does not block the
        event loop on the disk; the default reads it in the event loop,
        which is faster for cached files (see "Files and large payloads").

        The region's bytes count in :attr:`buffered` and against the water
        marks, so :meth:`drain` applies backpressure as for written bytes;
        they do not count against ``max_buffer``, which bounds memory.

        Raises:
          TypeError: *file* has no ``fileno()`` or is in text mode, or an
              argument has the wrong type.  Nothing is queued.
          ValueError: *file* is closed, write-only or not a regular file,
              *offset* or *count* is negative, or the region passes the
              end of the file.  Nothing is queued.
          OSError: the descriptor could not be duplicated.  Nothing is queued.
          trio.ClosedResourceError, trio.BrokenResourceError, RuntimeError:
              as :meth:`write`.

        If the file turns out shorter than the region when it is sent (it
        was truncated), or reading it fails, the writer breaks: the waiters
        raise :exc:`trio.BrokenResourceError` whose message says how many of
        the region's bytes were sent.  A region discarded by :meth:`aclose`
        or a failure counts as lost bytes, as written bytes do.
        """
        if self._state:
            self._raise_not_writable()
        if self._in_writelines:
            self._raise_reentrant("write_file()")
        wants_data = self._sender_wants_data
        if wants_data:
            _step_in_trio("writer.write_file()")  # it will wake the sender
        region = file_region(file, offset, count, thread)
        q = self._q
        if len(region):
            q.hold_region(region)
        else:
            region.close()
        q.write_calls += 1
        if wants_data:
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
        if self._in_writelines:
            self._raise_reentrant("corked()")
        if not self._corks:
            self._cork_mark = self._q.write_calls
        self._corks += 1
        # A parked sender stays parked, and write() must not take the idle
        # writer's direct path to the socket while corked.
        self._sender_wants_data = False
        try:
            yield
        finally:
            self._corks -= 1
            if not self._corks:
                # The block is one piece of its turn, however many writes.
                self._folded += max(0, self._q.write_calls - self._cork_mark - 1)
                self._uncork()

    def _queue_copy(self, data: bytes | bytearray | memoryview) -> None:
        """Append *data* (flat bytes) to the buffer, if max_buffer has room."""
        self._check_room(len(data))
        self._q.buf += data

    def _write_when_idle(self, data: BytesLike) -> None:
        """write() with the sender parked and nothing queued or in flight (or
        with writelines iterating, which routes writes here to refuse them)."""
        if self._in_writelines:
            self._raise_reentrant("write()")
        step = _step_in_trio("writer.write()")
        q = self._q
        view = memoryview(data) if type(data) is bytes else byte_view(data, "write()")
        size = len(view)
        if q.max_buffer is not None:
            self._check_room(size)
        if self._sink.direct and not self._hold_direct and step != self._direct_step:
            # Over a socket, the first write of a task step is sent at once;
            # the next ones of the step queue, so a burst still coalesces.
            self._direct_step = step
            self._direct_send(view, data)
        elif size >= BY_REFERENCE_MIN and _frozen(data):
            q.hold(data if type(data) is bytes else view)
            self._wake_sender()
        else:
            q.buf += view
            self._wake_sender()
        q.write_calls += 1

    def _raise_not_writable(self) -> NoReturn:
        self._raise_if_finished()
        raise trio.ClosedResourceError(
            "the writer is closing" if self._state is _CLOSING else "the writer has sent EOF"
        )

    @staticmethod
    def _raise_reentrant(what: str) -> NoReturn:
        raise RuntimeError(
            f"{what} was called on this writer while its writelines() was iterating: "
            "the iterable must not write to the writer it is written to (build the "
            "items first, then call writelines())"
        )

    def _check_room(self, size: int) -> None:
        """Refuse a write of *size* bytes past max_buffer, by the overflow policy."""
        try:
            self._q.check_room(size)
        except BufferLimitError as exc:
            self._refuse(exc)

    def _refuse(self, exc: BufferLimitError) -> NoReturn:
        """Apply the overflow policy to a write the queue refused (nothing queued)."""
        if not self._overflow_abort:
            self._q.overflows += 1
            raise exc
        _step_in_trio("writer.write()")  # aborting wakes the sender
        self._abort(exc, f"aborted: {exc}")
        self._raise_failure()

    # ------------------------------------------------------------------
    # Sends made by the caller's own task (over a socket, when the sender
    # holds nothing: order is kept)

    def _direct_send(self, view: memoryview, data: BytesLike) -> None:
        """Send *view* to the socket now and queue what it does not take."""
        try:
            sent = self._try_send(view)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._fail(exc, _SEND_FAILED)
            self._raise_failure()
        q = self._q
        if sent:
            q.peak = max(q.peak, len(view))
            q.sent += sent
            q.count_direct_batch()
        if sent < len(view):
            rest = view[sent:]
            if len(rest) >= BY_REFERENCE_MIN and _frozen(data):
                q.hold(rest)
            else:
                q.buf += rest
            self._wake_sender()

    def _try_send(self, view: memoryview) -> int:
        """Hand the kernel what it takes of *view* now, at most max_send_size
        bytes per ``write(2)``; return the bytes sent."""
        max_send = self._max_send_size
        if len(view) <= max_send:
            return self._sink.try_send(view)
        total = 0
        while total < len(view):
            with view[total : total + max_send] as chunk:
                sent = self._sink.try_send(chunk)
                total += sent
                if sent < len(chunk):
                    break
        return total

    def _uncork(self) -> None:
        """The last cork is released: send what the corked writes queued,
        directly if the writer is idle and this step may, else by the sender."""
        if self._parked_sender is None or self._state:
            self._wake_sender()
            return
        q = self._q
        if q.buf and self._sink.direct and not self._hold_direct:
            step = current_step()
            if step == self._direct_step:
                self._wake_sender()
                return
            self._direct_step = step
            self._push_quietly()
        if q:
            self._wake_sender()
        else:
            # Parked, nothing queued, no cork: idle again.
            self._sender_wants_data = True

    def _push_quietly(self) -> None:
        """:meth:`_push_now` for callers that must not raise (the end of a
        cork, a receive): a failure breaks the writer, and the next call
        that writes or waits raises it."""
        try:
            self._push_now()
        except trio.BrokenResourceError:
            self._reported = False

    def _push_now(self) -> bool:
        """Over high water (or at the end of a turn): hand the queue to the
        socket here, if the sender holds nothing and no cork is held.
        Return whether the buffer is now at or below low water."""
        if not self._sink.direct or self._sending or self._corks or self._state:
            return False
        q = self._q
        q.count_batch()
        try:
            if q.segments and not self._push_segments():
                return False
            buf = q.buf
            with memoryview(buf) as view:
                sent = self._try_send(view)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._fail(exc, _SEND_FAILED)
            self._raise_failure()
        if sent:
            held = len(buf) + q.inflight
            if held > q.peak:
                q.peak = held
            del buf[:sent]
            q.accepted(sent, 0)
            self._progress()
        return len(buf) + q.inflight <= self._low_water

    def _push_segments(self) -> bool:
        """:meth:`_push_now` for a queue with segments: they (up to a file
        region, which is the sender's to send) and the buffer after them go
        in gathered ``writev`` calls.  Return whether every segment went."""
        q = self._q
        segments = q.segments
        max_send = self._max_send_size
        while segments:
            views: list[memoryview] = []
            size = 0
            for segment in segments:
                if type(segment) is FileRegion:
                    break
                if len(views) >= IOV_CAP - 1 or size >= max_send:
                    break
                view = memoryview(segment)
                if size + len(view) > max_send:
                    view = view[: max_send - size]
                views.append(view)
                size += len(view)
            whole = len(views) == len(segments) and size < max_send
            if not views:
                return False  # a file region comes first
            buf = q.buf
            tail = memoryview(buf)[: max_send - size] if whole and buf else None
            if tail is not None:
                views.append(tail)
                size += len(tail)
            try:
                sent = self._sink.try_send_gathered(views)
            finally:
                if tail is not None:
                    tail.release()
            if not sent:
                return False
            left = sent
            taken = 0
            while segments and left:
                head = segments[0]
                assert type(head) is not FileRegion  # (sent bytes stop before one)
                first = len(head)
                if left < first:
                    segments[0] = memoryview(head)[left:]
                    taken += left
                    left = 0
                    break
                left -= first
                taken += first
                del segments[0]
            q.peak = max(q.peak, q.held)
            q.accepted(taken, taken)
            if left:
                del buf[:left]
                q.accepted(left, 0)
            self._progress()
            if sent < size:
                return False
        return True

    # ------------------------------------------------------------------
    # Waiting

    async def drain(self) -> None:
        """Apply backpressure: wait while the buffer is over the high-water mark.

        If more than :attr:`high_water` bytes are buffered, wait until at most
        :attr:`low_water` are; otherwise return at once.

        It is always a cancellation point, but it yields to the scheduler
        only when it waits: below high water it returns without letting
        other tasks run (a cancelled caller still gets :exc:`trio.Cancelled`).
        So a loop of ``write(); await drain()`` lets the sender run only
        once high water is passed; any other checkpoint (a receive, a
        sleep, :meth:`flush`) does too.

        Any number of tasks may wait at once.  Cancelling a waiting drain
        leaves the writer and its data untouched.

        Raises:
          trio.BrokenResourceError: the wrapped stream failed (now or before).
          trio.ClosedResourceError: the writer is closed (or was closed while
              waiting with bytes still unsent).
          RuntimeError: it would wait, and the writer's :meth:`run` was never
              started.
        """
        if self._state:
            self._raise_if_finished()
        q = self._q
        if len(q.buf) + q.inflight > self._high_water and not self._push_now():
            await self._wait_for_low_water()
        elif RUN_CONTEXT.task._cancel_status.effectively_cancelled:
            await checkpoint()  # raises Cancelled

    async def flush(self) -> None:
        """Wait until every byte written before this call has been accepted by
        the wrapped stream's ``send_all``.

        A barrier, not a drain: it waits for all bytes written before the
        call (even while corked, which it overrides); it may return only once
        later bytes are sent too, when the sender merged them into the same
        send.  It is always a checkpoint.  Any number of tasks may wait at
        once.  Cancelling it leaves the writer and its data untouched: the
        bytes are still sent.  For a socket, "accepted" means the kernel has
        the bytes, not that the peer received them.

        Raises:
          trio.BrokenResourceError: the wrapped stream failed before the bytes
              were accepted (or before this call).
          trio.ClosedResourceError: the writer is closed (or was forcefully
              closed while waiting).
          RuntimeError: it would wait, and the writer's :meth:`run` was never
              started.
        """
        if self._state:
            self._raise_if_finished()
        await self._wait_sent(self._q.sent + self._q.held, "flush()")

    async def _wait_for_low_water(self) -> None:
        if not self._run_entered:
            await self._check_started("drain()")
            if self._state >= _CLOSED:
                self._raise_for_waiter()
            if self._q.held <= self._low_water:
                return
        # The sender must not sit on a corked buffer while we wait for it.
        self._wake_sender()
        if self._guard is not None:
            self._guard.arm(True)
        # Low water is reached once this much has been sent, if nothing more
        # is written: a graceful close that sent it all satisfies the wait.
        q = self._q
        target = q.sent + q.held - self._low_water
        await self._drain_lot.park()
        # Woken either at low water or because the writer finished.
        if self._state >= _CLOSED and q.sent < target:
            self._raise_for_waiter()

    async def _wait_sent(self, target: int, what: str) -> None:
        if self._q.sent >= target:
            await checkpoint()
            return
        if not self._run_entered:
            await self._check_started(what)
            if self._q.sent >= target:
                return
            if self._state >= _CLOSED:
                self._raise_for_waiter()
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
        if self._q.sent < target:
            # Only _finish sets an event early.
            self._raise_for_waiter()

    def _wake_drainers_if_low(self) -> None:
        if self._drain_lot and self._q.held <= self._low_water:
            self._drain_lot.unpark_all()

    def _backpressured(self) -> bool:
        """Over high water, or a drain() still waiting for low water: the
        stall clock runs while this holds and nothing gets through."""
        return self._q.held > self._high_water or bool(self._drain_lot)

    def _partial_progress(self) -> None:
        """The socket took part of a send: bytes got through."""
        assert self._guard is not None
        self._guard.progress(self._backpressured())

    def _progress(self) -> None:
        """Bytes were accepted: wake whoever that lets go."""
        if self._guard is not None:
            self._guard.progress(self._backpressured())
        waiters = self._flush_waiters
        if waiters:
            sent = self._q.sent
            while waiters and waiters[0][0] <= sent:
                waiters.popleft()[1].set()
        self._wake_drainers_if_low()
        if self._room_event is not None:
            self._room_event.set()

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
            await trio.lowlevel.checkpoint_if_cancelled()
            self.write(data)
            self._send_all_calls += 1
            if self._q.held > self._high_water:
                await self._wait_for_low_water()
            else:
                await cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until a :meth:`send_all` might not block.

        :meth:`send_all` of *n* bytes returns without waiting for the wrapped
        stream when ``buffered + n <= high_water``, and otherwise waits for
        low water.  So this returns once a ``send_all`` of one byte would
        not wait: at once while :attr:`buffered` is below :attr:`high_water`;
        otherwise once the wrapped stream has accepted enough to bring it
        below (with ``high_water=0``: down to zero, and then the wrapped
        stream's own ``wait_send_all_might_not_block`` decides, taking turns
        with the sender so the two never overlap).

        It may return early, as trio allows, but never while a one-byte
        ``send_all`` would still wait.  After ``send_eof()`` or during
        ``aclose()`` it returns at once.  It is a full checkpoint.
        Cancelling it leaves the writer and its data as they were.

        Raises:
          trio.BusyResourceError: another task is in ``send_all``, this method
              or :meth:`send_eof`.
          trio.BrokenResourceError: the writer is (or becomes, while this
              waits) broken; or the wrapped stream's own
              ``wait_send_all_might_not_block`` raised it.
          trio.ClosedResourceError: the writer is closed (or is closed while
              this waits).
          RuntimeError: it would wait, and :meth:`run` was never started.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint_if_cancelled()
            await self._wait_room()

    async def _wait_room(self) -> None:
        waited = False
        q = self._q
        while True:
            state = self._state
            if state:
                if state >= _CLOSED:
                    if waited:
                        self._raise_for_waiter()
                    self._raise_if_finished()
                # EOF sent or pending, or closing: a send_all raises at once.
                break
            held = q.held
            if held < self._high_water:
                break
            if not self._run_entered:
                await self._check_started("wait_send_all_might_not_block()")
                waited = True
                continue
            waited = True
            if held:
                # Wait for the wrapped stream to accept enough to bring the
                # buffer below high water (all of it, for high water 0).
                high = self._high_water
                target = q.sent + (held - high + 1 if high else held)
                event = self._room_event = trio.Event()
                self._wake_sender()
                try:
                    await event.wait()
                finally:
                    self._room_event = None
                if self._state >= _CLOSED and q.sent >= target:
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
        cancelled it to send (:meth:`_end_probe`), or the writer finished
        (:meth:`_finish` cancels it before it closes the stream).
        """
        scope = trio.CancelScope()
        done = trio.Event()
        self._probe = scope
        self._probe_done = done
        try:
            with scope:
                await self._stream.wait_send_all_might_not_block()
        finally:
            self._probe = None
            self._probe_done = None
            done.set()
        return not scope.cancelled_caught

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
          RuntimeError: :meth:`run` was never started.
        """
        with self._send_conflict:
            if not isinstance(self._stream, trio.abc.HalfCloseableStream):
                raise TypeError(
                    f"cannot send EOF: the wrapped {type(self._stream).__name__} is "
                    "not a trio.abc.HalfCloseableStream (use aclose() instead)"
                )
            if self._state is _OPEN and not self._run_entered:
                await self._check_started("send_eof()")
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
        report (:class:`trio.SSLStream` on top relies on that).

        Raises:
          trio.BrokenResourceError: the wrapped stream failed with bytes
              still unsent, and no call had reported it yet.
          RuntimeError: bytes were written but :meth:`run` was never
              started: they are discarded, and the stream is closed.
          trio.Cancelled: cancelled while flushing (the stream is closed
              all the same; the unsent bytes are discarded).
        """
        state = self._state
        if state is _CLOSED:
            await checkpoint()
            return
        q = self._q
        never_run = not self._run_entered and (q.held > 0 or state is _EOF_PENDING)
        try:
            if state is not _BROKEN and not never_run:
                if state is not _CLOSING:
                    self._state = _CLOSING
                    self._wake_sender()
                try:
                    await self._wait_sent(q.sent + q.held, "aclose()")
                except trio.BrokenResourceError:
                    if self._write_api_used():
                        raise
                except trio.ClosedResourceError:
                    # Another task's aclose() closed it meanwhile (forcefully):
                    # closed is what this call was asked for.
                    pass
        finally:
            # Decide before _finish turns BROKEN into CLOSED.
            unreported = self._lost_unreported(q.lost) and self._write_api_used()
            held = q.held
            if self._state is not _CLOSED:
                self._finish(_CLOSED)
            await self._stream.aclose()
        if never_run:
            raise RuntimeError(
                f"{held} written bytes were never sent: this writer's run() was never "
                f"started; {START_ADVICE}"
            )
        if unreported:
            self._raise_failure(f"{self._message}; {q.lost} written bytes were not sent")

    def _write_api_used(self) -> bool:
        """Whether write()/writelines() were used, not only send_all(): a
        writer used only as a trio stream keeps trio's close semantics."""
        return self._q.write_calls > self._send_all_calls

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
        self._enter_run()
        task_status.started()
        q = self._q
        try:
            stream = self._stream
            while True:
                state = self._state
                if q and (
                    not self._corks
                    or state
                    or self._flush_waiting
                    or self._drain_lot
                    or self._room_event is not None
                ):
                    if not await self._send_queued():
                        break
                elif state is _OPEN or state is _CLOSING:
                    self._sender_wants_data = not self._corks
                    self._direct_step = None
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
                            self._fail(exc, "the wrapped stream's send_eof failed")
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
                what = self._how_task_ended(exc)
                message = f"the writer's sender task was {what}"
                if q.inflight:
                    message += (
                        f" in the middle of a send: an unknown part of its "
                        f"{q.inflight} bytes reached the stream"
                    )
                self._fail(None if what == "cancelled" else exc, message)
            raise

    async def _send_queued(self) -> bool:
        """Send everything queued; return False if the writer finished meanwhile."""
        if self._probe is not None:
            # wait_send_all_might_not_block is asking the wrapped stream; it
            # must be out of that call before we send (trio forbids both at
            # once).  The bytes are still counted as buffered meanwhile.
            await self._end_probe()
            if self._state >= _CLOSED:
                return False
        segments = self._q.take()
        guard = self._guard
        self._sending = True
        try:
            if guard is None:
                return await self._send_segments(segments)
            with guard.start_send(self._backpressured()) as scope:
                done = await self._send_segments(segments)
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

    async def _send_segments(self, segments: list[Item]) -> bool:
        try:
            if self._sink.gathers and len(segments) > 1:
                return await self._send_gathered_items(segments)
            max_send = self._max_send_size
            send = self._sink.send
            for data in segments:
                if type(data) is FileRegion:
                    if not await self._send_region(data):
                        return False
                    continue
                size = len(data)
                if size <= max_send:
                    await send(data)
                    if not self._sent_some(size):
                        return False
                    continue
                with memoryview(data) as view:
                    for start in range(0, size, max_send):
                        with view[start : start + max_send] as chunk:
                            await send(chunk)
                            if not self._sent_some(len(chunk)):
                                return False
            return True
        except RegionError as exc:
            if self._state < _CLOSED:
                self._fail(exc.__cause__, str(exc))
            return False
        except Exception as exc:
            # trio #889: a failed send_all sent an unknown amount; never retry.
            if self._state < _CLOSED:
                self._fail(exc, _SEND_FAILED)
            return False

    async def _send_gathered_items(self, items: list[Item]) -> bool:
        """Over a socket: the buffers between regions go out gathered, up to
        :data:`IOV_CAP` buffers and :attr:`max_send_size` bytes per ``writev``."""
        max_send = self._max_send_size
        send = self._sink.send_gathered
        batch: list[memoryview] = []
        size = 0
        for item in items:
            if type(item) is FileRegion:
                if batch:
                    await send(batch)
                    if not self._sent_some(size):
                        return False
                    batch = []
                    size = 0
                if not await self._send_region(item):
                    return False
                continue
            view = memoryview(item)
            end = len(view)
            start = 0
            while start < end:
                take = min(end - start, max_send - size)
                batch.append(view[start : start + take] if take < end else view)
                size += take
                start += take
                if size >= max_send or len(batch) >= IOV_CAP:
                    await send(batch)
                    if not self._sent_some(size):
                        return False
                    batch = []
                    size = 0
        if batch:
            await send(batch)
            return self._sent_some(size)
        return True

    async def _send_region(self, region: FileRegion) -> bool:
        """Send a file region through the sink, a piece at a time."""
        send_file = self._sink.send_file
        max_send = self._max_send_size
        while len(region):
            size = await send_file(region, max_send)
            if self._state >= _CLOSED:
                return False
            if not size:
                raise region.failure("the file ended (was it truncated?)")
            self._q.region_sent(region, size)
            self._progress()
        return True

    def _sent_some(self, size: int) -> bool:
        if self._state >= _CLOSED:
            # Closed (or broken) while that send was in flight: the counters
            # were settled by _finish, and nothing more is to be sent.
            return False
        self._q.accepted(size, size)
        self._progress()
        return True

    async def _end_probe(self) -> None:
        """Take the wrapped stream back from wait_send_all_might_not_block."""
        while self._probe is not None:
            done = self._probe_done
            assert done is not None
            self._probe.cancel()
            await done.wait()

    def _wake_sender(self) -> None:
        self._sender_wants_data = False
        task = self._parked_sender
        if task is not None:
            self._parked_sender = None
            reschedule(task)

    def _abort_park(self, _: RaiseCancelT) -> Abort:
        self._parked_sender = None
        return Abort.SUCCEEDED

    # ------------------------------------------------------------------
    # Finishing

    def _fail(self, cause: BaseException | None, message: str) -> None:
        """Break the writer: discard, wake everyone."""
        self._set_failure(cause, message)
        self._finish(_BROKEN)

    def _abort(self, cause: BaseException, message: str) -> None:
        """Break the writer, interrupt the send, and have the sender close the stream."""
        self._aborted = True
        self._fail(cause, message)
        if self._guard is not None:
            self._guard.abort()

    def _finish(self, state: WriterState) -> None:
        """Enter CLOSED or BROKEN: discard what can no longer be sent, wake everyone."""
        self._state = state
        self._q.discard()
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

    # ------------------------------------------------------------------
    # For a BufferedStream's turns (_stream.py)

    def _end_turn(self) -> tuple[int, int]:
        """A receive ends a turn: hand what is queued to the socket (quietly:
        a failure is raised by the next call that writes or waits); return
        (pieces written, bytes sent) so far, a corked block being one piece."""
        q = self._q
        if q.buf or q.segments:
            self._push_quietly()
        return q.write_calls - self._folded, q.sent
