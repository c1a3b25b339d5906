"""HTTP variant ``trio-h11``: plain trio and h11, one ``send_all`` per h11 event.

The example's ``/`` route and headers (see ``_hello.py``), written the
plain way: the response's head and its body are each sent as h11 gives
them, so each response costs two sends.

Run from anywhere: ``python benchmarks/servers/http_trio_h11.py --port 0``
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

from ._hello import HelloConnection
from ._serving import RECEIVE_SIZE, parse_arguments, serve_trio


async def handle(stream: trio.SocketStream) -> None:
    """Answer one connection's requests: a ``send_all`` per h11 event."""
    http = HelloConnection(b"trio-h11-bench")
    async with stream:
        try:
            while not http.closing:
                data = await stream.receive_some(RECEIVE_SIZE)
                for pieces in http.responses(bytes(data)):
                    for piece in pieces:
                        if piece:  # (the end of a Content-Length body is no bytes)
                            await stream.send_all(piece)
        except (h11.RemoteProtocolError, trio.BrokenResourceError):
            pass  # a broken request, or the client went away: close


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    serve_trio(handle, args.host, args.port)
