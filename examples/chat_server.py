"""A line-based chat server: every line a client sends goes to every client.

Run it, then talk to it from a few terminals::

    python examples/chat_server.py --port 8000
    nc 127.0.0.1 8000

The first line it prints on stdout is the port it listens on (handy with
``--port 0``); the log goes to stderr.  Ctrl-C stops it.

What it shows is how a server protects itself, and its other clients, from
a client that stops reading:

* Every connection is wrapped with ``open_buffered_stream(...,
  max_buffer=..., overflow="abort", stall_timeout=...)``.  The server holds at
  most ``max_buffer`` bytes for a client; a write that would hold more
  closes that client's connection instead of growing the buffer.
* Every connection is subscribed to one ``Broadcaster``.  ``broadcast()`` is
  synchronous and never blocks, so a stuck client never holds back the
  others: nobody waits for anybody's ``drain()``.
* ``broadcast()`` returns the subscribers it dropped, with the error that
  made it drop them; the server logs them.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import signal
import sys
from collections.abc import AsyncIterator
from functools import partial
from typing import TextIO

import trio

from trio_bufwriter import (
    Broadcaster,
    BufferedStream,
    BufferLimitError,
    StallTimeoutError,
    WriterState,
    open_buffered_stream,
)

#: The most bytes the server keeps queued for one client.  Make it much
#: bigger than what a client receives in one burst (here, what the server
#: reads from the other clients in one go: up to 64 KiB of lines from each),
#: or clients that read just fine get cut off.
DEFAULT_MAX_BUFFER = 1024 * 1024
#: Cut off a client that has taken nothing for this many seconds while more
#: than its high-water mark was waiting for it.  The server never calls
#: drain(), so this only catches a client that stalls while a send is going
#: out; ``max_buffer`` catches the rest.
DEFAULT_STALL_TIMEOUT = 30.0
#: Longer lines are cut into pieces of this many bytes.
MAX_LINE = 4096


async def read_lines(
    stream: trio.abc.ReceiveStream, max_line: int = MAX_LINE
) -> AsyncIterator[bytes]:
    """Yield each line received on *stream*, without its line ending, until end-of-file.

    A line longer than *max_line* bytes comes out in pieces of that size; an
    unterminated last line comes out at end-of-file.
    """
    pending = b""
    while True:
        data = await stream.receive_some()
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            line = line.removesuffix(b"\r")
            for start in range(0, max(len(line), 1), max_line):
                yield line[start : start + max_line]
        while len(pending) > max_line:
            yield pending[:max_line]
            pending = pending[max_line:]
    if pending:
        yield pending


def describe(error: BaseException) -> str:
    """Say why a subscriber was dropped, from the error its write failed with."""
    # With overflow="abort", the error is a trio.BrokenResourceError whose
    # __cause__ says what happened.
    cause = error.__cause__ or error
    if isinstance(cause, BufferLimitError):
        return f"too far behind ({cause})"
    if isinstance(cause, StallTimeoutError):
        return f"stopped reading ({cause})"
    return f"its connection failed ({cause!r})"


class ChatServer:
    """The chat room: one Broadcaster, and a name for each connection."""

    def __init__(
        self,
        *,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        log: TextIO | None = None,
    ) -> None:
        self.max_buffer = max_buffer
        self.stall_timeout = stall_timeout
        self.log = sys.stderr if log is None else log
        self.hub = Broadcaster()
        self.names: dict[BufferedStream, str] = {}
        #: Set when the server shuts down: nobody is told who left then.
        self.closing = False
        self._numbers = itertools.count(1)

    def say(self, message: str) -> None:
        print(message, file=self.log, flush=True)

    def publish(self, line: bytes) -> None:
        """Send *line* to everyone; log whoever had to be dropped."""
        for conn, error in self.hub.broadcast(line):
            # Dropped: with overflow="abort" its connection is being closed
            # already, which ends its handle() below.
            assert isinstance(conn, BufferedStream)  # all we ever subscribe
            self.say(f"dropped {self.names[conn]}: {describe(error)}")

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one client, from its first byte to its last."""
        name = f"user{next(self._numbers)}"
        try:
            async with open_buffered_stream(
                stream,
                max_buffer=self.max_buffer,
                overflow="abort",
                stall_timeout=self.stall_timeout,
            ) as conn:
                self.names[conn] = name
                self.say(f"{name} connected")
                conn.write(f"* welcome, you are {name}\n".encode())
                self.hub.add(conn)
                self.publish(f"* {name} joined\n".encode())
                try:
                    async for line in read_lines(conn):
                        self.publish(name.encode() + b": " + line + b"\n")
                finally:
                    self.leave(conn)
                # Leaving the block flushes what is still queued for this
                # client, then closes the connection.
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            # The client went away mid-send, or we cut it off (the abort
            # closed the connection under the read above).
            self.say(f"{name} disconnected ({type(exc).__name__})")
        else:
            self.say(f"{name} disconnected")

    def leave(self, conn: BufferedStream) -> None:
        name = self.names[conn]
        if self.closing:
            self.hub.discard(conn)
        elif conn.state is WriterState.BROKEN:
            # Left subscribed on purpose: its stall timeout may have closed
            # it while nobody was talking, and the broadcast below then
            # drops it and logs why.
            self.publish(f"* {name} left\n".encode())
        else:
            self.hub.discard(conn)
            self.publish(f"* {name} left\n".encode())
        del self.names[conn]


async def main(port: int, host: str, max_buffer: int, stall_timeout: float | None) -> None:
    server = ChatServer(max_buffer=max_buffer, stall_timeout=stall_timeout)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, port, host=host))
        port = listeners[0].socket.getsockname()[1]
        print(port, flush=True)
        server.say(f"chat server on {host}:{port}; try: nc {host} {port}")
        # Ctrl-C (or a TERM) ends the serving: cancelling the nursery cancels
        # every handler, and each one's open_buffered_stream closes its
        # connection at once on the way out.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                server.say(f"{signal.Signals(signum).name}: shutting down")
                break
        server.closing = True
        nursery.cancel_scope.cancel()
    server.say("bye")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free one (default: 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--max-buffer",
        type=int,
        default=DEFAULT_MAX_BUFFER,
        help="bytes held at most for one client (default: %(default)s)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=DEFAULT_STALL_TIMEOUT,
        help="seconds a stalled client may take nothing (default: %(default)s)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse(None)
    # (A Ctrl-C before the signal receiver is up just ends the program.)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main, args.port, args.host, args.max_buffer, args.stall_timeout)
