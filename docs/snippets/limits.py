"""Slow consumers: max_buffer with each overflow policy, and stall_timeout.

Each case writes to a lockstep stream, whose ``send_all`` waits until the
peer reads: a peer that does not read is stuck.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import BufferLimitError, open_buffered_writer


async def read_to_eof(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    async for chunk in stream:
        into += chunk


async def overflow_raise() -> tuple[str, bytes]:
    """overflow="raise": the write is refused; the writer stays usable."""
    send_side, receive_side = trio.testing.lockstep_stream_pair()
    received = bytearray()
    async with (
        trio.open_nursery() as nursery,
        open_buffered_writer(send_side, max_buffer=1000, high_water=500) as writer,
    ):
        writer.write(b"a" * 600)
        try:
            writer.write(b"b" * 600)  # 1,200 bytes would be held
        except BufferLimitError as exc:
            outcome = f"refused: {exc}; the writer is {writer.state.name}"
        writer.write(b"c" * 400)  # 1,000 bytes held: accepted
        # Now the peer reads, so that the writer can flush on leaving.
        nursery.start_soon(read_to_eof, receive_side, received)
    return outcome, bytes(received)


async def overflow_abort() -> str:
    """overflow="abort": the writer breaks, and the connection is closed."""
    send_side, receive_side = trio.testing.lockstep_stream_pair()
    async with (
        receive_side,
        open_buffered_writer(
            send_side, max_buffer=1000, high_water=500, overflow="abort"
        ) as writer,
    ):
        writer.write(b"a" * 600)
        try:
            writer.write(b"b" * 600)
        except trio.BrokenResourceError as exc:
            outcome = f"{exc} (cause: {exc.__cause__!r}); the writer is {writer.state.name}"
    # The error was raised to us already: closing does not raise it again.
    return outcome


async def stall() -> str:
    """stall_timeout: over high water with nothing sent for that long aborts."""
    send_side, receive_side = trio.testing.lockstep_stream_pair()
    async with (
        receive_side,
        open_buffered_writer(send_side, high_water=16, stall_timeout=0.1) as writer,
    ):
        writer.write(b"x" * 100)
        try:
            await writer.drain()  # nobody reads: after 0.1 s...
        except trio.BrokenResourceError as exc:
            outcome = f"{exc} (cause: {exc.__cause__!r})"
    return outcome


async def main() -> tuple[tuple[str, bytes], str, str]:
    return await overflow_raise(), await overflow_abort(), await stall()


if __name__ == "__main__":
    (refused, received), aborted, stalled = trio.run(main)
    print(refused, f"({len(received)} bytes delivered)", aborted, stalled, sep="\n")
