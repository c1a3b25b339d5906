"""What the library does with a plain :class:`trio.SocketStream`'s descriptor.

* :class:`SocketSource`: a non-blocking ``read(2)`` for
  :class:`~trio_bufwriter.BufferedStream`, which then chooses when to yield;
* :func:`socket_error`: the one translation of a socket's ``OSError`` into
  trio's exceptions (the sink in ``_sink.py`` uses it too);
* :func:`set_notsent_lowat`: ``TCP_NOTSENT_LOWAT``, raised from trio's 16 KiB
  to the writer's largest send so the kernel holds enough for one refill.

``DESIGN.md`` says why, with what was measured.
"""

from __future__ import annotations

import errno
import os
import socket
from contextlib import suppress
from typing import final

import trio

_CLOSED_ERRNOS = {errno.EBADF, errno.ENOTSOCK}


def socket_error(exc: OSError) -> Exception:
    """The trio exception for a socket's *exc*, as ``trio.SocketStream`` translates it:
    :exc:`trio.ClosedResourceError` for a closed descriptor, else
    :exc:`trio.BrokenResourceError` chained to *exc*.  Raise it as it is."""
    error: Exception
    if exc.errno in _CLOSED_ERRNOS:
        error = trio.ClosedResourceError("the wrapped socket was already closed")
        error.__suppress_context__ = True
    else:
        error = trio.BrokenResourceError(f"socket connection broken: {exc}")
        error.__cause__ = exc
    return error


def is_plain_socket_stream(stream: object) -> bool:
    """Whether the writer and reader may use *stream*'s descriptor directly.

    Only a :class:`trio.SocketStream` itself (a subclass's methods may do
    more than send and receive), and only where ``os.write`` and ``os.read``
    take a socket (POSIX).
    """
    return type(stream) is trio.SocketStream and os.name == "posix"


@final
class SocketSource:
    """Non-blocking receives on a :class:`trio.SocketStream`'s file descriptor.

    :meth:`try_receive` is one ``read(2)`` that never blocks and never
    yields; the caller decides when to yield and when to wait with
    :func:`trio.lowlevel.wait_readable` (``_stream.py``).  trio's own
    ``receive_some`` always yields after a receive that found data, and
    tries the socket before waiting; a server that has just sent a reply is
    better served by yielding *before* it looks too (see ``_stream.py``).

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
            raise socket_error(exc)  # noqa: B904 - socket_error sets the cause


def socket_source(stream: trio.abc.Stream) -> SocketSource | None:
    """Return a :class:`SocketSource` for *stream*, or None to use its
    ``receive_some`` (see :func:`is_plain_socket_stream`)."""
    if not is_plain_socket_stream(stream):
        return None
    assert isinstance(stream, trio.SocketStream)
    return SocketSource(stream)


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
