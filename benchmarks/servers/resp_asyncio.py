"""RESP variant ``asyncio``: asyncio streams, ``writer.write(reply)`` per reply
and one ``await writer.drain()`` per receive.

asyncio's own buffered writer, used as its documentation shows: the same
parser and commands as ``examples/resp_server.py``, the way the example
uses trio_bufwriter.  ``resp_uvloop.py`` runs this same code on uvloop.

Run from anywhere: ``python benchmarks/servers/resp_asyncio.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from ._serving import (
    RECEIVE_SIZE,
    RespCommands,
    close_writer,
    load_example,
    parse_arguments,
    serve_asyncio,
)

resp = load_example("resp_server")
server = resp.RespServer()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one connection: a ``write`` per reply, a ``drain`` per receive."""
    commands = RespCommands(resp, server)
    try:
        while data := await reader.read(RECEIVE_SIZE):
            for reply in commands.replies(data):
                writer.write(reply)
            await writer.drain()
            if commands.closing:
                break
    except ConnectionError:
        pass  # the client went away
    finally:
        await close_writer(writer)


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    asyncio.run(serve_asyncio(handle, args.host, args.port))
