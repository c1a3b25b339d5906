"""RESP variant ``trio-floor``: plain trio, canned replies, no parsing, no store.

Not a server: the floor under every trio server of this benchmark, what
trio's receive and send cost with (almost) nothing else.  Each receive is
answered with one ``send_all`` of canned replies, one per command that
starts in it.  A command is counted where a ``*`` begins a line, and told
apart by the three bytes where the name of a 1-argument-digit command
begins (``*2\\r\\n$3\\r\\nGET``): ``GET`` gets ``$3\\r\\nxxx\\r\\n``
(redis-benchmark's default 3-byte value), anything else ``+OK\\r\\n``.

What it skips, honestly: the arguments are not read, the values not kept,
nothing is checked.  It is right only for traffic shaped like
redis-benchmark's ``SET``/``GET`` (no ``\\n*`` inside a value); the
benchmark checks it with a canned-reply check, not the real one.

Run from anywhere: ``python benchmarks/servers/resp_trio_floor.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from ._serving import RECEIVE_SIZE, parse_arguments, serve_trio

GET_REPLY = b"$3\r\nxxx\r\n"
OTHER_REPLY = b"+OK\r\n"


def canned_replies(data: bytes) -> tuple[bytes, bytes]:
    """The replies to the commands that begin in *data* (which starts with
    the byte before it), and what to keep for the next receive: the last
    byte, or a command's start cut before its name."""
    replies: list[bytes] = []
    found = data.find(b"\n*")
    while found >= 0:
        if found + 12 > len(data):
            return b"".join(replies), data[found:]
        replies.append(GET_REPLY if data[found + 9 : found + 12] == b"GET" else OTHER_REPLY)
        found = data.find(b"\n*", found + 2)
    return b"".join(replies), data[-1:]


async def handle(stream: trio.SocketStream) -> None:
    """Answer one connection: one ``send_all`` of canned replies per receive."""
    kept = b"\n"  # the stream starts at a line's start
    async with stream:
        try:
            while chunk := await stream.receive_some(RECEIVE_SIZE):
                replies, kept = canned_replies(kept + chunk)
                if replies:
                    await stream.send_all(replies)
        except trio.BrokenResourceError:
            pass  # the client went away


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    serve_trio(handle, args.host, args.port)
