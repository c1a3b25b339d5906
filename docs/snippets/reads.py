"""Tutorial: reads for protocol code, on length-prefixed frames and lines.

A peer sends a header line, then frames of a 4-byte big-endian length and
that many bytes, then stops in the middle of a frame.  The reader reads the
header with ``receive_line()``, each frame with two ``receive_exactly()``,
and finds the truncated frame in ``IncompleteReadError.partial``.  A line
longer than its limit raises ``DelimiterNotFoundError``, and its bytes stay
in the buffer.
"""

from __future__ import annotations

import struct

import trio
import trio.testing

from trio_bufwriter import BufferedReader, DelimiterNotFoundError, IncompleteReadError

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


async def peer(stream: trio.abc.SendStream) -> None:
    data = b"FRAMES v1\r\n"
    data += b"".join(struct.pack(">I", len(f)) + f for f in [b"one", b"", b"three"])
    data += struct.pack(">I", 10) + b"half"  # 4 of 10 bytes, then the end
    for i in range(0, len(data), 3):  # in pieces of 3 bytes: it changes nothing
        await stream.send_all(data[i : i + 3])
    await stream.aclose()


async def main() -> tuple[tuple[bytes, list[bytes], bytes], str, bytes]:
    send, receive = trio.testing.memory_stream_one_way_pair()
    async with trio.open_nursery() as nursery, BufferedReader(receive) as reader:
        nursery.start_soon(peer, send)
        result = await read_frames(reader)

    send, receive = trio.testing.memory_stream_one_way_pair()
    await send.send_all(b"x" * 200 + b"\n")
    async with BufferedReader(receive) as reader:
        try:
            await reader.receive_line(max_bytes=100)
        except DelimiterNotFoundError as exc:
            error = str(exc)
        # The bytes are still there: with a bigger limit, the line is read.
        line = await reader.receive_line(max_bytes=1000)
    return result, error, line


if __name__ == "__main__":
    print(trio.run(main))
