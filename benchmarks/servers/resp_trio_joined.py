"""RESP variant ``trio-joined``: plain trio, the replies to one receive joined
by hand and sent with one ``send_all``.

What a careful author writes without a buffered writer: the same parser and
commands as ``examples/resp_server.py``, and one send per batch of pipelined
commands, however many replies it holds.

Run from anywhere: ``python benchmarks/servers/resp_trio_joined.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from ._serving import RECEIVE_SIZE, RespCommands, load_example, parse_arguments, serve_trio

resp = load_example("resp_server")
server = resp.RespServer()


async def handle(stream: trio.SocketStream) -> None:
    """Answer one connection: one ``send_all`` of all the replies to a receive."""
    commands = RespCommands(resp, server)
    async with stream:
        try:
            while data := await stream.receive_some(RECEIVE_SIZE):
                await stream.send_all(b"".join(commands.replies(data)))
                if commands.closing:
                    return
        except trio.BrokenResourceError:
            pass  # the client went away


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    serve_trio(handle, args.host, args.port)
