"""RESP variant ``bufwriter-hand``: the example's ``RespServer`` on a
``BufferedStream``, with ``receive_some`` and a hand-written parser.

What a careful author writes with the library's writer and no help from its
reads: ``bytes.find`` for each CRLF, ``int()`` on slices, only the checks
RESP needs (arrays of bulk strings, what clients send; no inline commands),
one ``write()`` per reply and one ``drain()`` per receive.  It is
the yardstick of ``receive_parsed``: the example should parse as fast.

Run from anywhere: ``python benchmarks/servers/resp_bufwriter_hand.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import trio

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from trio_bufwriter import BufferedStream, open_buffered_stream

from ._serving import RECEIVE_SIZE, load_example, parse_arguments, serve_trio

resp = load_example("resp_server")
server = resp.RespServer()

#: The most bytes a command may take; a client that sends more is cut off.
MAX_COMMAND = 1024 * 1024 * 1024


class BadCommand(Exception):
    """What the client sent is not a RESP array of bulk strings."""


def parse_commands(data: bytes, pos: int) -> tuple[list[list[bytes]], int]:
    """Every complete command in *data* from *pos*, and where the rest begins.

    Raises:
      BadCommand: not an array of bulk strings.
      ValueError: a length that is not a number (from ``int()``).
    """
    commands = []
    size = len(data)
    while pos < size:
        start = pos
        end = data.find(b"\r\n", pos)
        if end < 0:
            break
        if data[pos] != 42:  # b"*"
            raise BadCommand(f"expected '*', got {data[pos : pos + 1]!r}")
        count = int(data[pos + 1 : end])
        pos = end + 2
        arguments = []
        for _ in range(count):
            end = data.find(b"\r\n", pos)
            if end < 0:
                break
            if data[pos] != 36:  # b"$"
                raise BadCommand(f"expected '$', got {data[pos : pos + 1]!r}")
            length = int(data[pos + 1 : end])
            if length < 0:
                raise BadCommand(f"invalid bulk length {length}")
            pos = end + 2 + length
            if pos + 2 > size:
                break
            if data[pos : pos + 2] != b"\r\n":
                raise BadCommand("bulk string not followed by CRLF")
            arguments.append(data[end + 2 : pos])
            pos += 2
        else:
            commands.append(arguments)
            continue
        pos = start  # the command is not all there
        break
    return commands, pos


async def serve_connection(conn: BufferedStream, execute: Callable[[list[bytes]], bytes]) -> None:
    """Answer the commands received on *conn* until end-of-file or a bad command."""
    pending = b""
    while chunk := await conn.receive_some(RECEIVE_SIZE):
        # (bytes, so that the arguments sliced from it are bytes: hashable keys.)
        data = pending + chunk if pending else chunk if type(chunk) is bytes else bytes(chunk)
        try:
            commands, pos = parse_commands(data, 0)
        except (BadCommand, ValueError) as exc:
            conn.write(b"-ERR Protocol error: %b\r\n" % str(exc).encode())
            return
        for arguments in commands:
            if arguments:
                conn.write(execute(arguments))
        pending = data[pos:]
        if len(pending) > MAX_COMMAND:
            conn.write(b"-ERR Protocol error: command too big\r\n")
            return
        await conn.drain()


async def handle(stream: trio.SocketStream) -> None:
    """Answer one connection."""
    try:
        async with open_buffered_stream(stream) as conn:
            await serve_connection(conn, server.execute)
    except trio.BrokenResourceError:
        pass  # the client went away


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    serve_trio(handle, args.host, args.port)
