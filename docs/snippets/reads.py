"""Tutorial: reads for protocol code, on length-prefixed frames and lines.

A peer sends a header line, then frames of a 4-byte big-endian length and
that many bytes, then stops in the middle of a frame.  The reader reads the
header with ``receive_line()``, each frame with two ``receive_exactly()``,
and finds the truncated frame in ``IncompleteReadError.partial``.  Then the
same bytes are decoded with ``receive_frames()`` and a decoder function,
sent at once (the frames come in one batch) and in pieces of 3 bytes (the
same frames, in smaller batches).  A line longer than its limit raises
``DelimiterNotFoundError``, and its bytes stay in the buffer.
"""

from __future__ import annotations

import struct

import trio
import trio.testing

from trio_bufwriter import (
    BufferedReader,
    DelimiterNotFoundError,
    FrameReader,
    IncompleteReadError,
)

MAX_FRAME = 1 << 20


async def read_frames(reader: BufferedReader) -> tuple[bytes, list[bytes], bytes]:
    header = await reader.receive_line(max_bytes=100)
    frames = []
    try:
        while True:
            (size,) = struct.unpack(">I", await reader.receive_exactly(4))
            if size > MAX_FRAME:  # check a length from the peer before using it
                raise ValueError(f"frame of {size} bytes")
            frames.append(await reader.receive_exactly(size))
    except IncompleteReadError as exc:
        return header, frames, exc.partial  # the peer stopped mid-frame


def decode_frame(frame: FrameReader) -> bytes:
    # Not async: a read raises trio.WouldBlock if the frame is not all there.
    (size,) = struct.unpack(">I", frame.read_exactly(4))
    if size > MAX_FRAME:  # the same check
        raise ValueError(f"frame of {size} bytes")
    return frame.read_exactly(size)


async def read_batches(reader: BufferedReader) -> tuple[bytes, list[list[bytes]], bytes]:
    header = await reader.receive_line(max_bytes=100)
    batches = []
    try:
        while frames := await reader.receive_frames(decode_frame):
            batches.append(frames)  # every complete frame received, in order
    except IncompleteReadError as exc:
        return header, batches, exc.partial  # the whole truncated frame
    return header, batches, b""  # a clean end-of-file


DATA = (
    b"FRAMES v1\r\n"
    + b"".join(struct.pack(">I", len(f)) + f for f in [b"one", b"", b"three"])
    + struct.pack(">I", 10)
    + b"half"  # 4 of 10 bytes, then the end
)


async def peer(stream: trio.abc.SendStream, piece: int = 3) -> None:
    for i in range(0, len(DATA), piece):  # in pieces of 3 bytes: the reads get the same
        await stream.send_all(DATA[i : i + piece])
    await stream.aclose()


async def main() -> tuple[
    tuple[bytes, list[bytes], bytes], list[tuple[bytes, list[list[bytes]], bytes]], str, bytes
]:
    send, receive = trio.testing.memory_stream_one_way_pair()
    async with trio.open_nursery() as nursery, BufferedReader(receive) as reader:
        nursery.start_soon(peer, send)
        result = await read_frames(reader)

    decoded = []
    for piece in (len(DATA), 3):  # all at once, then in pieces of 3 bytes
        send, receive = trio.testing.memory_stream_one_way_pair()
        async with trio.open_nursery() as nursery, BufferedReader(receive) as reader:
            nursery.start_soon(peer, send, piece)
            decoded.append(await read_batches(reader))

    send, receive = trio.testing.memory_stream_one_way_pair()
    await send.send_all(b"x" * 200 + b"\n")
    async with BufferedReader(receive) as reader:
        try:
            await reader.receive_line(max_bytes=100)
        except DelimiterNotFoundError as exc:
            error = str(exc)
        # The bytes are still there: with a bigger limit, the line is read.
        line = await reader.receive_line(max_bytes=1000)
    return result, decoded, error, line


if __name__ == "__main__":
    print(trio.run(main))
