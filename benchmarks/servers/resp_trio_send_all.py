"""RESP variant ``trio-send-all``: plain trio, one ``await stream.send_all(reply)`` per reply.

The way to write the example's server without a buffered writer, and without
thinking about sends: the same parser and commands as
``examples/resp_server.py``, each reply sent as soon as it is computed.  A
pipeline of 16 commands costs 16 sends.

Run from anywhere: ``python benchmarks/servers/resp_trio_send_all.py --port 0``
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
    """Answer one connection: a ``send_all`` per reply."""
    commands = RespCommands(resp, server)
    async with stream:
        try:
            while data := await stream.receive_some(RECEIVE_SIZE):
                for reply in commands.replies(data):
                    await stream.send_all(reply)
                if commands.closing:
                    return
        except trio.BrokenResourceError:
            pass  # the client went away


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    serve_trio(handle, args.host, args.port)
