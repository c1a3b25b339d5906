"""HTTP variant ``hypercorn-trio``: a trivial ASGI app answering ``/`` with the
example's body, served by hypercorn's trio worker (``hypercorn.trio.serve``).

A production server on trio, for scale: it parses with h11 too, and does
everything ASGI asks of it.  Access logging is off, as in the others.

Run from anywhere: ``python benchmarks/servers/http_hypercorn_trio.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.  Needs
``pip install hypercorn``.
"""

from __future__ import annotations

import signal
import sys
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from ._hello import BODY
from ._serving import parse_arguments

_TEXT = b"text/plain; charset=utf-8"


async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """ASGI: 200 and the example's body for ``GET /``, 404 for anything else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    found = scope["path"] == "/" and scope["method"] in ("GET", "HEAD")
    body = BODY if found else b"not found\n"
    headers = [(b"content-type", _TEXT), (b"content-length", b"%d" % len(body))]
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": headers,
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _signalled() -> None:
    """Return at SIGTERM or SIGINT: hypercorn's shutdown trigger."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main(host: str, port: int) -> None:
    """Serve :func:`app` at *host*:*port*, print the port, stop on a signal."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=_signalled))
        print(binds[0].rpartition(":")[2], flush=True)


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    trio.run(main, args.host, args.port)
