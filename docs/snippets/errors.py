"""Failures are sticky, chained, and reported once they happen.

When the wrapped stream fails, the writer is broken: every later call raises
``trio.BrokenResourceError`` with the stream's own error as ``__cause__``.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import WriterState, open_buffered_writer


async def main() -> list[str]:
    send_side, receive_side = trio.testing.memory_stream_pair()
    await receive_side.aclose()  # the peer is gone: send_all will fail
    seen = []
    async with open_buffered_writer(send_side) as writer:
        writer.write(b"hello")  # queued: nothing has failed yet
        try:
            await writer.flush()
        except trio.BrokenResourceError as exc:
            seen.append(f"flush: {exc} (cause: {exc.__cause__!r})")
        try:
            writer.write(b"again")  # broken for good
        except trio.BrokenResourceError as exc:
            seen.append(f"write: {exc}")
        seen.append(f"state: {writer.state.name}")
    # The failure was already reported, so leaving the block (aclose) does
    # not raise it again.
    seen.append(f"after the block: {writer.state.name}")
    assert writer.state is WriterState.CLOSED
    return seen


if __name__ == "__main__":
    for line in trio.run(main):
        print(line)
