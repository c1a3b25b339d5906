"""Tutorial, step 1: an echo server whose replies go through a BufferedStream.

``python docs/snippets/echo.py`` serves on a loopback port, connects one
client that sends 1,000 lines and half-closes, and prints what came back.
"""

from __future__ import annotations

from functools import partial

import trio

from trio_bufwriter import open_buffered_stream


async def echo(stream: trio.SocketStream) -> None:
    async with open_buffered_stream(stream) as conn:
        async for data in conn:  # reads go straight to the socket
            conn.write(data)  # queued for the sender task; never blocks
            await conn.drain()  # backpressure, if the client reads slowly
        # The client sent end-of-file: leaving the block sends what is
        # still queued, then closes the connection.


async def client(port: int) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"".join(b"hello %d\n" % i for i in range(1000)))
        await stream.send_eof()
        received = bytearray()
        async for chunk in stream:
            received += chunk
    return bytes(received)


async def main() -> bytes:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        reply = await client(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()
    return reply


if __name__ == "__main__":
    reply = trio.run(main)
    print(f"{len(reply)} bytes echoed; the last line: {reply.splitlines()[-1]!r}")
