"""What the writer does differently when it wraps a :class:`trio.SocketStream`.

Two things, both measured on loopback TCP (see the benchmarks):

* An idle writer sends at once.  When the sender task is parked with nothing
  queued, ``write()`` hands the bytes straight to the kernel with one
  non-blocking ``write(2)`` on the socket, as asyncio does, instead of waking
  the sender and waiting for the scheduler to run it (which costs a ping-pong
  round trip about 1.6x of plain ``send_all``'s).  Only the first write after
  the sender parks goes this way; it also wakes the sender, so every further
  write in the same scheduler tick is queued and coalesced as usual.
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

import trio

_CLOSED_ERRNOS = {errno.EBADF, errno.ENOTSOCK}

#: ``send_now(data) -> bytes taken`` (0 if the socket would block).  Raises
#: what the stream's ``send_all`` would: :exc:`trio.BrokenResourceError`
#: chained to the :exc:`OSError`, or :exc:`trio.ClosedResourceError`.
SendNow = Callable[[memoryview], int]


def direct_sender(stream: trio.abc.SendStream) -> SendNow | None:
    """Return a synchronous non-blocking send for *stream*, or None.

    Only for a :class:`trio.SocketStream` itself (not a subclass, whose
    ``send_all`` may do more than send).  It goes through the socket's file
    descriptor, looked up at every call so that a socket closed behind the
    writer's back fails with EBADF instead of writing to a reused number.
    """
    if type(stream) is not trio.SocketStream or os.name != "posix":
        # os.write() does not take a socket on Windows.
        return None
    sock = stream.socket

    def send_now(data: memoryview) -> int:
        fd = sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the wrapped socket was already closed")
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            # The same translation as trio.SocketStream.send_all's.
            if exc.errno in _CLOSED_ERRNOS:
                raise trio.ClosedResourceError("the wrapped socket was already closed") from None
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc

    return send_now


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
