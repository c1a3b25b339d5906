"""PositionalWriter: several tasks fill one file, out of order.

Run it: ``python docs/snippets/positional_basic.py``.  Four tasks write the
64 KiB blocks of a 4 MiB file in random order, as pieces of a download
would arrive; a header then overwrites the first bytes.  The program reads
the file back and checks it.
"""

from __future__ import annotations

import os
import random
import tempfile

import trio

from trio_bufwriter import PositionalStatistics, PositionalWriter, open_positional_writer

BLOCK = 64 * 1024
BLOCKS = 64


def block(index: int) -> bytes:
    """The bytes that belong in block *index*."""
    return bytes([index]) * BLOCK


async def fill(writer: PositionalWriter, indices: list[int]) -> None:
    for index in indices:
        await writer.drain()  # waits only while more than high water is pending
        writer.write_at(index * BLOCK, block(index))  # synchronous: queues, never blocks


async def main() -> tuple[bool, PositionalStatistics]:
    order = list(range(BLOCKS))
    random.shuffle(order)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "assembled.bin")
        async with open_positional_writer(
            path, preallocate=BLOCKS * BLOCK, high_water=1024 * 1024
        ) as writer:
            async with trio.open_nursery() as nursery:
                for task in range(4):
                    nursery.start_soon(fill, writer, order[task::4])
            writer.write_at(0, b"HDR1")  # overlaps block 0: the later write wins
            await writer.flush()  # every write_at above has reached the OS ...
            data = await trio.Path(path).read_bytes()  # ... so any reader sees it
        # Leaving the block flushed anything left and closed the file.
    expected = b"HDR1" + b"".join(block(index) for index in range(BLOCKS))[4:]
    return data == expected, writer.statistics()


if __name__ == "__main__":
    same, stats = trio.run(main)
    print(f"file as expected: {same}")
    print(stats)
