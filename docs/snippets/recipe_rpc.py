"""Recipe: a length-prefixed RPC server, and a client with a reader task.

Every message is a 4-byte length, then that many bytes: a 4-byte request
id and a body.  The server answers each request with the same id and the
body upper-cased.  The client lets many tasks call at once: each
``call()`` writes its request (writes never interleave) and waits for the
answer that its id brings back; one reader task reads every answer.

``python docs/snippets/recipe_rpc.py`` runs the server on a loopback port
and 10 tasks making 20 calls each.
"""

from __future__ import annotations

import struct
from functools import partial

import trio

from trio_bufwriter import BufferedStream, FrameReader, open_buffered_stream

LENGTH = struct.Struct("!I")  # the frame's length, not counting itself
REQUEST_ID = struct.Struct("!I")
#: The largest frame either side accepts: a length read from the peer is
#: checked before anything is read for it.
MAX_FRAME = 1024 * 1024
#: The server holds at most this many bytes of answers for one client; past
#: it, the client is cut off (overflow="abort").
MAX_BUFFER = 4 * MAX_FRAME
#: ...and cuts off a client that takes nothing for this many seconds while
#: drain() waits for it.
STALL_TIMEOUT = 30.0


def encode(request_id: int, body: bytes) -> bytes:
    return LENGTH.pack(REQUEST_ID.size + len(body)) + REQUEST_ID.pack(request_id) + body


def read_message(reader: FrameReader) -> tuple[int, bytes]:
    """The decoder: one message, read synchronously (see receive_frames)."""
    (length,) = LENGTH.unpack(reader.read_exactly(LENGTH.size))
    if not REQUEST_ID.size <= length <= MAX_FRAME:
        raise ValueError(f"bad frame length {length}")
    payload = reader.read_exactly(length)
    return REQUEST_ID.unpack_from(payload)[0], payload[REQUEST_ID.size :]


# The server ------------------------------------------------------------


async def serve_one(stream: trio.SocketStream) -> None:
    try:
        async with open_buffered_stream(
            stream, max_buffer=MAX_BUFFER, overflow="abort", stall_timeout=STALL_TIMEOUT
        ) as conn:
            # Every request received so far, decoded with no await between
            # them; [] at the client's end-of-file.
            while requests := await conn.receive_frames(read_message):
                for request_id, body in requests:
                    conn.write(encode(request_id, body.upper()))
                await conn.drain()  # waits only if the client reads slowly
            # Leaving the block sends what is queued, then closes.
    except (trio.BrokenResourceError, trio.ClosedResourceError, ValueError):
        pass  # the client went away, was cut off, or sent garbage


# The client ------------------------------------------------------------


class Client:
    """Many tasks may call() at once over one connection."""

    def __init__(self, conn: BufferedStream) -> None:
        self.conn = conn
        self.next_id = 0
        self.waiting: dict[int, trio.MemorySendChannel[bytes]] = {}

    async def call(self, body: bytes) -> bytes:
        request_id = self.next_id = self.next_id + 1
        send, receive = trio.open_memory_channel[bytes](1)
        self.waiting[request_id] = send
        try:
            self.conn.write(encode(request_id, body))  # never interleaves
            await self.conn.drain()  # backpressure if the server is slow
            async with receive:
                return await receive.receive()
        finally:
            del self.waiting[request_id]  # answered, or cancelled

    async def read_answers(self) -> None:
        """The reader task: hand each answer to the call waiting for it."""
        while answers := await self.conn.receive_frames(read_message):
            for request_id, body in answers:
                if waiter := self.waiting.get(request_id):  # else: cancelled
                    waiter.send_nowait(body)


async def run_client(port: int) -> list[bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    # The order matters: the stream outside, the nursery inside.  The
    # nursery's end waits for the reader task, and only then does the
    # stream close.  (The other way round, the stream would be closed under
    # a reader task still running.)
    async with open_buffered_stream(stream) as conn, trio.open_nursery() as nursery:
        client = Client(conn)
        nursery.start_soon(client.read_answers)
        answers: list[bytes] = []

        async def caller(name: str) -> None:
            for i in range(20):
                answers.append(await client.call(f"{name} call {i}".encode()))

        async with trio.open_nursery() as callers:
            for n in range(10):
                callers.start_soon(caller, f"task {n}")
        # No more calls: the server sees end-of-file, closes, and the reader
        # task gets [] and returns.
        await conn.send_eof()
    return answers


async def main() -> list[bytes]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve_one, 0, host="127.0.0.1"))
        answers = await run_client(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()
    return answers


if __name__ == "__main__":
    answers = trio.run(main)
    print(f"{len(answers)} answers, e.g. {answers[0]!r}")
