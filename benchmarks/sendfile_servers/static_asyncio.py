"""Static variant ``asyncio-sendfile``: asyncio streams, the example's request
handling, the head written with ``writer.write`` and the file sent with
``loop.sendfile``.

Run from anywhere: ``python benchmarks/sendfile_servers/static_asyncio.py --root DIR``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import h11

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.sendfile_servers"

from ..servers._serving import close_writer, serve_asyncio
from ._static import RECEIVE_SIZE, parse_arguments, static_example

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
example = static_example()


def make_handler(root: Path) -> Handler:
    server = example.StaticServer(root)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        http = h11.Connection(h11.SERVER)
        loop = asyncio.get_running_loop()
        request = None
        try:
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await reader.read(RECEIVE_SIZE))
                    continue
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    request = event
                if not isinstance(event, h11.EndOfMessage):
                    continue  # the request line, or its body: answered at its end
                assert request is not None
                reply = server.reply(request)
                writer.write(example.start_response(http, reply))
                body = reply.file
                if body is None:
                    if not reply.head:
                        writer.write(http.send(h11.Data(data=reply.body)) or b"")
                else:
                    with body.file:
                        if not reply.head and body.length:
                            example.send_file_body(http, body)
                            # sendfile first waits for what the transport buffered.
                            await loop.sendfile(
                                writer.transport, body.file, body.offset, body.length
                            )
                writer.write(http.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if http.our_state is h11.MUST_CLOSE:
                    return
                http.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError):
            pass
        finally:
            await close_writer(writer)

    return handle


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    asyncio.run(serve_asyncio(make_handler(args.root.resolve()), args.host, args.port))
