"""Sinks: where a writer's bytes go.  Two kinds, one interface.

* :class:`StreamSink`: any :class:`trio.abc.SendStream`, through its
  ``send_all``.
* :class:`SocketSink`: a plain :class:`trio.SocketStream`, through
  non-blocking ``write(2)`` on its descriptor.  It can also take bytes
  *now*, without the scheduler (:meth:`SocketSink.try_send`), which lets
  the writer hand an idle connection's write straight to the kernel.

Both have ``direct`` (whether ``try_send`` may be used), ``gathers``
(whether ``send_gathered`` may be used), ``calls`` (sends that took bytes,
for the statistics), ``send(data)``, ``try_send(view)`` and
``send_file(region, limit)``.  The writer asks ``direct`` and ``gathers``
and never which kind it has.  Each sink sends a file region as its kind
can: ``sendfile(2)`` on the socket; chunks read with ``pread`` and passed
to ``send_all`` (bounded memory: one chunk at a time) on any other stream.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import final

import trio

from ._buffers import BytesLike
from ._file_region import FALLBACK_CHUNK, FileRegion
from ._socket import is_plain_socket_stream, socket_error

#: The most buffers handed to one ``writev(2)`` (the system's limit is
#: ``SC_IOV_MAX``, 1024 on Linux; Netty gathers up to 1024).
IOV_CAP = 64

# sendfile(2) errors that come from the socket's side, not the file's.
_SOCKET_ERRNOS = {
    errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ENOTCONN, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EBADF, errno.ENOTSOCK,
}  # fmt: skip


@final
class StreamSink:
    """Sends through a stream's own ``send_all``; never sends without waiting."""

    __slots__ = ("_send_all", "calls", "on_progress")

    #: ``try_send`` takes nothing: every send waits for the stream.
    direct = False
    #: No ``send_gathered``: one ``send_all`` per buffer.
    gathers = False

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

    def try_send_gathered(self, views: list[memoryview]) -> int:
        """A stream cannot be written to without waiting: nothing is taken."""
        return 0

    async def send_gathered(self, views: list[memoryview]) -> None:
        """Unused (``gathers`` is False): one ``send_all`` per buffer."""
        for view in views:
            await self.send(view)

    async def send_file(self, region: FileRegion, limit: int) -> int:
        """Read one chunk of *region* (at most *limit* and 256 KiB) and
        ``send_all`` it; return its size (0: the file ended early)."""
        size = min(len(region), limit, FALLBACK_CHUNK)
        chunk = await region.read_in_thread(size) if region.thread else region.read_here(size)
        if chunk:
            self.calls += 1
            await self._send_all(chunk)
        return len(chunk)


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

    __slots__ = ("_full", "_socket", "calls", "on_progress")

    #: ``try_send`` hands bytes to the kernel at once.
    direct = True
    #: ``send_gathered`` sends many buffers with one ``writev(2)``.
    gathers = True

    def __init__(self, stream: trio.SocketStream) -> None:
        self._socket = stream.socket
        #: The last ``send_file`` stopped because the socket was full.
        self._full = False
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

    def _fileno(self) -> int:
        fd = self._socket.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the wrapped socket was already closed")
        return fd

    def try_send_gathered(self, views: list[memoryview]) -> int:
        """One ``writev(2)`` of *views* (at most :data:`IOV_CAP`), without
        blocking; return the bytes it took."""
        try:
            sent = os.writev(self._fileno(), views)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise socket_error(exc)  # noqa: B904 - socket_error sets the cause
        if sent:
            self.calls += 1
        return sent

    async def send_gathered(self, views: list[memoryview]) -> None:
        """Send all of *views* (at most :data:`IOV_CAP`), in order, with
        ``writev(2)`` until it would block, then ``wait_writable``.  Consumes
        the list."""
        waited = False
        while views:
            sent = self.try_send_gathered(views)
            if sent:
                if waited and self.on_progress is not None:
                    self.on_progress()
                while sent:
                    first = views[0]
                    if sent < len(first):
                        views[0] = first[sent:]
                        break
                    sent -= len(first)
                    del views[0]
                if not views:
                    return
            await trio.lowlevel.wait_writable(self._socket)
            waited = True

    async def send_file(self, region: FileRegion, limit: int) -> int:
        """``sendfile(2)`` of *region* (at most *limit* bytes per call), call
        after call until the socket is full or the region is sent, waiting
        first until the socket takes some; return how many bytes went out
        (0: the file ended early).

        Nothing else runs between these calls (they make no checkpoint), so
        the writer counts the bytes once, when this returns, and its counts
        are never stale where another task could look.  When the socket was
        left full, the next call waits for it before it tries: the failed
        call would only cost a system call and an exception.

        With ``region.thread``, the bytes are first read in a worker thread
        (into the page cache) so that ``sendfile`` does not wait for the
        disk in the event loop.
        """
        size = len(region)
        if region.thread and region.offset >= region.read_until:
            # The read's bytes are dropped: only the page cache is wanted.
            got = len(await region.read_in_thread(min(size, limit)))
            region.read_until = region.offset + got
            if not got:
                return 0
        if region.thread:
            size = min(size, region.read_until - region.offset)
        waited = self._full
        if waited:
            self._full = False
            await trio.lowlevel.wait_writable(self._socket)
        total = 0
        while total < size:
            try:
                # Looked up again after every wait: another task may have
                # closed the socket or discarded the region meanwhile.
                sent = os.sendfile(
                    self._fileno(),
                    region.live_fd(),
                    region.offset + total,
                    min(size - total, limit),
                )
            except BlockingIOError:
                if total:
                    self._full = True
                    break
                await trio.lowlevel.wait_writable(self._socket)
                waited = True
                continue
            except OSError as exc:
                if exc.errno in _SOCKET_ERRNOS:
                    raise socket_error(exc)  # noqa: B904 - socket_error sets the cause
                raise region.failure(f"sendfile failed ({exc})") from exc
            if not sent:
                break
            total += sent
            self.calls += 1
        if total and waited and self.on_progress is not None:
            self.on_progress()
        return total


def make_sink(stream: trio.abc.SendStream) -> StreamSink | SocketSink:
    """The fastest sink for *stream*."""
    if is_plain_socket_stream(stream):
        assert isinstance(stream, trio.SocketStream)
        return SocketSink(stream)
    return StreamSink(stream)
