"""Writing: ``write()``, ``writelines()`` and ``corked()``, which only ever queue.

They are synchronous: they never block and never yield.  A write appends
its bytes to the buffer, or holds a large ``bytes`` by reference; one that
would pass ``max_buffer`` is refused here, whole.  Then the sender task
(``_sender.py``) sends what is queued; over a socket, the first write to an
idle writer goes straight to the kernel instead (``_socket_fast_path.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import trio

from ._buffers import BytesLike, bad_data, is_contiguous_buffer
from ._core import _WriterCore
from ._limits import BufferLimitError

# A bytes object at least this long is queued by reference, not copied: it
# cannot change under us, and above this size the copy costs more than the
# bookkeeping (measured: a 1 MiB copy is ~20% of a 1 MiB loopback send).
BY_REFERENCE_MIN = 64 * 1024

_NO_ITEM = object()


class _WritePath(_WriterCore):
    """The synchronous writes, and the refusal of those past ``max_buffer``.

    A write either queues all of its bytes, in order and contiguous, and
    counts itself in ``_write_calls``, or queues nothing of them and raises.
    """

    __slots__ = ()

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
        if sink is None or self._turn_batched or not self._take_direct_step():
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
        # Over a socket, the first write of a task step is sent at once.
        self._direct_send(data, sink)

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
        if not self._corks:
            self._cork_mark = self._write_calls
        self._corks += 1
        # A parked sender stays parked, and write() must not take the
        # idle writer's direct path to the socket while corked.
        self._sender_wants_data = False
        try:
            yield
        finally:
            self._corks -= 1
            if not self._corks:
                # The block is one piece of its turn, however many writes.
                self._folded += max(0, self._write_calls - self._cork_mark - 1)
                self._uncork()

    # ------------------------------------------------------------------
    # Limits: refusing a write past max_buffer

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
