"""Latest value wins: a slow reader gets the newest price of each symbol.

A ``ConflatingWriter`` in front of a writer whose peer reads only when told
to.  While the peer does not read, newer prices replace the waiting ones;
when it reads, it gets the newest price of each symbol, each frame whole.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import ConflationStatistics, open_buffered_writer, open_conflating_writer


async def main() -> tuple[list[bytes], ConflationStatistics]:
    send_side, receive_side = trio.testing.lockstep_stream_pair()
    received = bytearray()

    async def read_all() -> None:
        async for chunk in receive_side:
            received.extend(chunk)

    async with (
        trio.open_nursery() as nursery,
        open_buffered_writer(send_side, high_water=0) as writer,
        open_conflating_writer(writer) as latest,
    ):
        for price in range(100, 200):
            for symbol in (b"AAA", b"BBB", b"CCC"):
                # Synchronous, never blocks: a price that is still
                # waiting for its symbol is replaced by this one.
                latest.write_latest(symbol, b"%s %d\n" % (symbol, price))
        stats = latest.statistics()
        # The reader starts now; leaving the block sends what waits.
        nursery.start_soon(read_all)
    return bytes(received).splitlines(), stats
