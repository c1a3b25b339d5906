"""What coalescing, flush() and corked() do, counted on an in-memory stream.

``statistics().send_calls`` counts the calls made to the wrapped stream's
``send_all``.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import open_buffered_writer


async def main() -> dict[str, int]:
    send_side, receive_side = trio.testing.memory_stream_pair()
    counts = {}
    async with open_buffered_writer(send_side) as writer:
        # Everything written before the sender task runs goes out in one send_all.
        for i in range(1000):
            writer.write(b"message %d\n" % i)
        await writer.flush()  # returns once all 1,000 were accepted
        counts["sends for 1000 writes"] = writer.statistics().send_calls

        # A cork holds the sender back even across checkpoints, so that a
        # header and a body produced in several steps leave together.
        before = writer.statistics().send_calls
        with writer.corked():
            writer.write(b"HEADER\n")
            await trio.lowlevel.checkpoint()  # other tasks, and the sender, may run here
            writer.write(b"BODY\n")
        await writer.flush()
        counts["sends for a corked header and body"] = writer.statistics().send_calls - before

        # flush() is a barrier for the bytes written before it.
        writer.write(b"last\n")
        await writer.flush()
        counts["buffered after flush"] = writer.buffered
        counts["bytes written"] = writer.statistics().bytes_written
    received = bytearray()
    async for chunk in receive_side:
        received += chunk
    counts["bytes received"] = len(received)
    return counts


if __name__ == "__main__":
    for what, count in trio.run(main).items():
        print(f"{what}: {count}")
