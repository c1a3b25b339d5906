"""HTTP variant ``asyncio-h11``: asyncio streams and h11, ``writer.write`` per
h11 event and ``await writer.drain()`` per response.

The example's ``/`` route and headers (see ``_hello.py``) on asyncio's own
buffered writer, used the way the example uses trio_bufwriter.
``http_uvloop_h11.py`` runs this same code on uvloop.

Run from anywhere: ``python benchmarks/servers/http_asyncio_h11.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import h11

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from ._hello import HelloConnection
from ._serving import RECEIVE_SIZE, close_writer, parse_arguments, serve_asyncio


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one connection's requests: a ``write`` per h11 event, a ``drain`` per response."""
    http = HelloConnection(b"asyncio-h11-bench")
    try:
        while not http.closing:
            data = await reader.read(RECEIVE_SIZE)
            for pieces in http.responses(data):
                for piece in pieces:
                    writer.write(piece)
                await writer.drain()
    except (h11.RemoteProtocolError, ConnectionError):
        pass  # a broken request, or the client went away: close
    finally:
        await close_writer(writer)


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    asyncio.run(serve_asyncio(handle, args.host, args.port))
