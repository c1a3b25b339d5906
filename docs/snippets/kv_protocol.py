"""Tutorial, step 2: a small line protocol with pipelining.

A key-value server: ``SET key value`` answers ``OK``, ``GET key`` answers
``VALUE value`` or ``MISSING``, anything else ``ERROR ...``.  A client may
send many commands without waiting for the answers (pipelining); the server
takes every line it has received with ``receive_frames()``, answers each,
and the writer puts all the answers to one batch of commands into one send.
"""

from __future__ import annotations

from functools import partial

import trio

from trio_bufwriter import BufferedStream, FrameReader, WriterStatistics, open_buffered_stream


def answer(store: dict[bytes, bytes], line: bytes) -> bytes:
    command, _, rest = line.partition(b" ")
    if command == b"SET":
        key, _, value = rest.partition(b" ")
        store[key] = value
        return b"OK\n"
    if command == b"GET":
        value = store.get(rest)
        return b"MISSING\n" if value is None else b"VALUE " + value + b"\n"
    return b"ERROR unknown command\n"


async def serve(store: dict[bytes, bytes], conn: BufferedStream) -> None:
    # Every line received so far (at most 64 KiB each); [] once the client closed.
    while lines := await conn.receive_frames(FrameReader.read_line):
        for line in lines:
            conn.write(answer(store, line))
        # write() never blocks: the answers to a batch go out together.
        await conn.drain()


class Server:
    def __init__(self) -> None:
        self.store: dict[bytes, bytes] = {}
        self.stats: list[WriterStatistics] = []
        self.finished = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        async with open_buffered_stream(stream) as conn:
            await serve(self.store, conn)
        self.stats.append(conn.statistics())
        self.finished.set()


async def pipelined_client(port: int, commands: list[bytes]) -> list[bytes]:
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b"".join(command + b"\n" for command in commands))
        await stream.send_eof()
        received = bytearray()
        async for chunk in stream:
            received += chunk
    return bytes(received).splitlines()


async def main() -> tuple[list[bytes], WriterStatistics]:
    server = Server()
    commands = [b"SET k%d v%d" % (i, i) for i in range(500)]
    commands += [b"GET k%d" % i for i in range(0, 1000, 2)]
    commands.append(b"FLY")
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        answers = await pipelined_client(listeners[0].socket.getsockname()[1], commands)
        await server.finished.wait()
        nursery.cancel_scope.cancel()
    return answers, server.stats[0]


if __name__ == "__main__":
    answers, stats = trio.run(main)
    print(answers[0], answers[500], answers[-2], answers[-1])
    print(f"{stats.write_calls} answers written in {stats.send_calls} sends")
