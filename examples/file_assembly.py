"""Assemble a file from pieces fetched concurrently from several peers.

Run it::

    python examples/file_assembly.py                       # 64 MiB of random data
    python examples/file_assembly.py --source big.iso --out copy.iso --connections 16

A few "peers" (trio TCP servers on loopback, in this same process) each
serve any byte range of a source file.  The protocol is one line per
request, ``b"offset length\\n"``, answered with exactly those bytes; peers
take a random moment to answer, so pieces come back in no particular order.

The client cuts the file into pieces, shuffles them into a work queue, and
runs ``--connections`` worker tasks, spread over the peers, each fetching one
piece after another over its own connection.  Every chunk a worker receives
goes straight to the output file with ``writer.write_at(offset, chunk)``,
then ``await writer.drain()`` once per piece:

* ``write_at`` never blocks and never copies a ``bytes`` chunk; the writer's
  one owner task sorts what is pending, merges neighbouring ranges and
  writes each batch with ``pwritev`` in one worker-thread hop, instead of a
  thread hop (or a seek + write race) per chunk;
* ``drain()`` holds the workers back while more than the writer's high
  water is waiting to be written, so memory stays bounded however fast the
  network is;
* leaving ``async with open_positional_writer(...)`` flushes everything and
  closes the file.

It prints a progress line every ``--progress`` seconds, then checks that the
SHA-256 of the result equals the source's; exit status 0 if it does, 1 if not.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import mmap
import os
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter
from typing import TextIO

import trio

from trio_bufwriter import PositionalWriter, open_positional_writer

KiB = 1024
MiB = 1024 * KiB
#: The longest request line a peer accepts.
MAX_REQUEST = 64


class FetchError(Exception):
    """A peer closed the connection or answered with too few bytes."""


# ----------------------------------------------------------------------
# The peers


async def read_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> bytes | None:
    """The next line from *stream* (without its newline), or None at a clean end.

    *buffer* holds what was received after the line, for the next call.
    """
    while (end := buffer.find(b"\n")) < 0:
        if len(buffer) > MAX_REQUEST:
            raise ValueError("request line too long")
        data = await stream.receive_some()
        if not data:
            if buffer:
                raise ValueError("connection ended inside a request")
            return None
        buffer += data
    line = bytes(buffer[:end])
    del buffer[: end + 1]
    return line


@dataclass
class Peer:
    """Serves byte ranges of *data*, each after a random delay of up to *max_delay* s."""

    name: str
    data: mmap.mmap | bytes
    max_delay: float
    rng: random.Random
    pieces_served: int = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        """Answer ``offset length`` requests until the client hangs up (or talks nonsense)."""
        buffer = bytearray()
        async with stream:
            try:
                while (line := await read_line(stream, buffer)) is not None:
                    offset_text, length_text = line.split()
                    offset, length = int(offset_text), int(length_text)
                    if offset < 0 or length < 1 or offset + length > len(self.data):
                        raise ValueError(f"range {offset}+{length} outside the file")
                    if self.max_delay:
                        await trio.sleep(self.rng.uniform(0, self.max_delay))
                    await stream.send_all(self.data[offset : offset + length])
                    self.pieces_served += 1
            except (ValueError, trio.BrokenResourceError):
                return  # a bad request or a client gone: hang up


async def start_peer(nursery: trio.Nursery, peer: Peer) -> int:
    """Serve *peer* on a free loopback port, in *nursery*; return the port."""
    listeners: list[trio.SocketListener] = await nursery.start(
        partial(trio.serve_tcp, peer.handle, 0, host="127.0.0.1")
    )
    port: int = listeners[0].socket.getsockname()[1]
    return port


# ----------------------------------------------------------------------
# The client


@dataclass
class Progress:
    """How far the download is; printed every few tenths of a second."""

    total_pieces: int
    total_bytes: int
    started: float = field(default_factory=perf_counter)
    pieces: int = 0
    bytes: int = 0

    def line(self, writer: PositionalWriter) -> str:
        elapsed = perf_counter() - self.started
        rate = self.bytes / elapsed / 1e6 if elapsed > 0 else 0.0
        return (
            f"{self.pieces:>7,}/{self.total_pieces:,} pieces  "
            f"{self.bytes / MiB:8.1f}/{self.total_bytes / MiB:.1f} MiB  "
            f"{rate:8.1f} MB/s  pending {writer.pending / MiB:5.1f} MiB  "
            f"[{elapsed:5.1f} s]"
        )


async def fetch_piece(
    stream: trio.SocketStream, writer: PositionalWriter, offset: int, length: int
) -> None:
    """Ask for *length* bytes at *offset*; write each chunk received at its place."""
    await stream.send_all(b"%d %d\n" % (offset, length))
    received = 0
    while received < length:
        chunk = await stream.receive_some(length - received)
        if not chunk:
            raise FetchError(f"the peer hung up {length - received} bytes short at {offset}")
        # A bytes chunk is kept by reference until it is written: no copy here.
        writer.write_at(offset + received, chunk)
        received += len(chunk)
    # Once per piece: wait here while the writer holds more than its high water.
    await writer.drain()


async def worker(
    port: int,
    queue: trio.MemoryReceiveChannel[int],
    writer: PositionalWriter,
    piece: int,
    size: int,
    progress: Progress,
) -> None:
    """Fetch pieces from the peer on *port* until the queue is empty."""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        async for index in queue:
            offset = index * piece
            length = min(piece, size - offset)
            await fetch_piece(stream, writer, offset, length)
            progress.pieces += 1
            progress.bytes += length


async def report_progress(
    progress: Progress, writer: PositionalWriter, interval: float, out: TextIO
) -> None:
    """Print a progress line every *interval* seconds, until cancelled."""
    while True:
        await trio.sleep(interval)
        print(progress.line(writer), file=out, flush=True)


def sha256_of(path: str) -> str:
    """The SHA-256 of the file at *path*, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def map_file(path: str) -> mmap.mmap:
    """The file at *path*, mapped read-only (the peers slice it)."""
    with open(path, "rb") as file:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


@dataclass(frozen=True)
class Settings:
    """How to fetch: the command line's options, less the paths."""

    piece: int = 16 * KiB
    peers: int = 4
    connections: int = 8
    #: Each peer waits up to this long (seconds, at random) before each answer.
    max_delay: float = 0.001
    #: Print a progress line this often (seconds).
    progress: float = 0.5
    #: Seeds the order of the pieces and the peers' delays (None: random).
    seed: int | None = None


async def assemble(
    source: str,
    out_path: str,
    settings: Settings,
    out: TextIO,
    *,
    expected_sha256: str | None = None,
) -> bool:
    """Fetch *source* from loopback peers into *out_path*; return whether the
    result's SHA-256 equals *expected_sha256* (default: the source's)."""
    size = os.stat(source).st_size
    if size == 0:
        raise ValueError("the source file is empty")
    if expected_sha256 is None:
        expected_sha256 = await trio.to_thread.run_sync(sha256_of, source)
    rng = random.Random(settings.seed)
    piece_count = math.ceil(size / settings.piece)
    order = list(range(piece_count))
    rng.shuffle(order)
    progress = Progress(piece_count, size)
    print(
        f"fetching {size:,} bytes as {piece_count:,} pieces of {settings.piece:,} B from "
        f"{settings.peers} peers over {settings.connections} connections into {out_path}",
        file=out,
        flush=True,
    )
    with map_file(source) as data:
        peers = [
            Peer(f"peer{i}", data, settings.max_delay, random.Random(rng.random()))
            for i in range(settings.peers)
        ]
        async with trio.open_nursery() as peer_nursery:
            ports = [await start_peer(peer_nursery, peer) for peer in peers]
            send, receive = trio.open_memory_channel[int](math.inf)
            for index in order:
                send.send_nowait(index)
            send.close()
            progress.started = perf_counter()
            # Leaving this block flushes what is still pending and closes the file.
            async with (
                open_positional_writer(out_path, truncate=True, preallocate=size) as writer,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(report_progress, progress, writer, settings.progress, out)
                async with trio.open_nursery() as workers:
                    for i in range(settings.connections):
                        port = ports[i % len(ports)]
                        workers.start_soon(
                            worker, port, receive, writer, settings.piece, size, progress
                        )
                nursery.cancel_scope.cancel()
            peer_nursery.cancel_scope.cancel()
    stats = writer.statistics()
    print(progress.line(writer), file=out, flush=True)
    served = ", ".join(f"{peer.name} {peer.pieces_served}" for peer in peers)
    print(
        f"done in {perf_counter() - progress.started:.2f} s; pieces served: {served}\n"
        f"writer: {stats.write_at_calls:,} write_at calls, {stats.bytes_written:,} bytes "
        f"in {stats.runs:,} runs, {stats.syscalls:,} syscalls, {stats.thread_hops:,} thread "
        f"hops, peak pending {stats.peak_pending:,} B",
        file=out,
        flush=True,
    )
    result_sha256 = await trio.to_thread.run_sync(sha256_of, out_path)
    if result_sha256 == expected_sha256:
        print(f"SHA-256 ok: {result_sha256}", file=out, flush=True)
        return True
    print(
        f"SHA-256 MISMATCH: got {result_sha256}, expected {expected_sha256}", file=out, flush=True
    )
    return False


# ----------------------------------------------------------------------
# The command line


def write_random_file(path: str, size: int) -> None:
    """Fill a new file at *path* with *size* random bytes."""
    with open(path, "wb") as file:
        for start in range(0, size, MiB):
            file.write(os.urandom(min(MiB, size - start)))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fetch a file's pieces from loopback peers and assemble it with "
        "open_positional_writer."
    )
    parser.add_argument(
        "--size-mib",
        type=positive_int,
        default=64,
        metavar="MIB",
        help="size of the random source made when --source is not given (default: %(default)s)",
    )
    parser.add_argument("--piece-kib", type=positive_int, default=16, metavar="KIB")
    parser.add_argument("--peers", type=positive_int, default=4, metavar="N")
    parser.add_argument("--connections", type=positive_int, default=8, metavar="N")
    parser.add_argument(
        "--out", metavar="PATH", help="where to assemble the file (default: a temporary file)"
    )
    parser.add_argument(
        "--source", metavar="PATH", help="the file the peers serve (default: random bytes)"
    )
    parser.add_argument(
        "--max-delay-ms",
        type=non_negative_float,
        default=1.0,
        metavar="MS",
        help="each answer is delayed by up to this, at random (default: %(default)s)",
    )
    parser.add_argument(
        "--progress",
        type=positive_float,
        default=0.5,
        metavar="S",
        help="seconds between progress lines (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed the piece order and delays")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the example; return the exit status: 0 if the copy is exact, else 1."""
    args = parse(argv)
    out = sys.stdout if out is None else out
    settings = Settings(
        piece=args.piece_kib * KiB,
        peers=args.peers,
        connections=args.connections,
        max_delay=args.max_delay_ms / 1000,
        progress=args.progress,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="file-assembly-") as scratch:
        source = args.source
        if source is None:
            source = os.path.join(scratch, "source.bin")
            write_random_file(source, args.size_mib * MiB)
        out_path = args.out if args.out is not None else os.path.join(scratch, "assembled.bin")
        try:
            ok = trio.run(assemble, source, out_path, settings, out)
        except (OSError, ValueError) as exc:  # no such source, an empty one, ...
            print(f"error: {exc}", file=out, flush=True)
            return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
