"""The buffered writer: a synchronous ``write()`` in front of one coalescing sender task.

The writer is one class built as a chain of layers, one concern per module,
each a subclass of the one before.  A write goes through them in this order:

* ``_core.py``: the state and its byte counters (read there first), the
  settings and statistics, and how the writer finishes, closed or broken;
* ``_write_path.py``: ``write()``, ``writelines()`` and ``corked()``, which
  queue, and the refusal of writes past ``max_buffer``;
* ``_socket_fast_path.py``: over a socket, the sends made without the
  sender task;
* ``_waiting.py``: ``drain()`` and ``flush()``, and what lets them go;
* ``_sender.py``: the sender task, which sends what is queued;
* this module: trio's stream interface (``send_all``, ``send_eof``,
  ``aclose``...) on top, and :class:`BufferedWriter`.

Only the core has ``__slots__``: Python allows one base with non-empty slots,
so each layer adds methods only.  The chain costs nothing per call: CPython
caches where a method was found, however deep.
"""

from __future__ import annotations

from typing import final

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled

from ._buffers import BytesLike
from ._core import _BROKEN, _CLOSED, _CLOSING, _EOF_PENDING, _EOF_SENT, _OPEN
from ._sender import _Sender


class _BufferedSendBase(_Sender):
    """The whole writer: the layers below, with trio's stream interface on top.

    Shared by :class:`BufferedWriter` (one-way) and
    :class:`~trio_bufwriter.BufferedStream` (two-way)."""

    __slots__ = ()

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
        """Wait until a :meth:`send_all` might not block.

        :meth:`send_all` of *n* bytes returns without waiting for the wrapped
        stream when ``buffered + n <= high_water``, and otherwise waits for
        low water, which takes the wrapped stream accepting bytes.  So this
        returns once a ``send_all`` of one byte would not wait:

        * at once (as a full checkpoint) while :attr:`buffered` is below
          :attr:`high_water`;
        * while ``buffered >= high_water`` and something is buffered, after
          the wrapped stream has accepted enough to bring :attr:`buffered`
          below :attr:`high_water` (and, with ``high_water=0``, down to
          zero, then as below);
        * with ``high_water=0`` and nothing buffered, a ``send_all`` hands
          its bytes straight to the wrapped stream, so that stream decides:
          this waits in the wrapped stream's own
          ``wait_send_all_might_not_block``.  It takes turns with the sender
          task: when bytes are written meanwhile, the sender cancels that
          call and waits for it to end before it sends, so the wrapped
          stream never sees it overlap a ``send_all``; this then waits for
          those bytes to be accepted and asks again.

        It may return early, as trio allows (another task may write in the
        meantime), but never while a one-byte ``send_all`` would still wait.
        After ``send_eof()`` or during ``aclose()`` it returns at once (a
        ``send_all`` then raises without blocking).  It is a full
        checkpoint.  Cancelling it leaves the writer and its data as they
        were.

        Raises:
          trio.BusyResourceError: another task is in ``send_all``, this method
              or :meth:`send_eof`.
          trio.BrokenResourceError: the writer is (or becomes, while this
              waits) broken; or the wrapped stream's own
              ``wait_send_all_might_not_block`` raised it.
          trio.ClosedResourceError: the writer is closed (or is closed while
              this waits).
        """
        with self._send_conflict:
            await checkpoint_if_cancelled()
            await self._wait_send_all_might_not_block()

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


@final
class BufferedWriter(_BufferedSendBase):
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

    Usually made with :func:`open_buffered_writer`, which also runs the sender.
    """

    __slots__ = ()

    @property
    def transport_stream(self) -> trio.abc.SendStream:
        """The wrapped stream."""
        return self._stream
