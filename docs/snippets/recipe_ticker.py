"""Recipe: a price ticker; a slow client gets the latest price of each key.

Every connection is a ``BufferedStream`` with a ``ConflatingWriter`` in
front, subscribed to one ``Broadcaster``; the publisher calls
``hub.broadcast_latest(key, frame)``, which never blocks.  A client that
keeps up receives every update; a slow one receives, for each key, the
newest price whenever it can take anything, and the server holds at most
one frame per key for it.

``python docs/snippets/recipe_ticker.py`` runs the server, a fast client,
and a slow one that reads nothing until the publisher is done.
"""

from __future__ import annotations

import socket
import struct
from functools import partial

import trio

from trio_bufwriter import Broadcaster, open_buffered_stream, open_conflating_writer

FRAME = struct.Struct("!IQ")  # key, sequence number (the "price")
# Plain writes, never conflated or dropped: the first thing a client gets,
# and the last.
HELLO = FRAME.pack(0xFFFFFFFE, 0)
END = FRAME.pack(0xFFFFFFFF, 0)
KEYS = 50
UPDATES = 200  # per key

#: Frames wait, and conflate, while the writer holds more than this.  Make
#: it bigger than what the publisher writes to one client between two runs
#: of its sender (here, one round of KEYS frames), or fast clients conflate.
HIGH_WATER = 4096
#: Unsent bytes the kernel may hold for the socket.  They are past
#: conflating (first in, first out), so keep them few.
NOTSENT_LOWAT = 16 * 1024
#: At most one frame per key waits; a new key past this is refused.
MAX_KEYS = 10_000
#: Plain writes (END here) are not conflated: this bounds them.  It must
#: exceed HIGH_WATER plus the largest frame.
MAX_BUFFER = 1024 * 1024

hub = Broadcaster()


async def handle(stream: trio.SocketStream) -> None:
    try:
        # The conflating writer inside the stream: it closes first, handing
        # its waiting frames to the stream, which then sends them and closes.
        async with (
            open_buffered_stream(
                stream,
                high_water=HIGH_WATER,
                notsent_lowat=NOTSENT_LOWAT,
                max_buffer=MAX_BUFFER,
                overflow="abort",
            ) as conn,
            open_conflating_writer(conn, max_keys=MAX_KEYS) as latest,
        ):
            latest.write(HELLO)  # you are subscribed
            hub.add(latest)
            try:
                await conn.receive_some()  # until the client leaves
            finally:
                hub.discard(latest)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client vanished, or was cut off


async def publish() -> int:
    """Publish every update, a round of KEYS at a time; return how many."""
    for seq in range(UPDATES):
        for key in range(KEYS):
            hub.broadcast_latest(key, FRAME.pack(key, seq))
        await trio.lowlevel.checkpoint()  # let the senders run
    hub.broadcast(END)  # after every frame still waiting, for every client
    return UPDATES * KEYS


# Two clients, for the test and for ``python recipe_ticker.py`` -----------


async def connect(port: int, receive_buffer: int | None = None) -> trio.SocketStream:
    sock = trio.socket.socket()
    if receive_buffer is not None:  # before connecting, for the TCP window
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    hello = b""
    while len(hello) < len(HELLO):  # wait until subscribed
        hello += await stream.receive_some(len(HELLO) - len(hello))
    assert hello == HELLO
    return stream


async def read_frames(stream: trio.SocketStream) -> list[tuple[int, int]]:
    """Every frame up to END."""
    data = bytearray()
    while not data.endswith(END) or len(data) % FRAME.size:
        chunk = await stream.receive_some()
        assert chunk, "the server closed the connection"
        data += chunk
    return list(FRAME.iter_unpack(data[: -FRAME.size]))


async def main() -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        fast = await connect(port)
        slow = await connect(port, receive_buffer=4096)
        fast_frames: list[tuple[int, int]] = []

        async def read_fast() -> None:
            fast_frames.extend(await read_frames(fast))

        async with trio.open_nursery() as readers:
            readers.start_soon(read_fast)
            published = await publish()
        slow_frames = await read_frames(slow)  # only now does it read
        await fast.aclose()
        await slow.aclose()
        nursery.cancel_scope.cancel()
    return published, fast_frames, slow_frames


if __name__ == "__main__":
    published, fast_frames, slow_frames = trio.run(main)
    print(f"published {published}: the fast client got {len(fast_frames)},")
    print(f"the slow one {len(slow_frames)}, ending with {slow_frames[-3:]}")
