"""Many tasks sending on one connection: send_all() refuses, write() does not.

trio allows one task at a time in a stream's ``send_all``; a second one gets
``trio.BusyResourceError``.  A writer's ``write()`` can be called from any
number of tasks, and the bytes of one call are never split up.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import BufferedWriter, open_buffered_writer


async def send_all_from_two_tasks() -> str:
    send_side, receive_side = trio.testing.lockstep_stream_pair()
    async with send_side, receive_side, trio.open_nursery() as nursery:
        # Nobody reads yet, so this send_all is still running...
        nursery.start_soon(send_side.send_all, b"first")
        await trio.testing.wait_all_tasks_blocked()
        try:
            # ... when this one starts.
            await send_side.send_all(b"second")
        except trio.BusyResourceError as exc:
            error = str(exc)
        await receive_side.receive_some()  # let the first one finish
    return error


async def write_from_many_tasks() -> list[bytes]:
    send_side, receive_side = trio.testing.memory_stream_pair()

    async def worker(writer: BufferedWriter, name: bytes) -> None:
        for i in range(100):
            writer.write(b"%s:%d\n" % (name, i))
            await writer.drain()
            await trio.lowlevel.checkpoint()  # let the other tasks run

    async with open_buffered_writer(send_side) as writer, trio.open_nursery() as nursery:
        for name in (b"a", b"b", b"c"):
            nursery.start_soon(worker, writer, name)
    # Leaving the block closed the writer: read up to end-of-file.
    received = bytearray()
    async for chunk in receive_side:
        received += chunk
    return bytes(received).splitlines()


async def main() -> tuple[str, list[bytes]]:
    return await send_all_from_two_tasks(), await write_from_many_tasks()


if __name__ == "__main__":
    error, lines = trio.run(main)
    print("send_all from two tasks:", error)
    print(len(lines), "lines from three tasks, the first ones:", lines[:4])
