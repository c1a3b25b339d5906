"""A file sent with write_file() between two writes, over loopback TCP.

Over a ``trio.SocketStream`` the file's bytes go out with ``sendfile(2)``;
the file is closed as soon as ``write_file()`` returns, and the writer
keeps a descriptor of its own until the region is sent.
"""

from __future__ import annotations

import os
import tempfile

import trio

from trio_bufwriter import open_buffered_writer


async def send_file(stream: trio.SocketStream, path: str) -> None:
    async with open_buffered_writer(stream) as writer:
        async with await trio.open_file(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            writer.write(b"%d\n" % size)  # a length prefix, then the file
            writer.write_file(file)  # queued in order, like write()
        # The file is closed already: the region holds a duplicate descriptor.
        writer.write(b"done\n")
        await writer.drain()  # the file's bytes count against the water marks


async def main() -> dict[str, object]:
    content = bytes(range(256)) * 1000
    with tempfile.NamedTemporaryFile(delete=False) as file:
        file.write(content)
    try:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        received = bytearray()
        async with trio.open_nursery() as nursery:

            async def receive() -> None:
                async with await listeners[0].accept() as server:
                    async for chunk in server:
                        received.extend(chunk)

            nursery.start_soon(receive)
            client = await trio.open_tcp_stream("127.0.0.1", port)
            await send_file(client, file.name)
        await listeners[0].aclose()
    finally:
        os.unlink(file.name)
    return {"right bytes": bytes(received) == b"256000\n" + content + b"done\n"}


if __name__ == "__main__":
    print(trio.run(main))
