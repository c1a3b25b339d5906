"""The writer's shortcuts to the socket: sends made without the sender task.

Over a :class:`trio.SocketStream` (``_socket.py`` says why, with what was
measured), these calls hand bytes to the kernel themselves, with one
non-blocking ``write(2)``, instead of waking the sender task and waiting for
the scheduler to run it:

* a ``write()`` to an idle writer (``_direct_send``), and the release of the
  last cork on one (``_uncork``): once per task step.  The first write after
  the task yielded goes straight out; any more it makes before it yields
  again are queued and coalesced by the sender, so a burst still leaves in
  one send.  (A step, not an "idle spell" that ends when the sender parks:
  in a ping-pong over the one-way writer, the sender never parks between a
  reply and the next, and every second reply would wait for it.)
* a ``drain()`` over high water (``_push_now``);
* a :class:`~trio_bufwriter.BufferedStream`'s receive, which ends a turn of
  a request/response exchange: what the turn wrote leaves now, in one send
  (``_stream.py``).

All keep the bytes in order: they send only when the sender holds nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._buffers import BytesLike, bad_data
from ._core import _BROKEN
from ._run_context import current_step
from ._write_path import BY_REFERENCE_MIN, _WritePath

if TYPE_CHECKING:
    from ._socket import SocketSink


class _SocketFastPath(_WritePath):
    """Sends made by the caller's own task, when the sender is not in the way.

    A failure of the socket here breaks the writer, and is raised to the
    caller as :exc:`trio.BrokenResourceError` (and counted as reported).
    """

    __slots__ = ()

    def _direct_send(self, data: BytesLike, sink: SocketSink) -> None:
        """Send *data* to the socket now, and queue what it does not take.

        Called by write() when the sender is parked with nothing queued or
        in flight, no cork is held, and this task step has not sent directly
        yet (it has now: see _take_direct_step).
        """
        # One direct send per step: the next write of this step finds the
        # step taken and queues for the sender, so a burst of writes still
        # coalesces, while a lone write (a reply, a ping) skips the trip
        # through the scheduler and does not wake the sender at all.
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise bad_data(data) from None
        # A write too big for the limit is refused even if the socket could
        # take some of it now: refusing means nothing of it is sent.
        self._check_room(len(view))
        try:
            sent = self._try_send(sink, view)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._finish(_BROKEN, exc, "the wrapped stream's send_all failed")
            self._error_reported = True
            raise trio.BrokenResourceError(self._error_message) from exc
        size = len(view)
        if sent:
            self._peak = max(self._peak, size)
            self._sent += sent
            # A batch of its own (this write is counted once write() returns).
            self._batches += 1
            self._batch_mark = self._write_calls + 1
        if sent < size:
            rest = view[sent:]
            if type(data) is bytes and len(rest) >= BY_REFERENCE_MIN:
                self._segments.append(rest)
                self._inflight += len(rest)
            else:
                self._buf += rest
            self._wake_sender()

    def _try_send(self, sink: SocketSink, view: memoryview) -> int:
        """Send what the kernel takes of *view* now, at most max_send_size
        bytes per ``write(2)`` (the sink counts them); return the bytes sent."""
        max_send = self._max_send_size
        if len(view) <= max_send:
            return sink.try_send(view)
        total = 0
        while total < len(view):
            with view[total : total + max_send] as chunk:
                sent = sink.try_send(chunk)
                total += sent
                if sent < len(chunk):
                    break
        return total

    def _take_direct_step(self) -> bool:
        """Whether the current task step may still send directly; if so, it
        has now used its turn."""
        step = current_step()
        if step == self._direct_step:
            return False
        self._direct_step = step
        return True

    def _uncork(self) -> None:
        """The last cork is released: send what the corked writes queued.

        To an idle writer (the sender parked with nothing else queued),
        directly, as a write would be (the whole block in one send, and the
        sender left asleep if the socket took it all); otherwise, or if this
        step has sent directly already, by waking the sender.
        """
        if self._parked_sender is None or self._state:
            self._wake_sender()
            return
        if self._buf and self._sink is not None and not self._turn_batched:
            if not self._take_direct_step():
                self._wake_sender()
                return
            self._push_quietly()
        if self._buf or self._segments:
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
            self._error_reported = False

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
        self._count_batch()
        try:
            segments = self._segments
            while segments:
                # Large writes held by reference come before the buffer.
                segment = segments[0]
                sent = self._try_send(sink, memoryview(segment).cast("B"))
                if sent:
                    self._progress(sent, sent)
                if sent < len(segment):
                    segments[0] = memoryview(segment)[sent:]
                    return False
                del segments[0]
            buf = self._buf
            with memoryview(buf) as view:
                sent = self._try_send(sink, view)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._finish(_BROKEN, exc, "the wrapped stream's send_all failed")
            self._error_reported = True
            raise trio.BrokenResourceError(self._error_message) from exc
        if sent:
            self._peak = max(self._peak, len(buf) + self._inflight)
            del buf[:sent]
            self._progress(sent, 0)
        return len(buf) + self._inflight <= self._low_water
