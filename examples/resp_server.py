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
The server answers a batch as it arrives: ``receive_parsed`` parses every
complete command in what it has received, and the server executes each one
and ``write()``s its reply (which never blocks), then calls ``drain()``
once.  The replies to a batch go out together: a pipeline of a thousand
commands is answered in a handful of sends, not a thousand.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from functools import partial
from typing import NoReturn

import trio

from trio_bufwriter import (
    BufferedStream,
    FrameTooLargeError,
    IncompleteReadError,
    ParseResult,
    open_buffered_stream,
)

#: The most arguments in one command, and the longest argument (Redis's own
#: limits); a client that announces more gets a protocol error.
MAX_ARGUMENTS = 1024 * 1024
MAX_BULK = 512 * 1024 * 1024
#: The longest header line (``*3``, ``$5``) or inline command.
MAX_LINE = 64 * 1024
#: The most bytes one command may take (Redis's client-query-buffer-limit):
#: a client that never completes a command cannot make the server hold more.
MAX_COMMAND = 1024 * 1024 * 1024


class ProtocolError(Exception):
    """The client sent something that is not RESP.  Redis replies with an
    error and closes the connection; so does this server."""


def _parse_length(digits: bytes, limit: int, what: str) -> int:
    """Parse the decimal number *digits*; it must be at most *limit*."""
    # int() would also take "+5", " 5" and "5_0"; RESP does not.
    if not (digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit())):
        raise ProtocolError(f"invalid {what} length {digits!r}")
    length = int(digits)
    if length > limit:
        raise ProtocolError(f"invalid {what} length {length}")
    return length


def parse_command(data: bytes, start: int) -> ParseResult[list[bytes]]:
    """Parse the command at *start* in *data*: its arguments (an empty list,
    for an empty line or ``*0``, is a command to ignore), and where it ends.

    A plain function, for :meth:`~trio_bufwriter.BufferedStream.receive_parsed`:
    a hand-written parser (``bytes.find`` for line endings, ``int()`` on
    slices), called once per command.  When the command is not all there it
    returns None, or, inside a value, how long the command is at least, so
    that a big value is not parsed again at every piece of it; it is parsed
    again from *start* once more has come.  As in Redis, the lines of an
    array end in ``\r\n``; an inline command's line may end in a bare ``\n``.

    Raises:
      ProtocolError: what is there is not a command.
    """
    if data[start] != 42:  # not b"*": an inline command (split() drops a b"\r")
        end = data.find(b"\n", start, start + MAX_LINE + 1)
        if end < 0:
            if len(data) - start > MAX_LINE:
                raise ProtocolError("too big inline request")
            return None
        return data[start:end].split(), end + 1
    available = len(data)
    end = data.find(b"\r\n", start)
    if end < 0 or end - start > MAX_LINE:
        if available - start > MAX_LINE:
            raise ProtocolError("too big multibulk count")
        return None
    digits = data[start + 1 : end]
    count = int(digits) if digits.isdigit() else _parse_length(digits, MAX_ARGUMENTS, "multibulk")
    if count > MAX_ARGUMENTS:
        raise ProtocolError(f"invalid multibulk length {count}")
    pos = end + 2
    arguments = []
    for _ in range(count):
        end = data.find(b"\r\n", pos)
        if end < 0 or end - pos > MAX_LINE:
            if available - pos > MAX_LINE:
                raise ProtocolError("too big bulk length")
            return None
        digits = data[pos + 1 : end]
        if data[pos] != 36 or not digits.isdigit():  # (36: b"$")
            _bad_bulk_header(data[pos:end])  # (raises)
        size = int(digits)
        if size > MAX_BULK:
            raise ProtocolError(f"invalid bulk length {size}")
        pos = end + 2 + size  # the value's end; its CRLF follows
        if pos + 2 > available:
            return pos + 2 - start
        if data[pos : pos + 2] != b"\r\n":
            raise ProtocolError("bulk string not followed by CRLF")
        arguments.append(data[end + 2 : pos])
        pos += 2
    return arguments, pos


def _bad_bulk_header(header: bytes) -> NoReturn:
    """Raise the error for a bulk string's header that is not ``$<length>``."""
    if header[:1] != b"$":
        raise ProtocolError(f"expected '$', got {header[:1].decode('latin-1')!r}")
    raise ProtocolError(f"invalid bulk length {_parse_length(header[1:], MAX_BULK, 'bulk')}")


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
        except (trio.BrokenResourceError, IncompleteReadError):
            pass  # The client went away mid-exchange: nobody is left to answer.

    async def serve_connection(self, conn: BufferedStream) -> None:
        """Answer the commands received on *conn* until end-of-file or a protocol error."""
        try:
            # Every complete command received so far, decoded without an
            # await in between: their replies pile up in the writer's buffer.
            while commands := await conn.receive_parsed(parse_command, MAX_COMMAND):
                for arguments in commands:
                    if arguments:
                        conn.write(self.execute(arguments))
                # One drain per batch.  Below the high-water mark it returns
                # at once, and the sender sends the whole batch while we wait
                # for the next one.  Above it, we stop reading until the
                # client has taken its replies, and TCP makes the client wait
                # for us in turn.  (Redis instead buffers replies without
                # limit: a client that sends a whole pipeline before reading
                # any reply, as redis-py does, deadlocks against this server
                # if the replies outgrow the kernel's socket buffers,
                # megabytes on loopback.)
                await conn.drain()
        except ProtocolError as exc:
            # (The commands before it were answered: receive_parsed returns
            # them first, and raises at the next call.)
            conn.write(error(f"ERR Protocol error: {exc}"))
        except FrameTooLargeError as exc:
            conn.write(error(f"ERR Protocol error: a command over {exc.max_frame} bytes"))
        # After an error, leaving the block sends the replies, then closes.


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
