"""A lingering close: the server closes first, and the client still gets every byte.

The client sends two pipelined requests in one go; the server answers the
first and closes, leaving the second unread.  Closing a TCP socket with
unread input makes the kernel reset the connection, which can destroy the
response on its way.  ``aclose_lingering()`` half-closes, reads and discards
until the client closes too (5 seconds at most), then closes.

``python docs/snippets/lingering_close.py`` prints what the client got.
"""

from __future__ import annotations

from functools import partial

import trio

from trio_bufwriter import aclose_lingering, open_buffered_stream

RESPONSE = b"x" * 100_000 + b"\nthat is all, goodbye\n"


async def handle(stream: trio.SocketStream) -> None:
    async with open_buffered_stream(stream) as conn:
        request = await conn.receive_some(len(b"first request\n"))
        assert request == b"first request\n"
        conn.write(RESPONSE)
        # The second request is still unread: a plain close could reset the
        # connection.  Send EOF, discard input until the client closes, close.
        await aclose_lingering(conn, linger=5)


async def client(port: int) -> tuple[int, bytes]:
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b"first request\nsecond request\n")
        received = bytearray()
        while data := await stream.receive_some():  # b"" at the server's EOF
            received += data
    # Leaving the block closes the client's side: the server stops lingering.
    return len(received), bytes(received[-21:])


async def main() -> tuple[int, bytes]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        result = await client(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()
    return result


if __name__ == "__main__":
    size, tail = trio.run(main)
    print(f"the client got {size} bytes, ending {tail!r}")
