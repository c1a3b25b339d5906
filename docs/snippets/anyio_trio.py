"""An anyio program on anyio's trio backend, writing through a BufferedStream.

anyio's ``connect_tcp`` and ``create_tcp_listener`` give anyio streams; on
the trio backend ``open_buffered_stream`` takes them as they are (through an
adapter that speaks trio's stream interface), and anyio's errors come out as
trio's.

``python docs/snippets/anyio_trio.py`` runs it with ``anyio.run(...,
backend="trio")``; it needs ``anyio`` (``pip install trio-bufwriter[anyio]``).
"""

from __future__ import annotations

import anyio
import anyio.abc

from trio_bufwriter import open_buffered_stream


async def echo_lines(client: anyio.abc.SocketStream) -> None:
    """The server side: a plain anyio echo."""
    async with client:
        try:
            while True:
                await client.send(await client.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


async def send_lines(port: int) -> tuple[bytes, int]:
    stream = await anyio.connect_tcp("127.0.0.1", port)  # an anyio SocketStream
    async with open_buffered_stream(stream) as conn:
        for i in range(1000):
            conn.write(b"line %d\n" % i)  # synchronous, coalesced
        await conn.send_eof()  # flush, then anyio's send_eof()
        received = bytearray()
        while data := await conn.receive_some():  # b"" where anyio raises EndOfStream
            received += data
    return bytes(received), conn.statistics().send_calls


async def main() -> tuple[bytes, int]:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, echo_lines)
            result = await send_lines(port)
            tg.cancel_scope.cancel()
    return result


if __name__ == "__main__":
    data, sends = anyio.run(main, backend="trio")
    lines = data.count(b"\n")
    print(f"{lines} lines echoed; the writer made {sends} sends for 1000 writes")
