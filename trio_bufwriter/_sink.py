"""Sinks: where a writer's bytes go.  Two kinds, one interface.

* :class:`StreamSink`: any :class:`trio.abc.SendStream`, through its
  ``send_all``.
* :class:`SocketSink`: a plain :class:`trio.SocketStream`, through
  non-blocking ``write(2)`` on its descriptor.  It can also take bytes
  *now*, without the scheduler (:meth:`SocketSink.try_send`), which lets
  the writer hand an idle connection's write straight to the kernel.

Both have ``direct`` (whether ``try_send`` may be used), ``calls`` (sends
that took bytes, for the statistics), ``send(data)`` and ``try_send(view)``.
The writer asks ``direct`` and never which kind it has.  Items that are not
bytes (a file region for ``sendfile``, gathered segments for ``sendmsg``)
would be one more method here, each sink doing what its kind can.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import final

import trio

from ._buffers import BytesLike
from ._socket import is_plain_socket_stream, socket_error


@final
class StreamSink:
    """Sends through a stream's own ``send_all``; never sends without waiting."""

    __slots__ = ("_send_all", "calls", "on_progress")

    #: ``try_send`` takes nothing: every send waits for the stream.
    direct = False

    def __init__(self, stream: trio.abc.SendStream) -> None:
        self._send_all = stream.send_all
        #: Calls to the stream's ``send_all``.
        self.calls = 0
        #: Unused: a stream reports no partial progress.
        self.on_progress: Callable[[], None] | None = None

    async def send(self, data: BytesLike) -> None:
        """Send all of *data* (at most ``max_send_size`` bytes: the writer splits)."""
        self.calls += 1
        await self._send_all(data)

    def try_send(self, data: memoryview) -> int:
        """A stream cannot be written to without waiting: nothing is taken."""
        return 0


@final
class SocketSink:
    """Non-blocking sends on a :class:`trio.SocketStream`'s file descriptor.

    :meth:`send` is ``write(2)`` until it would block, then
    :func:`trio.lowlevel.wait_writable`: trio's ``send_all`` makes a full
    checkpoint around every ``send(2)``, which holds a 1 MiB loopback
    transfer to about 0.78x of a blocking socket; this loop reaches about
    1.0x (``DESIGN.md``).  It is interrupted only inside ``wait_writable``,
    so it always knows how many bytes went out, and it looks the descriptor
    up before every write, so a closed socket's number reused by another
    file is never written to.  Errors are translated as trio's
    ``SocketStream.send_all`` translates them (:func:`socket_error`).
    """

    __slots__ = ("_socket", "calls", "on_progress")

    #: ``try_send`` hands bytes to the kernel at once.
    direct = True

    def __init__(self, stream: trio.SocketStream) -> None:
        self._socket = stream.socket
        #: ``write(2)`` calls that took bytes, whoever made them.
        self.calls = 0
        #: Called when a send had waited and the socket then took bytes (the
        #: writer's stall clock listens).
        self.on_progress: Callable[[], None] | None = None

    def try_send(self, data: memoryview) -> int:
        """Send what the kernel takes now, without blocking; return the count."""
        fd = self._socket.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the wrapped socket was already closed")
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise socket_error(exc)  # noqa: B904 - socket_error sets the cause
        if sent:
            self.calls += 1
        return sent

    async def send(self, data: BytesLike) -> None:
        """Send all of *data*, waiting for the socket to be writable as needed."""
        with memoryview(data) as view:
            sent = self.try_send(view)
            while sent < len(view):
                await trio.lowlevel.wait_writable(self._socket)
                with view[sent:] as rest:
                    taken = self.try_send(rest)
                if taken and self.on_progress is not None:
                    self.on_progress()
                sent += taken


def make_sink(stream: trio.abc.SendStream) -> StreamSink | SocketSink:
    """The fastest sink for *stream*."""
    if is_plain_socket_stream(stream):
        assert isinstance(stream, trio.SocketStream)
        return SocketSink(stream)
    return StreamSink(stream)
