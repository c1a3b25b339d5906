"""Fan-out with a Broadcaster: a stuck subscriber is dropped, the others get everything.

Three subscribers; the third never reads.  Each writer has ``max_buffer``
with ``overflow="abort"``, so the stuck one is cut off once 4 KiB are waiting
for it, while ``broadcast()`` itself never waits for anybody.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import Broadcaster, BroadcastStatistics, BufferedWriter


async def read_to_eof(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    async for chunk in stream:
        into += chunk


async def main() -> tuple[list[bytes], list[str], BroadcastStatistics]:
    hub = Broadcaster()
    pairs = [trio.testing.lockstep_stream_pair() for _ in range(3)]
    received = [bytearray(), bytearray()]
    dropped = []
    async with trio.open_nursery() as nursery:
        writers = []
        for send_side, _ in pairs:
            writer = BufferedWriter(send_side, max_buffer=4096, high_water=2048, overflow="abort")
            await nursery.start(writer.run)  # the sender task, in our nursery
            hub.add(writer)
            writers.append(writer)
        # Readers for the first two peers; the third one never reads.
        for (_, receive_side), into in zip(pairs[:2], received, strict=True):
            nursery.start_soon(read_to_eof, receive_side, into)

        for i in range(1000):
            for writer, error in hub.broadcast(b"message %d\n" % i):
                dropped.append(f"subscriber {writers.index(writer)}: {error.__cause__!r}")
            await trio.lowlevel.checkpoint()  # let the sender tasks run

        stats = hub.statistics()
        for writer in writers:
            await writer.aclose()  # flush and close; the dropped one is closed already
        await pairs[2][1].aclose()
    return [bytes(data) for data in received], dropped, stats


if __name__ == "__main__":
    received, dropped, stats = trio.run(main)
    print("delivered:", [len(data) for data in received], "bytes")
    print("dropped:", *dropped)
    print(stats)
