"""What the writer does differently when it wraps a :class:`trio.SocketStream`.

Four things, all measured on loopback TCP (see the benchmarks):

* An idle writer sends at once.  When the sender task is parked with nothing
  queued, ``write()`` hands the bytes straight to the kernel with one
  non-blocking ``write(2)`` on the socket, as asyncio does, instead of waking
  the sender and waiting for the scheduler to run it (which costs a ping-pong
  round trip about 1.6x of plain ``send_all``'s).  Only the first write of a
  task step goes this way (``_socket_fast_path.py``); the next ones in the
  same step are queued and coalesced as usual.
* A :class:`~trio_bufwriter.BufferedStream` receives with its own
  non-blocking ``read(2)`` (:class:`SocketSource`), so that it can choose
  when to yield (``_stream.py``).
* The sender sends with its own non-blocking loop (:class:`SocketSink`)
  instead of the stream's ``send_all``.
* ``TCP_NOTSENT_LOWAT``.  trio sets it to 16 KiB on every ``SocketStream``,
  so the kernel refuses to queue more than ~16 KiB of unsent bytes: a large
  ``send_all`` then takes many trips through the event loop, and between two
  sends the kernel runs dry while the writer prepares the next one.  The
  writer raises it to the size of its largest send (explicitly, and only
  when asked to by the ``notsent_lowat`` argument, which defaults to that),
  so that the kernel holds enough to stay busy for one refill — trio's own
  rule of thumb is "bandwidth x rescheduling interval".
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from contextlib import suppress
from typing import final

import trio

_CLOSED_ERRNOS = {errno.EBADF, errno.ENOTSOCK}


@final
class SocketSink:
    """Non-blocking sends on a :class:`trio.SocketStream`'s file descriptor.

    :meth:`send_all` is what the sender task uses instead of the stream's own
    ``send_all``: ``write(2)`` until it would block, then
    :func:`trio.lowlevel.wait_writable`.  trio's ``send_all`` makes a full
    checkpoint around every ``send(2)`` (a trip through the scheduler per
    partial send), which holds a 1 MiB loopback transfer to about 0.78x of a
    blocking socket even with ``TCP_NOTSENT_LOWAT`` raised; this loop reaches
    ~1.0x (measured side by side, see the benchmarks).  It can only be
    interrupted inside ``wait_writable``, so unlike trio's it always knows how
    many bytes went out, and it never writes after the stream was closed:
    closing the stream wakes ``wait_writable`` with ClosedResourceError, and
    the descriptor is looked up before every write, so a number reused by
    another file is never written to.

    Errors are translated as ``trio.SocketStream.send_all`` translates them:
    :exc:`trio.BrokenResourceError` chained to the :exc:`OSError`, or
    :exc:`trio.ClosedResourceError`.
    """

    __slots__ = ("_socket", "calls", "on_progress")

    def __init__(self, stream: trio.SocketStream) -> None:
        self._socket = stream.socket
        #: ``write(2)`` calls that took bytes, whoever made them (the sender
        #: through :meth:`send_all`, or the writer's direct sends).
        self.calls = 0
        #: Called when a send had to wait and the socket then took some bytes
        #: (the writer's stall clock listens).
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
            if exc.errno in _CLOSED_ERRNOS:
                raise trio.ClosedResourceError("the wrapped socket was already closed") from None
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
        if sent:
            self.calls += 1
        return sent

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
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


#: What trio's SocketStream.receive_some asks for when given no size.
DEFAULT_RECEIVE_SIZE = 65536


@final
class SocketSource:
    """Non-blocking receives on a :class:`trio.SocketStream`'s file descriptor.

    :meth:`try_receive` is one ``read(2)`` that never blocks and never
    yields; the caller decides when to yield and when to wait with
    :func:`trio.lowlevel.wait_readable` (``_stream.py``).  trio's own
    ``receive_some`` always yields after a receive that found data, and
    tries the socket before waiting; a server that has just sent a reply is
    better served by yielding *before* it looks (see ``_stream.py``).

    Errors are translated as ``trio.SocketStream.receive_some`` translates
    them: :exc:`trio.BrokenResourceError` chained to the :exc:`OSError`, or
    :exc:`trio.ClosedResourceError`.
    """

    __slots__ = ("socket",)

    def __init__(self, stream: trio.SocketStream) -> None:
        #: The trio socket, for :func:`trio.lowlevel.wait_readable`.
        self.socket = stream.socket

    def try_receive(self, max_bytes: int) -> bytes | None:
        """Up to *max_bytes* the kernel has now (``b""`` at end-of-file), or
        None if it has nothing yet."""
        fd = self.socket.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the wrapped socket was already closed")
        try:
            return os.read(fd, max_bytes)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in _CLOSED_ERRNOS:
                raise trio.ClosedResourceError("the wrapped socket was already closed") from None
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


def socket_source(stream: trio.abc.Stream) -> SocketSource | None:
    """Return a :class:`SocketSource` for *stream*, or None to use its
    ``receive_some`` (the same rule as :func:`socket_sink`)."""
    if type(stream) is not trio.SocketStream or os.name != "posix":
        return None
    return SocketSource(stream)


def socket_sink(stream: trio.abc.SendStream) -> SocketSink | None:
    """Return a :class:`SocketSink` for *stream*, or None to use its ``send_all``.

    Only for a :class:`trio.SocketStream` itself (a subclass's ``send_all``
    may do more than send), and only where ``os.write`` takes a socket
    (not on Windows).
    """
    if type(stream) is not trio.SocketStream or os.name != "posix":
        return None
    return SocketSink(stream)


def set_notsent_lowat(stream: trio.abc.SendStream, value: int | None) -> None:
    """Set ``TCP_NOTSENT_LOWAT`` to *value* on a :class:`trio.SocketStream`.

    Does nothing for other streams, for None, or where the platform has no
    such option (it is a tuning knob: failing to set it is not an error).
    """
    option = getattr(socket, "TCP_NOTSENT_LOWAT", None)
    if value is None or option is None or not isinstance(stream, trio.SocketStream):
        return
    with suppress(OSError):
        stream.setsockopt(socket.IPPROTO_TCP, option, value)
