"""The writer's shortcuts to the socket: sends made without the sender task.

Over a :class:`trio.SocketStream` (``_socket.py`` says why, with what was
measured), two calls hand bytes to the kernel themselves, with one
non-blocking ``write(2)``, instead of waking the sender task and waiting for
the scheduler to run it:

* a ``write()`` to an idle writer (``_direct_send``), once per idle spell;
* a ``drain()`` over high water (``_push_now``).

Both keep the bytes in order: they send only when the sender holds nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._buffers import BytesLike, bad_data
from ._core import _BROKEN
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
        in flight, no cork is held, and this idle spell's direct send is
        not used yet.
        """
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
