"""TLS, writer above: BufferedStream(SSLStream(TCP)).

The application's writes are buffered before encryption, so a burst of small
writes becomes one ``SSLStream.send_all``: a few TLS records instead of one
per write.  ``send_eof()`` is refused (TLS has no half-close); ``aclose()``
sends what is queued, then the TLS close_notify, then closes the TCP socket.

``python docs/snippets/tls_above.py`` needs ``trustme`` for a throwaway
certificate authority.
"""

from __future__ import annotations

import ssl
from functools import partial

import trio
import trustme

from trio_bufwriter import WriterStatistics, open_buffered_stream


def make_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server and a client context that trust each other (test certificates)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def send_lines(port: int, client_ctx: ssl.SSLContext) -> WriterStatistics:
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    tls = trio.SSLStream(tcp, client_ctx, server_hostname="localhost")
    async with open_buffered_stream(tls) as conn:  # the writer above TLS
        for i in range(1000):
            conn.write(b"line %d\n" % i)
            await conn.drain()
    # Left the block: flushed, close_notify sent, TCP closed.
    return conn.statistics()


async def main() -> tuple[bytes, WriterStatistics]:
    server_ctx, client_ctx = make_contexts()
    received = bytearray()
    done = trio.Event()

    async def receive_to_eof(tls: trio.SSLStream[trio.SocketStream]) -> None:
        async for chunk in tls:  # ends at the client's close_notify
            received.extend(chunk)
        done.set()

    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_ssl_over_tcp, receive_to_eof, 0, server_ctx, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].transport_listener.socket.getsockname()[1]
        stats = await send_lines(port, client_ctx)
        await done.wait()
        nursery.cancel_scope.cancel()
    return bytes(received), stats


if __name__ == "__main__":
    data, stats = trio.run(main)
    print(f"{len(data)} bytes in {stats.write_calls} writes, {stats.send_calls} SSLStream sends")
