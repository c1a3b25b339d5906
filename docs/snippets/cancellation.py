"""Cancelling the writer's waits leaves the writer, and the bytes, alone.

A raw stream's cancelled ``send_all`` leaves an unknown part of its bytes
sent, and the stream unusable.  The writer's waits (``drain``, ``flush``,
``send_all``) only wait for the sender task: cancelling one leaves what was
written queued, to be sent in order.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import WriterState, open_buffered_writer


async def main() -> tuple[bytes, WriterState]:
    # A lockstep stream: each send_all waits until the peer reads.
    send_side, receive_side = trio.testing.lockstep_stream_pair()
    async with open_buffered_writer(send_side, high_water=4) as writer:
        writer.write(b"first ")
        with trio.move_on_after(0.01):
            await writer.flush()  # nobody reads: times out
        with trio.move_on_after(0.01):
            await writer.send_all(b"second ")  # queued, then waits: times out
        with trio.move_on_after(0.01):
            await writer.drain()  # still over high water: times out
        writer.write(b"third")  # the writer is still usable
        state = writer.state

        received = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.flush)
            while len(received) < len(b"first second third"):
                received += await receive_side.receive_some()
    await receive_side.aclose()
    return bytes(received), state


if __name__ == "__main__":
    data, state = trio.run(main)
    print(f"received {data!r}; the writer was {state.name} after the cancellations")
