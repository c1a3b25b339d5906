"""Tutorial: ``receive_parsed`` on length-prefixed frames, and ``lines()``.

The frames of the reads tutorial (a 4-byte big-endian length, then that
many bytes), found by a parse function given the bytes and a position,
sent at once and in pieces of 3 bytes: the same frames.  Then a text
stream read with ``async for line in reader.lines()``: its last line has no
line ending, and comes all the same before the loop ends.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_bufwriter import BufferedReader, FrameTooLargeError

MAX_FRAME = 1 << 20


def parse_frame(data: bytes, start: int) -> tuple[bytes, int] | int | None:
    """The frame at *start*: ``(payload, end)``, or what is still missing."""
    if len(data) - start < 4:
        return None  # not even the length yet
    end = start + 4 + int.from_bytes(data[start : start + 4], "big")
    if end > len(data):
        return end - start  # the frame's size: no call again before it is all there
    return data[start + 4 : end], end


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


async def parse_batches(pieces: list[bytes]) -> list[list[bytes]]:
    send, receive = trio.testing.memory_stream_pair()
    async with BufferedReader(receive) as reader:
        for piece in pieces:
            await send.send_all(piece)
        await send.aclose()
        batches = []
        # max_frame: 4 bytes of length and 1 MiB at most; a longer frame
        # raises FrameTooLargeError, its bytes left unread.
        while frames := await reader.receive_parsed(parse_frame, max_frame=4 + MAX_FRAME):
            batches.append(frames)
        return batches


async def read_lines(text: bytes) -> list[bytes]:
    send, receive = trio.testing.memory_stream_pair()
    async with BufferedReader(receive) as reader:
        await send.send_all(text)
        await send.aclose()
        return [line async for line in reader.lines(max_bytes=100)]


async def main() -> tuple[list[list[bytes]], list[list[bytes]], str, list[bytes]]:
    data = frame(b"one") + frame(b"") + frame(b"three")
    at_once = await parse_batches([data])
    in_pieces = await parse_batches([data[i : i + 3] for i in range(0, len(data), 3)])
    try:
        await parse_batches([frame(b"x" * (MAX_FRAME + 1))[:10]])
        too_large = "no error"
    except FrameTooLargeError as exc:
        too_large = f"FrameTooLargeError: {exc.size} > {exc.max_frame}"
    lines = await read_lines(b"first\r\nsecond\n\nlast, without a line ending")
    return at_once, in_pieces, too_large, lines
