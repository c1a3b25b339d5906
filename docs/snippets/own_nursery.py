"""A BufferedWriter whose sender task runs in a nursery the program already has.

Run it: ``python docs/snippets/own_nursery.py``.  Two loopback connections
share one nursery with their writers' sender tasks; the program writes to
both, closes both, and prints what each peer received.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import BufferedWriter


async def main() -> list[bytes]:
    received: list[bytes] = []

    async def read_all(stream: trio.abc.ReceiveStream) -> None:
        data = bytearray()
        async for chunk in stream:
            data += chunk
        received.append(bytes(data))

    async with trio.open_nursery() as nursery:
        writers = []
        for name in (b"first", b"second"):
            ours, theirs = trio.testing.memory_stream_pair()
            nursery.start_soon(read_all, theirs)
            writer = BufferedWriter(ours)
            await nursery.start(writer.run)  # the sender, in our nursery
            writer.write(b"hello, " + name)
            writers.append(writer)
        for writer in writers:
            await writer.aclose()  # flush, close the stream; run() returns
    return sorted(received)


if __name__ == "__main__":
    print(trio.run(main))
