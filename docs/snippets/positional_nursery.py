"""PositionalWriter in a nursery of your own, and what a failed write tells you.

Run it: ``python docs/snippets/positional_nursery.py`` (Linux: it writes to
``/dev/full``, which refuses every write with ENOSPC).
"""

from __future__ import annotations

import os
import tempfile

import trio

from trio_bufwriter import PositionalWriteError, PositionalWriter, open_positional_writer


async def own_nursery(path: str) -> bytes:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    writer = PositionalWriter(fd, high_water=4 * 1024 * 1024, close_fd=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        writer.write_at(6, b"world")
        writer.write_at(0, b"hello ")
        await writer.aclose()  # flush, then close fd (because close_fd=True)
    return await trio.Path(path).read_bytes()


async def write_or_list_missing(path: str) -> list[tuple[int, int]]:
    """Write two pieces; return the byte ranges to fetch again if that failed."""
    try:
        async with open_positional_writer(path) as writer:
            writer.write_at(0, b"x" * 100)
            writer.write_at(4096, b"y" * 100)
            await writer.flush()
    except PositionalWriteError as exc:
        print(f"{exc.__cause__}: refetch {exc.unwritten}")
        return exc.unwritten
    return []


async def main() -> tuple[bytes, list[tuple[int, int]]]:
    with tempfile.TemporaryDirectory() as directory:
        written = await own_nursery(os.path.join(directory, "greeting.txt"))
    missing = await write_or_list_missing("/dev/full")
    return written, missing


if __name__ == "__main__":
    print(trio.run(main))
