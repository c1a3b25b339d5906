"""Recipe: a line chat on a Broadcaster.

A client's first line is its name; every later line goes to every other
client.  ``broadcast()`` never blocks, so a client that stops reading never
holds back the others: its ``max_buffer`` fills, and it is cut off.

``python docs/snippets/recipe_chat.py`` runs the server on a loopback port
and three clients; ``python docs/snippets/recipe_chat.py serve`` serves on
port 8000, for ``nc 127.0.0.1 8000``.
"""

from __future__ import annotations

import sys
from functools import partial

import trio

from trio_bufwriter import (
    Broadcaster,
    DelimiterNotFoundError,
    IncompleteReadError,
    open_buffered_stream,
)

#: The most bytes held for one client; then its connection is closed
#: (overflow="abort").  Much more than a burst of lines from the others, or
#: clients that read just fine get cut off.
MAX_BUFFER = 1024 * 1024
#: Cut off a client that takes nothing for this long while more than its
#: high-water mark (64 KiB by default) waits for it.
STALL_TIMEOUT = 30.0
#: The longest line accepted, not counting its line ending.
MAX_LINE = 4096

hub = Broadcaster()


async def handle(stream: trio.SocketStream) -> None:
    try:
        async with open_buffered_stream(
            stream, max_buffer=MAX_BUFFER, overflow="abort", stall_timeout=STALL_TIMEOUT
        ) as conn:
            name = await conn.receive_line(MAX_LINE)
            conn.write(b"* welcome, " + name + b"\n")
            hub.add(conn)
            hub.broadcast(b"* " + name + b" joined\n", exclude=conn)
            try:
                while True:
                    line = await conn.receive_line(MAX_LINE)
                    hub.broadcast(name + b": " + line + b"\n", exclude=conn)
            except IncompleteReadError as end:  # end-of-file, maybe mid-line
                if end.partial:
                    hub.broadcast(name + b": " + end.partial + b"\n", exclude=conn)
            except DelimiterNotFoundError:
                conn.write(b"* line too long, bye\n")
            finally:
                hub.discard(conn)
            hub.broadcast(b"* " + name + b" left\n")
            # Leaving the block sends what is queued for this client, then
            # closes the connection.
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        # The client vanished mid-send, or was cut off: the abort closed
        # the connection under the read.  It is unsubscribed already.
        pass


# Three clients, for the test and for ``python recipe_chat.py`` ------------


async def join(port: int, name: bytes) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(name + b"\n")
    return stream


async def read_line(stream: trio.SocketStream, received: bytearray) -> bytes:
    """The next line; *received* keeps what came after it (a small reader)."""
    while b"\n" not in received:
        data = await stream.receive_some()
        assert data, "the server closed the connection"
        received += data
    line, _, rest = bytes(received).partition(b"\n")
    received[:] = rest
    return line


async def main() -> dict[str, list[bytes]]:
    seen: dict[str, list[bytes]] = {"alice": [], "bob": [], "carol": []}
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        clients: dict[str, trio.SocketStream] = {}
        pending = {name: bytearray() for name in seen}

        async def expect(name: str, count: int) -> None:
            for _ in range(count):
                seen[name].append(await read_line(clients[name], pending[name]))

        for name in seen:  # one at a time, each welcomed before the next
            clients[name] = await join(port, name.encode())
            await expect(name, 1)
        await expect("alice", 2)  # bob joined, carol joined
        await expect("bob", 1)  # carol joined
        await clients["alice"].send_all(b"hi all\n")
        await expect("bob", 1)
        await expect("carol", 1)
        await clients["bob"].send_eof()  # bob leaves
        await expect("alice", 1)  # bob left
        await expect("carol", 1)
        for stream in clients.values():
            await stream.aclose()
        nursery.cancel_scope.cancel()
    return seen


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        trio.run(partial(trio.serve_tcp, handle, 8000, host="127.0.0.1"))
    else:
        for name, lines in trio.run(main).items():
            print(name, lines)
