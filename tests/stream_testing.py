"""Small streams and helpers that several test modules share."""

from __future__ import annotations

import trio


async def receive_all(stream: trio.abc.ReceiveStream) -> bytes:
    """Everything *stream* sends until its end-of-file."""
    received = bytearray()
    while data := await stream.receive_some():
        received += data
    return bytes(received)


class NoHalfClose(trio.abc.Stream):
    """A two-way stream without send_eof, like trio.SSLStream."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()
