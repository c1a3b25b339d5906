"""Scheduler passes per request in a pipelined RESP exchange, counted.

``python -m benchmarks.turn_steps`` runs, in one trio run over a loopback
TCP connection, a client that sends *P* pipelined ``SET``\\ s and reads their
replies, *R* times, against one server connection written three ways: the
example's (``BufferedStream`` and ``receive_parsed``), ``bufwriter-hand``'s
(``BufferedStream``, ``receive_some``, a hand parser) and plain trio with
the replies joined (one ``send_all`` per receive).  An instrument counts
``before_task_step`` per task (the server's handler, the writer's sender,
the client) and the scheduler's batches; it prints them per request.
Counts, not times: the same on a busy machine.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Awaitable, Callable

import trio

from trio_bufwriter import open_buffered_stream

from .servers import resp_bufwriter_hand
from .servers._serving import RECEIVE_SIZE, RespCommands, load_example

resp = load_example("resp_server")


class Steps(trio.abc.Instrument):
    """Counts task steps by task name, and scheduler batches."""

    def __init__(self) -> None:
        self.steps: Counter[str] = Counter()
        self.batches = 0
        self.on = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.steps[task.name.rsplit(".", 1)[-1]] += 1

    def before_io_wait(self, timeout: float) -> None:
        if self.on:
            self.batches += 1


def command(i: int) -> bytes:
    key = b"key:%012d" % i
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$3\r\nxxx\r\n" % (len(key), key)


async def example_server(stream: trio.SocketStream) -> None:
    server = resp.RespServer()
    async with open_buffered_stream(stream) as conn:
        await server.serve_connection(conn)


async def hand_server(stream: trio.SocketStream) -> None:
    server = resp.RespServer()
    async with open_buffered_stream(stream) as conn:
        await resp_bufwriter_hand.serve_connection(conn, server.execute)


async def joined_server(stream: trio.SocketStream) -> None:
    commands = RespCommands(resp, resp.RespServer())
    async with stream:
        while data := await stream.receive_some(RECEIVE_SIZE):
            await stream.send_all(b"".join(commands.replies(data)))


SERVERS: dict[str, Callable[[trio.SocketStream], Awaitable[None]]] = {
    "bufwriter": example_server,
    "bufwriter-hand": hand_server,
    "trio-joined": joined_server,
}


async def exchange(name: str, pipeline: int, rounds: int) -> tuple[Counter[str], int]:
    """Steps per task and I/O waits over *rounds* exchanges of *pipeline* requests."""
    steps = Steps()
    trio.lowlevel.add_instrument(steps)
    [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server_stream = await listener.accept()
    assert isinstance(server_stream, trio.SocketStream)
    batch = b"".join(command(i) for i in range(pipeline))
    reply = b"+OK\r\n" * pipeline
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(SERVERS[name], server_stream, name="server")

            async def one_round() -> None:
                await client.send_all(batch)
                got = 0
                while got < len(reply):
                    got += len(await client.receive_some(RECEIVE_SIZE))

            for _ in range(10):  # warm up
                await one_round()
            steps.on = True
            for _ in range(rounds):
                await one_round()
            steps.on = False
            await client.aclose()
    finally:
        trio.lowlevel.remove_instrument(steps)
    return steps.steps, steps.batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args(argv)
    for pipeline in (1, 16):
        print(f"-P{pipeline}: task steps per batch of {pipeline} request(s), by task")
        for name in SERVERS:
            steps, waits = trio.run(exchange, name, pipeline, args.rounds)
            per = args.rounds
            parts = ", ".join(f"{task} {count / per:.2f}" for task, count in sorted(steps.items()))
            total = sum(steps.values()) / per
            print(f"  {name:15} {total:5.2f}  ({parts}; io waits {waits / per:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
