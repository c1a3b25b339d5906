"""TLS, writer below: SSLStream(BufferedStream(TCP)).

Here the SSLStream is the writer's user: its own ``send_all`` calls (the
handshake, the encrypted records, the close_notify) go into the writer,
which returns as soon as they are queued.  Closing the SSLStream sends its
close_notify and closes the writer, which sends everything queued, then
closes the TCP socket.

``python docs/snippets/tls_below.py`` needs ``trustme``.
"""

from __future__ import annotations

import ssl
from functools import partial

import trio
import trustme

from trio_bufwriter import WriterState, open_buffered_stream


def make_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server and a client context that trust each other (test certificates)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def echo(tls: trio.SSLStream[trio.SocketStream]) -> None:
    """A plain trio TLS echo server."""
    async for data in tls:
        await tls.send_all(data)
    await tls.aclose()


async def client(port: int, client_ctx: ssl.SSLContext) -> tuple[bytes, WriterState]:
    expected = b"".join(b"message %d\n" % i for i in range(100))
    received = bytearray()
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    async with open_buffered_stream(tcp) as conn:  # the writer below TLS
        tls = trio.SSLStream(conn, client_ctx, server_hostname="localhost")
        await tls.do_handshake()
        for i in range(100):
            await tls.send_all(b"message %d\n" % i)  # returns once queued
        while len(received) < len(expected):
            received += await tls.receive_some()
        await tls.aclose()  # close_notify, then the writer's aclose()
        state = conn.state
    return bytes(received), state


async def main() -> tuple[bytes, WriterState]:
    server_ctx, client_ctx = make_contexts()
    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_ssl_over_tcp, echo, 0, server_ctx, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].transport_listener.socket.getsockname()[1]
        result = await client(port, client_ctx)
        nursery.cancel_scope.cancel()
    return result


if __name__ == "__main__":
    data, state = trio.run(main)
    print(f"{len(data)} bytes echoed over TLS; the writer below is {state.name}")
