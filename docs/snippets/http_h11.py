"""An HTTP/1.1 server with h11 over a BufferedStream.

h11 turns events into bytes and bytes into events and does no I/O itself:
each ``http.send(event)`` returns the bytes to send, which go to
``conn.write()``.  A small response's headers, body and end of message are
written under ``corked()``, so they leave in one send; a streamed body waits
in ``drain()`` when the client reads slowly.

``python docs/snippets/http_h11.py`` serves on a loopback port, makes three
requests on one keep-alive connection and prints the answers.
"""

from __future__ import annotations

from functools import partial

import h11
import trio

from trio_bufwriter import BufferedStream, open_buffered_stream


def send(conn: BufferedStream, http: h11.Connection, event: h11.Event) -> None:
    data = http.send(event)
    assert data is not None  # None only for ConnectionClosed
    conn.write(data)


async def respond(conn: BufferedStream, http: h11.Connection, request: h11.Request) -> None:
    if request.target == b"/numbers":
        # A streamed body: chunked encoding, and backpressure between chunks.
        send(conn, http, h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")]))
        for i in range(10_000):
            send(conn, http, h11.Data(data=b"%d\n" % i))
            await conn.drain()
        send(conn, http, h11.EndOfMessage())
    else:
        body = b"you asked for " + request.target + b"\n"
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        # Over a socket, a write to an idle writer goes to the kernel at once;
        # the cork holds the three writes back so that they leave together.
        with conn.corked():
            send(conn, http, h11.Response(status_code=200, headers=headers))
            send(conn, http, h11.Data(data=body))
            send(conn, http, h11.EndOfMessage())


async def handle(stream: trio.SocketStream) -> None:
    async with open_buffered_stream(stream) as conn:
        http = h11.Connection(h11.SERVER)
        request = None
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(await conn.receive_some())
            elif isinstance(event, h11.Request):
                request = event  # answered once its (empty) body has been read
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                await respond(conn, http, request)
                if http.our_state is not h11.DONE or http.their_state is not h11.DONE:
                    break  # Connection: close, or an error
                http.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                break
        # Leaving the block sends what is still queued, then closes.


async def get(stream: trio.SocketStream, http: h11.Connection, target: str) -> bytes:
    """One request on a keep-alive connection, with a plain h11 client."""
    request = h11.Request(method="GET", target=target, headers=[("Host", "localhost")])
    await stream.send_all(http.send(request) + http.send(h11.EndOfMessage()))  # type: ignore[operator]
    body = bytearray()
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(await stream.receive_some())
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            http.start_next_cycle()
            return bytes(body)


async def main() -> list[bytes]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            http = h11.Connection(h11.CLIENT)
            bodies = [await get(stream, http, target) for target in ("/a", "/numbers", "/b")]
        nursery.cancel_scope.cancel()
    return bodies


if __name__ == "__main__":
    for body in trio.run(main):
        print(f"{len(body)} bytes: {body[:40]!r}")
