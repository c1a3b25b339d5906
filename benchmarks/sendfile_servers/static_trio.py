"""Static variant ``trio-read``: plain trio, the example's request handling,
and the file read in the event loop into a reused 1 MiB buffer
(``os.preadv``) and sent with ``send_all``.

Run from anywhere: ``python benchmarks/sendfile_servers/static_trio.py --root DIR``
prints the port, then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import h11
import trio

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.sendfile_servers"

from ..servers._serving import serve_trio
from ._static import RECEIVE_SIZE, parse_arguments, static_example

CHUNK = 1024 * 1024
example = static_example()


def make_handler(root: Path) -> Callable[[trio.SocketStream], Awaitable[None]]:
    server = example.StaticServer(root)

    async def handle(stream: trio.SocketStream) -> None:
        http = h11.Connection(h11.SERVER)
        buffer = bytearray(CHUNK)
        request = None
        async with stream:
            try:
                while True:
                    event = http.next_event()
                    if event is h11.NEED_DATA:
                        http.receive_data(await stream.receive_some(RECEIVE_SIZE))
                        continue
                    if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                        return
                    if isinstance(event, h11.Request):
                        request = event
                    if not isinstance(event, h11.EndOfMessage):
                        continue  # the request line, or its body: answered at its end
                    assert request is not None
                    await send_reply(stream, http, server.reply(request), buffer)
                    if http.our_state is h11.MUST_CLOSE:
                        return
                    http.start_next_cycle()
            except (h11.RemoteProtocolError, trio.BrokenResourceError):
                pass

    return handle


async def send_reply(
    stream: trio.SocketStream, http: h11.Connection, reply: object, buffer: bytearray
) -> None:
    """Send *reply*: its head, then its body, a ``send_all`` each (the file's
    in 1 MiB reads)."""
    await stream.send_all(example.start_response(http, reply))
    body = reply.file  # type: ignore[attr-defined]
    if body is None:
        if not reply.head:  # type: ignore[attr-defined]
            await stream.send_all(http.send(h11.Data(data=reply.body)) or b"")  # type: ignore[attr-defined]
    else:
        with body.file:
            if not reply.head and body.length:  # type: ignore[attr-defined]
                example.send_file_body(http, body)
                fd = body.file.fileno()
                offset, end = body.offset, body.offset + body.length
                with memoryview(buffer) as view:
                    while offset < end:
                        got = os.preadv(fd, [view[: end - offset]], offset)
                        if not got:
                            raise trio.BrokenResourceError("the file ended early")
                        await stream.send_all(view[:got])
                        offset += got
    end_of_message = http.send(h11.EndOfMessage())
    if end_of_message:
        await stream.send_all(end_of_message)


if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    serve_trio(make_handler(args.root.resolve()), args.host, args.port)
