"""HTTP variant ``bufwriter-h11``: the plain h11 server's code on a BufferedStream.

The same ``/`` route, headers and h11 usage as ``trio-h11`` (``_hello.py``),
with one change: the stream is :func:`~trio_bufwriter.open_buffered_stream`,
each h11 event is ``write()``-ten, and there is one ``drain()`` per receive.
Beside ``trio-h11`` it measures the library alone; beside ``bufwriter`` (the
example, which does more per request: routes, bodies, logging) it measures
the example's own code.

Run from anywhere: ``python benchmarks/servers/http_bufwriter_h11.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h11
import trio

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from trio_bufwriter import open_buffered_stream

from ._hello import HelloConnection
from ._serving import RECEIVE_SIZE, parse_arguments, serve_trio


async def handle(stream: trio.SocketStream) -> None:
    """Answer one connection's requests: a ``write()`` per h11 event, a
    ``drain()`` per receive."""
    http = HelloConnection(b"bufwriter-h11-bench")
    try:
        async with open_buffered_stream(stream) as conn:
            while not http.closing:
                data = await conn.receive_some(RECEIVE_SIZE)
                for pieces in http.responses(bytes(data)):
                    for piece in pieces:
                        if piece:  # (the end of a Content-Length body is no bytes)
                            conn.write(piece)
                await conn.drain()
    except (h11.RemoteProtocolError, trio.BrokenResourceError):
        pass  # a broken request, or the client went away: close


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    serve_trio(handle, args.host, args.port)
