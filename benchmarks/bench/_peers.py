"""The throughput peers: each sends *count* messages to the receiver its own way.

Every peer runs in the bench process on a fresh connection and a fresh event
loop (or none), and times the same span: from the moment its connection is
open until it has closed the connection *and* the receiver has reported, over
its control pipe, how many bytes it read before end-of-file.  The receiver's
count is waited for with a blocking call from inside the loop, so that no
peer pays for a thread hop or for tearing its loop down.

Each peer keeps its library's default socket options, apart from
``TCP_NODELAY`` on the raw sockets (asyncio, uvloop and trio set it
themselves); what each one ends up with is recorded from the socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from time import perf_counter

import trio

from trio_bufwriter import open_buffered_writer

from ._config import MiB
from ._machine import optional_module, socket_options

#: Raw bulk sends the run's bytes in sendall() calls of this size.
BULK_CHUNK = MiB
#: The asyncio and uvloop "batched" peers drain once every this many messages.
DRAIN_EVERY = 64

RAW_BULK = "raw bulk"
RAW_SENDALL = "raw sendall"
ASYNCIO = "asyncio drain each"
ASYNCIO_BATCHED = f"asyncio drain /{DRAIN_EVERY}"
UVLOOP = "uvloop drain each"
UVLOOP_BATCHED = f"uvloop drain /{DRAIN_EVERY}"
TRIO_SEND_ALL = "trio send_all"
BUFWRITER = "bufwriter write+drain"
BUFWRITER_WRITE_ONLY = "bufwriter write-only"


@dataclass(frozen=True)
class Job:
    """One run: send *message* *count* times to the receiver on *port*."""

    port: int
    message: bytes
    count: int
    #: Blocks until the receiver reports the byte count of the closed connection.
    wait_count: Callable[[], int]


@dataclass(frozen=True)
class Outcome:
    """What one run measured."""

    seconds: float
    received: int
    socket_options: dict[str, int | None]


@dataclass(frozen=True)
class Peer:
    """A way of sending, as it appears in the table."""

    name: str
    description: str
    run: Callable[[Job], Outcome]
    #: Sends :data:`BULK_CHUNK`-sized units whatever the message size.
    bulk: bool = False
    #: Holds every byte of the run in memory before sending (write-only).
    buffers_all: bool = False
    #: An optional module it needs (skipped with a note when missing).
    requires: str | None = None


# ----------------------------------------------------------------------
# Blocking sockets


def _raw(job: Job) -> Outcome:
    with socket.create_connection(("127.0.0.1", job.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        options = socket_options(sock)
        message = job.message
        start = perf_counter()
        for _ in range(job.count):
            sock.sendall(message)
    received = job.wait_count()
    return Outcome(perf_counter() - start, received, options)


# ----------------------------------------------------------------------
# asyncio and uvloop streams


async def _asyncio_each(job: Job) -> Outcome:
    _, writer = await asyncio.open_connection("127.0.0.1", job.port)
    options = socket_options(writer.get_extra_info("socket"))
    message = job.message
    start = perf_counter()
    for _ in range(job.count):
        writer.write(message)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    received = job.wait_count()
    return Outcome(perf_counter() - start, received, options)


async def _asyncio_batched(job: Job) -> Outcome:
    _, writer = await asyncio.open_connection("127.0.0.1", job.port)
    options = socket_options(writer.get_extra_info("socket"))
    message = job.message
    batches, rest = divmod(job.count, DRAIN_EVERY)
    start = perf_counter()
    for _ in range(batches):
        for _ in range(DRAIN_EVERY):
            writer.write(message)
        await writer.drain()
    for _ in range(rest):
        writer.write(message)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    received = job.wait_count()
    return Outcome(perf_counter() - start, received, options)


def new_event_loop(library: str) -> asyncio.AbstractEventLoop:
    """A fresh asyncio event loop: the standard one, or uvloop's."""
    if library == "asyncio":
        return asyncio.new_event_loop()
    uvloop = optional_module("uvloop")
    if uvloop is None:
        raise RuntimeError("uvloop is not installed")
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _on_asyncio(
    library: str, send: Callable[[Job], Coroutine[object, object, Outcome]]
) -> Callable[[Job], Outcome]:
    def run(job: Job) -> Outcome:
        loop = new_event_loop(library)
        try:
            return loop.run_until_complete(send(job))
        finally:
            loop.close()

    return run


# ----------------------------------------------------------------------
# trio and trio_bufwriter


async def _trio_send_all(job: Job) -> Outcome:
    stream = await trio.open_tcp_stream("127.0.0.1", job.port)
    options = socket_options(stream.socket)
    message = job.message
    start = perf_counter()
    async with stream:
        for _ in range(job.count):
            await stream.send_all(message)
    received = job.wait_count()  # blocks the loop: nothing else runs now
    return Outcome(perf_counter() - start, received, options)


async def _bufwriter_drain(job: Job) -> Outcome:
    stream = await trio.open_tcp_stream("127.0.0.1", job.port)
    message = job.message
    # As in the demo, creating the writer and starting its sender are charged.
    start = perf_counter()
    async with open_buffered_writer(stream) as writer:
        for _ in range(job.count):
            writer.write(message)
            await writer.drain()
        # Read once the writer has set the socket up (a few microseconds).
        options = socket_options(stream.socket)
    received = job.wait_count()
    return Outcome(perf_counter() - start, received, options)


async def _bufwriter_write_only(job: Job) -> Outcome:
    stream = await trio.open_tcp_stream("127.0.0.1", job.port)
    message = job.message
    start = perf_counter()
    async with open_buffered_writer(stream) as writer:
        for _ in range(job.count):
            writer.write(message)
        await writer.flush()
        options = socket_options(stream.socket)
    received = job.wait_count()
    return Outcome(perf_counter() - start, received, options)


def _on_trio(send: Callable[[Job], Awaitable[Outcome]]) -> Callable[[Job], Outcome]:
    def run(job: Job) -> Outcome:
        return trio.run(send, job)

    return run


# ----------------------------------------------------------------------

PEERS: tuple[Peer, ...] = (
    Peer(
        RAW_BULK,
        f"the limit: blocking socket, the run's bytes in {BULK_CHUNK // MiB} MiB sendall() "
        "calls (its msgs/s is its byte rate / the message size)",
        _raw,
        bulk=True,
    ),
    Peer(RAW_SENDALL, "blocking socket, one sendall() per message", _raw),
    Peer(
        ASYNCIO,
        "asyncio StreamWriter: write(); await drain() per message",
        _on_asyncio("asyncio", _asyncio_each),
    ),
    Peer(
        ASYNCIO_BATCHED,
        f"asyncio StreamWriter: write() each, await drain() every {DRAIN_EVERY}",
        _on_asyncio("asyncio", _asyncio_batched),
    ),
    Peer(
        UVLOOP,
        "uvloop StreamWriter: write(); await drain() per message",
        _on_asyncio("uvloop", _asyncio_each),
        requires="uvloop",
    ),
    Peer(
        UVLOOP_BATCHED,
        f"uvloop StreamWriter: write() each, await drain() every {DRAIN_EVERY}",
        _on_asyncio("uvloop", _asyncio_batched),
        requires="uvloop",
    ),
    Peer(
        TRIO_SEND_ALL, "trio SocketStream: await send_all() per message", _on_trio(_trio_send_all)
    ),
    Peer(
        BUFWRITER,
        "open_buffered_writer: write(); await drain() per message",
        _on_trio(_bufwriter_drain),
    ),
    Peer(
        BUFWRITER_WRITE_ONLY,
        "open_buffered_writer: write() per message, one await flush() at the end",
        _on_trio(_bufwriter_write_only),
        buffers_all=True,
    ),
)
