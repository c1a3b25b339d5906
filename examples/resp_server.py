"""A tiny Redis: the RESP2 protocol, an in-memory dict, and pipelining.

Run it, then point any Redis client at it::

    python examples/resp_server.py --port 6380
    redis-cli -p 6380 set greeting hello
    redis-cli -p 6380 get greeting

The first line it prints on stdout is the port it listens on (handy with
``--port 0``).  Ctrl-C stops it.

Commands: ``PING [message]``, ``ECHO message``, ``GET key``, ``SET key
value``, ``DEL key [key ...]``, ``EXISTS key [key ...]``, ``DBSIZE`` and
``HELLO [2]``; anything else gets an error reply, as Redis gives.  Both the
RESP form (``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``) and the "inline" form
that people type into telnet (``GET k``) are understood.

It speaks RESP2 only.  redis-py 8 asks for RESP3 by default, so connect
with ``redis.Redis(port=6380, protocol=2)``.

Clients pipeline: they send a batch of commands, then read all the replies.
The server answers a batch as it arrives: it parses every complete command
in what it has received, executes each one and ``write()``s its reply (which
never blocks), then calls ``drain()`` once.  The replies to a batch go out
together: a pipeline of a thousand commands is answered in a handful of
sends, not a thousand.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from functools import partial

import trio

from trio_bufwriter import BufferedStream, open_buffered_stream

#: The most bytes asked of the socket in one receive.
RECEIVE_SIZE = 64 * 1024
#: The most arguments in one command, and the longest argument (Redis's own
#: limits); a client that announces more gets a protocol error.
MAX_ARGUMENTS = 1024 * 1024
MAX_BULK = 512 * 1024 * 1024
#: The longest header line (``*3``, ``$5``) or inline command.
MAX_LINE = 64 * 1024


class ProtocolError(Exception):
    """The client sent something that is not RESP.  Redis replies with an
    error and closes the connection; so does this server."""


def _parse_length(buf: bytearray, start: int, end: int, limit: int, what: str) -> int:
    """Parse the decimal number in ``buf[start:end]``; it must be at most *limit*."""
    digits = bytes(buf[start:end])
    # int() would also take "+5", " 5" and "5_0"; RESP does not.
    if not (digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit())):
        raise ProtocolError(f"invalid {what} length {digits!r}")
    length = int(digits)
    if length > limit:
        raise ProtocolError(f"invalid {what} length {length}")
    return length


def parse_command(buf: bytearray, pos: int) -> tuple[list[bytes], int] | None:
    """Parse the command that starts at ``buf[pos]``.

    Returns the command's arguments and the position just after it, or None
    if *buf* does not hold all of it yet.  An empty list of arguments (an
    empty line, or ``*0``) is a command to ignore.

    It keeps no state: a command that is not all there yet is parsed again
    from its start when more arrives.  That stays cheap for what clients
    send, since a value still arriving is skipped by its length, not scanned.

    Raises:
      ProtocolError: what is there is not a command.
    """
    if buf[pos] != ord("*"):
        return _parse_inline(buf, pos)
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > MAX_LINE:
            raise ProtocolError("too big multibulk count")
        return None
    count = _parse_length(buf, pos + 1, end, MAX_ARGUMENTS, "multibulk")
    pos = end + 2
    arguments = []
    for _ in range(count):
        if pos >= len(buf):
            return None
        if buf[pos] != ord("$"):
            raise ProtocolError(f"expected '$', got {chr(buf[pos])!r}")
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if len(buf) - pos > MAX_LINE:
                raise ProtocolError("too big bulk length")
            return None
        size = _parse_length(buf, pos + 1, end, MAX_BULK, "bulk")
        if size < 0:
            raise ProtocolError(f"invalid bulk length {size}")
        start = end + 2
        end = start + size
        if end + 2 > len(buf):
            return None
        if buf[end : end + 2] != b"\r\n":
            raise ProtocolError("bulk string not followed by CRLF")
        arguments.append(bytes(buf[start:end]))
        pos = end + 2
    return arguments, pos


def _parse_inline(buf: bytearray, pos: int) -> tuple[list[bytes], int] | None:
    """Parse an inline command: one line, arguments separated by spaces."""
    end = buf.find(b"\n", pos)
    if end < 0:
        if len(buf) - pos > MAX_LINE:
            raise ProtocolError("too big inline request")
        return None
    return bytes(buf[pos:end]).split(), end + 1


def simple(text: bytes) -> bytes:
    """A simple-string reply (``+OK``)."""
    return b"+%b\r\n" % text


def error(message: str) -> bytes:
    """An error reply; by convention *message* starts with a code (``ERR``)."""
    # The reply ends at the first line break: escape any in the message.
    return b"-%b\r\n" % message.replace("\r", "\\r").replace("\n", "\\n").encode()


def integer(value: int) -> bytes:
    """An integer reply."""
    return b":%d\r\n" % value


def bulk(value: bytes | None) -> bytes:
    """A bulk-string reply: any bytes, or None for RESP2's null (a missing key)."""
    if value is None:
        return b"$-1\r\n"
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _quote(argument: bytes) -> str:
    """*argument* in quotes, for an error message: no line breaks, ASCII only."""
    return "'" + repr(argument)[2:-1] + "'"


class RespServer:
    """The key-value store and its commands, shared by every connection."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        #: Connections accepted so far.
        self.connections = 0
        #: name: (handler, least arguments, most arguments or None), names
        #: counted in the arguments as Redis does.
        self.commands: dict[bytes, tuple[Callable[[list[bytes]], bytes], int, int | None]] = {
            b"PING": (self._ping, 1, 2),
            b"ECHO": (self._echo, 2, 2),
            b"GET": (self._get, 2, 2),
            b"SET": (self._set, 3, 3),
            b"DEL": (self._delete, 2, None),
            b"EXISTS": (self._exists, 2, None),
            b"DBSIZE": (self._dbsize, 1, 1),
            b"HELLO": (self._hello, 1, 2),
        }

    def execute(self, arguments: list[bytes]) -> bytes:
        """Run one command; return its reply, ready to send."""
        name = arguments[0].upper()
        try:
            handler, least, most = self.commands[name]
        except KeyError:
            # (The first few are enough to recognise the command by.)
            quoted = " ".join(_quote(argument) for argument in arguments[1:4])
            return error(
                f"ERR unknown command {_quote(arguments[0])}, with args beginning with: {quoted}"
            )
        if len(arguments) < least or (most is not None and len(arguments) > most):
            return error(f"ERR wrong number of arguments for '{name.decode().lower()}' command")
        return handler(arguments)

    def _ping(self, arguments: list[bytes]) -> bytes:
        return simple(b"PONG") if len(arguments) == 1 else bulk(arguments[1])

    def _echo(self, arguments: list[bytes]) -> bytes:
        return bulk(arguments[1])

    def _get(self, arguments: list[bytes]) -> bytes:
        return bulk(self.data.get(arguments[1]))

    def _set(self, arguments: list[bytes]) -> bytes:
        self.data[arguments[1]] = arguments[2]
        return simple(b"OK")

    def _delete(self, arguments: list[bytes]) -> bytes:
        return integer(sum(self.data.pop(key, None) is not None for key in arguments[1:]))

    def _exists(self, arguments: list[bytes]) -> bytes:
        return integer(sum(key in self.data for key in arguments[1:]))

    def _dbsize(self, arguments: list[bytes]) -> bytes:
        return integer(len(self.data))

    def _hello(self, arguments: list[bytes]) -> bytes:
        # Clients send HELLO to switch to RESP3; the error Redis gives for a
        # version it lacks tells them (and their users) what is wrong.
        if len(arguments) == 2 and arguments[1] != b"2":
            return error("NOPROTO this server speaks RESP2 only (redis-py: pass protocol=2)")
        # A map, which RESP2 sends as an array of keys and values.
        fields = [bulk(b"server"), bulk(b"trio_bufwriter-example"), bulk(b"proto"), integer(2)]
        fields += [bulk(b"mode"), bulk(b"standalone")]
        return b"*%d\r\n%b" % (len(fields), b"".join(fields))

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one client connection until it closes."""
        self.connections += 1
        try:
            async with open_buffered_stream(stream) as conn:
                await self.serve_connection(conn)
        except trio.BrokenResourceError:
            pass  # The client went away mid-exchange: nobody is left to answer.

    async def serve_connection(self, conn: BufferedStream) -> None:
        """Answer the commands received on *conn* until end-of-file or a protocol error."""
        buf = bytearray()
        while data := await conn.receive_some(RECEIVE_SIZE):
            buf += data
            pos = 0
            try:
                # Every complete command received so far.  Nothing in here
                # yields, so the replies pile up in the writer's buffer ...
                while pos < len(buf) and (parsed := parse_command(buf, pos)) is not None:
                    arguments, pos = parsed
                    if arguments:
                        conn.write(self.execute(arguments))
            except ProtocolError as exc:
                conn.write(error(f"ERR Protocol error: {exc}"))
                return  # Leaving the block sends the replies, then closes.
            # ... and keep whatever partial command is left for the next receive.
            del buf[:pos]
            # One drain per batch.  Below the high-water mark it returns at
            # once, and the sender sends the whole batch while we wait for
            # the next one.  Above it, we stop reading until the client has
            # taken its replies, and TCP makes the client wait for us in
            # turn.  (Redis instead buffers replies without limit: a client
            # that sends a whole pipeline before reading any reply, as
            # redis-py does, deadlocks against this server if the replies
            # outgrow the kernel's socket buffers, megabytes on loopback.)
            await conn.drain()


async def serve(
    port: int,
    *,
    server: RespServer | None = None,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *server* (a new, empty :class:`RespServer` by default) on *host*:*port*.

    ``await nursery.start(serve, 0)`` returns the port actually listened on.
    """
    handler = (server or RespServer()).handle
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, port, host=host))
        task_status.started(listeners[0].socket.getsockname()[1])


async def main(port: int, host: str) -> None:
    async with trio.open_nursery() as nursery:
        print(await nursery.start(partial(serve, port, host=host)), flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:  # wait for Ctrl-C
                break
        # Cancelling makes every open_buffered_stream close its connection at once.
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A tiny Redis on trio_bufwriter.")
    parser.add_argument("--port", type=int, default=6380, help="0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    args = parser.parse_args()
    trio.run(main, args.port, args.host)
