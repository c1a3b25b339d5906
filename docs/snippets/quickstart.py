"""Quick start: many small writes, one background sender, backpressure with drain().

Run it: ``python docs/snippets/quickstart.py``.  It starts a loopback TCP
server that counts what it receives, writes 10,000 lines to it through a
BufferedWriter, and prints the writer's statistics.
"""

from __future__ import annotations

from functools import partial

import trio

from trio_bufwriter import WriterStatistics, open_buffered_writer


async def send_lines(stream: trio.SocketStream, count: int) -> WriterStatistics:
    async with open_buffered_writer(stream) as writer:
        for i in range(count):
            writer.write(b"line %d\n" % i)  # synchronous: queues, never blocks
            await writer.drain()  # waits only while over high water (64 KiB)
    # Leaving the block flushed every byte, then closed the socket.
    return writer.statistics()


async def main() -> tuple[bytes, WriterStatistics]:
    received = bytearray()
    done = trio.Event()

    async def count_bytes(stream: trio.SocketStream) -> None:
        async for chunk in stream:  # until end-of-file
            received.extend(chunk)
        done.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, count_bytes, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        stats = await send_lines(await trio.open_tcp_stream("127.0.0.1", port), 10_000)
        await done.wait()
        nursery.cancel_scope.cancel()
    return bytes(received), stats


if __name__ == "__main__":
    data, stats = trio.run(main)
    print(f"received {len(data)} bytes")
    print(stats)
