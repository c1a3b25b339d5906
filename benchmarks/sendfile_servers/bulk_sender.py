"""One bulk transfer of ``python -m benchmarks sendfile``, in a process of its own.

``python benchmarks/sendfile_servers/bulk_sender.py VARIANT --file PATH --port P``
connects to 127.0.0.1:P, sends the file (or, for the ``*bytes`` variants,
as many bytes as the file holds, as 1 MiB ``bytes`` objects), closes, and
prints one JSON line: its own user and system CPU seconds for the transfer
(``resource.getrusage``, every thread, from the connection's opening to its
closing: the interpreter's and the event loop's start-up are left out, as a
server pays them once, not per file), and with ``--lag`` the longest gap
its event loop left between two 1 ms ticks (how long a disk read blocked it).

Variants (:data:`VARIANTS`):

* ``trio-read``: plain trio, the baseline: the cached file read in the event
  loop into a reused 1 MiB buffer (``os.preadv``), then ``send_all``;
* ``asyncio-sendfile``: asyncio's ``loop.sendfile(transport, file)``;
* ``bufwriter``: ``write_file(file)`` then ``flush()``: ``sendfile(2)`` in the
  event loop;
* ``bufwriter-thread``: ``write_file(file, thread=True)``: the file read
  ahead in a worker thread, then ``sendfile(2)``;
* ``raw-sendall``: a blocking socket's ``sendall`` of 1 MiB ``bytes``, the limit;
* ``bufwriter-bytes``: ``write(chunk); await drain()`` of 1 MiB ``bytes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from trio_bufwriter import open_buffered_writer

CHUNK = 1024 * 1024
#: The seed of the 1 MiB chunk the file repeats (and the bytes variants send).
SEED = 1945

VARIANTS = (
    "trio-read",
    "asyncio-sendfile",
    "bufwriter",
    "bufwriter-thread",
    "raw-sendall",
    "bufwriter-bytes",
)


def chunk() -> bytes:
    """The 1 MiB the benchmark's file repeats."""
    return random.Random(SEED).randbytes(CHUNK)


class Usage:
    """The process's CPU time between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self.before: resource.struct_rusage | None = None
        self.after: resource.struct_rusage | None = None

    def start(self) -> None:
        self.before = resource.getrusage(resource.RUSAGE_SELF)

    def stop(self) -> None:
        self.after = resource.getrusage(resource.RUSAGE_SELF)

    def seconds(self) -> tuple[float, float]:
        """(user, system) seconds."""
        assert self.before is not None
        assert self.after is not None
        return (
            self.after.ru_utime - self.before.ru_utime,
            self.after.ru_stime - self.before.ru_stime,
        )


USAGE = Usage()


class Lag:
    """The longest gap between the ticks of a 1 ms timer in an event loop."""

    def __init__(self) -> None:
        self.worst = 0.0

    def tick(self, last: float) -> float:
        now = time.perf_counter()
        self.worst = max(self.worst, now - last)
        return now

    async def trio_ticker(self) -> None:
        last = time.perf_counter()
        while True:
            await trio.sleep(0.001)
            last = self.tick(last)

    async def asyncio_ticker(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            last = self.tick(last)


async def _trio_transfer(
    port: int, send: Callable[[trio.SocketStream], Awaitable[None]], lag: Lag | None
) -> None:
    USAGE.start()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with trio.open_nursery() as nursery:
        if lag is not None:
            nursery.start_soon(lag.trio_ticker)
        await send(stream)
        nursery.cancel_scope.cancel()
    USAGE.stop()


def run_variant(variant: str, path: Path, port: int, lag: Lag | None) -> None:
    """Send *path*'s bytes to 127.0.0.1:*port* the *variant* way, then close."""
    size = path.stat().st_size
    if variant == "raw-sendall":
        data = chunk()
        USAGE.start()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            for start in range(0, size, CHUNK):
                sock.sendall(data[: size - start])
        USAGE.stop()
        return
    if variant == "asyncio-sendfile":
        asyncio.run(_asyncio_sendfile(path, port, lag))
        return

    async def trio_read(stream: trio.SocketStream) -> None:
        buffer = bytearray(CHUNK)
        with path.open("rb") as file, memoryview(buffer) as view:
            fd = file.fileno()
            offset = 0
            while offset < size:
                got = os.preadv(fd, [view], offset)
                if not got:
                    raise RuntimeError("the file ended early")
                await stream.send_all(view[:got])
                offset += got
        await stream.aclose()

    async def bufwriter(stream: trio.SocketStream) -> None:
        async with open_buffered_writer(stream) as writer:
            with path.open("rb") as file:
                writer.write_file(file, thread=variant == "bufwriter-thread")
            await writer.flush()

    async def bufwriter_bytes(stream: trio.SocketStream) -> None:
        data = chunk()
        async with open_buffered_writer(stream) as writer:
            for start in range(0, size, CHUNK):
                writer.write(data[: size - start])
                await writer.drain()
            await writer.flush()

    senders = {
        "trio-read": trio_read,
        "bufwriter": bufwriter,
        "bufwriter-thread": bufwriter,
        "bufwriter-bytes": bufwriter_bytes,
    }
    trio.run(_trio_transfer, port, senders[variant], lag)


async def _asyncio_sendfile(path: Path, port: int, lag: Lag | None) -> None:
    ticker = None if lag is None else asyncio.ensure_future(lag.asyncio_ticker())
    USAGE.start()
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    with path.open("rb") as file:
        await asyncio.get_running_loop().sendfile(writer.transport, file)
    writer.close()
    await writer.wait_closed()
    USAGE.stop()
    if ticker is not None:
        ticker.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lag", action="store_true", help="measure the event loop's gaps")
    args = parser.parse_args()
    lag = Lag() if args.lag and args.variant != "raw-sendall" else None
    run_variant(args.variant, args.file, args.port, lag)
    user, system = USAGE.seconds()
    result = {
        "user": user,
        "sys": system,
        "lag_ms": None if lag is None else lag.worst * 1000,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
