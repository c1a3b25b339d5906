"""``python -m benchmarks reads``: the reads for protocol code, against asyncio's and anyio's.

The same bytes, read the same way, in one process, by three readers:

* ours: :class:`~trio_bufwriter.BufferedReader` (``receive_line``,
  ``receive_exactly``), under trio;
* ours, decoding: the same reader's ``receive_frames``, with
  ``FrameReader.read_line`` or a length-prefix decoder (one await per
  receive rather than per read; asyncio and anyio have no such thing, so
  its peers are their awaited reads);
* asyncio: :class:`asyncio.StreamReader` (``readuntil``, ``readexactly``);
* anyio: ``anyio.streams.buffered.BufferedByteReceiveStream``
  (``receive_until``, ``receive_exactly``) on anyio's trio backend.

Each reads from an in-memory source that hands out the workload's chunks in
order, one per receive, with one trip through the scheduler per receive
(the way a socket that always has data behaves): a trio
:class:`~trio.abc.ReceiveStream` for ours, an anyio ``ByteReceiveStream``
for anyio, and for asyncio a ``StreamReader`` whose wait for data feeds the
next chunk after an ``asyncio.sleep(0)`` (its private ``_wait_for_data``,
overridden: the only way to hand it a chunk exactly when it asks).  A
source honours the size asked for: anyio's ``receive_exactly`` asks for the
bytes it lacks, and gets no more.

Workloads (:data:`WORKLOADS`):

* ``lines``: 100,000 lines of 50 bytes (``\\n`` included), in 64 KiB chunks;
* ``frames``: 100,000 frames of a 4-byte big-endian length and 1 to 100
  bytes (seeded), in 64 KiB chunks: two ``receive_exactly`` per frame;
* ``big-line``: 8 lines of 1 MiB, in 1,500-byte pieces (a TCP segment
  each): the case where a reader that copies or rescans what it already
  holds goes quadratic.  (ns/read there is per 1 MiB line.)

With ``--no-yield`` the sources skip that trip: what is left is the
readers' own cost, without the event loops' (which decides the
``big-line`` row: 700 receives, and a trip through trio's scheduler costs
more than one through asyncio's).

Only the reading is timed (not starting the event loop).  Every reader's
results are checked against the workload's.  The rounds are interleaved
(the order of the readers rotated every round); the report gives median
times, ns per read, and ``other / ours`` time ratios (above 1: ours is
faster).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import TextIO

import anyio
import anyio.abc
import anyio.lowlevel
import trio
from anyio.streams.buffered import BufferedByteReceiveStream

from trio_bufwriter import BufferedReader, FrameReader
from trio_bufwriter._cli import positive_int

from .bench._config import KiB, MiB
from .bench._report import align
from .bench._stats import median, rotated

OURS = "trio_bufwriter"
OURS_FRAMES = "trio_bufwriter frames"
ASYNCIO = "asyncio StreamReader"
ANYIO = "anyio Buffered (trio)"
#: The readers, in the order of the first round (later rounds rotate it).
READERS = (OURS, OURS_FRAMES, ASYNCIO, ANYIO)

DEFAULT_ROUNDS = 5


@dataclass(frozen=True)
class Workload:
    """Chunks to feed, how to read them, and what the reads must return."""

    name: str
    description: str
    chunks: list[bytes]
    #: ``"lines"``: read lines until the end; ``"frames"``: length-prefixed frames.
    kind: str
    #: What the reads return, in order (lines without ``\n``; frames' payloads).
    expected: list[bytes]
    #: The longest line to allow (the readers' limit).
    max_line: int = 64 * KiB


def _cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def lines_workload(count: int = 100_000, length: int = 50, chunk: int = 64 * KiB) -> Workload:
    lines = [b"%0*d" % (length - 1, i) for i in range(count)]
    data = b"".join(line + b"\n" for line in lines)
    return Workload(
        "lines",
        f"{count:,} lines of {length} B in {chunk // KiB} KiB chunks",
        _cut(data, chunk),
        "lines",
        lines,
    )


def frames_workload(count: int = 100_000, chunk: int = 64 * KiB, seed: int = 14) -> Workload:
    rng = random.Random(seed)
    payloads = [rng.randbytes(rng.randint(1, 100)) for _ in range(count)]
    data = b"".join(struct.pack(">I", len(payload)) + payload for payload in payloads)
    return Workload(
        "frames",
        f"{count:,} length-prefixed frames (1-100 B) in {chunk // KiB} KiB chunks",
        _cut(data, chunk),
        "frames",
        payloads,
    )


def big_line_workload(size: int = MiB, count: int = 8, piece: int = 1500) -> Workload:
    rng = random.Random(1)
    lines = [bytes(rng.choices(b"abcdefgh", k=size)) for _ in range(count)]
    return Workload(
        "big-line",
        f"{count} lines of {size // KiB} KiB, in {piece:,}-byte pieces",
        _cut(b"".join(line + b"\n" for line in lines), piece),
        "lines",
        lines,
        max_line=2 * size,
    )


#: name: the function that builds the workload.
WORKLOADS: dict[str, Callable[[], Workload]] = {
    "lines": lines_workload,
    "frames": frames_workload,
    "big-line": big_line_workload,
}


# ----------------------------------------------------------------------
# The sources


class _Chunks:
    """The chunks in order, each cut to the size asked for."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = list(reversed(chunks))

    def next(self, max_bytes: int | None) -> bytes:
        if not self._chunks:
            return b""
        chunk = self._chunks.pop()
        if max_bytes is not None and len(chunk) > max_bytes:
            self._chunks.append(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk


class _TrioSource(trio.abc.ReceiveStream):
    def __init__(self, chunks: Sequence[bytes], yields: bool) -> None:
        self._chunks = _Chunks(chunks)
        self._yields = yields

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._yields:
            await trio.lowlevel.checkpoint()
        return self._chunks.next(max_bytes)

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


class _AnyioSource(anyio.abc.ByteReceiveStream):
    def __init__(self, chunks: Sequence[bytes], yields: bool) -> None:
        self._chunks = _Chunks(chunks)
        self._yields = yields

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._yields:
            await anyio.lowlevel.checkpoint()
        chunk = self._chunks.next(max_bytes)
        if not chunk:
            raise anyio.EndOfStream
        return chunk

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()


class _FedStreamReader(asyncio.StreamReader):
    """A StreamReader fed the next chunk whenever it waits for data."""

    def __init__(self, chunks: Sequence[bytes], limit: int, yields: bool) -> None:
        super().__init__(limit=limit)
        self._chunks = _Chunks(chunks)
        self._yields = yields

    async def _wait_for_data(self, func_name: str) -> None:
        if self._yields:
            await asyncio.sleep(0)
        chunk = self._chunks.next(None)
        if chunk:
            self.feed_data(chunk)
        else:
            self.feed_eof()


# ----------------------------------------------------------------------
# The readers: each returns (seconds, results)


async def _ours(workload: Workload, yields: bool) -> tuple[float, list[bytes]]:
    reader = BufferedReader(_TrioSource(workload.chunks, yields))
    results = []
    count = len(workload.expected)
    start = perf_counter()
    if workload.kind == "lines":
        receive_line = reader.receive_line
        limit = workload.max_line
        for _ in range(count):
            results.append(await receive_line(limit))
    else:
        receive_exactly = reader.receive_exactly
        for _ in range(count):
            (size,) = struct.unpack(">I", await receive_exactly(4))
            results.append(await receive_exactly(size))
    seconds = perf_counter() - start
    await reader.aclose()
    return seconds, results


def _length_prefixed(frame: FrameReader) -> bytes:
    """A frame: a 4-byte big-endian length, then that many bytes."""
    (size,) = struct.unpack(">I", frame.read_exactly(4))
    return frame.read_exactly(size)


async def _ours_frames(workload: Workload, yields: bool) -> tuple[float, list[bytes]]:
    reader = BufferedReader(_TrioSource(workload.chunks, yields))
    results: list[bytes] = []
    if workload.kind == "lines":
        decode: Callable[[FrameReader], bytes] = partial(
            FrameReader.read_line, max_bytes=workload.max_line
        )
    else:
        decode = _length_prefixed
    receive_frames = reader.receive_frames
    start = perf_counter()
    while frames := await receive_frames(decode):
        results += frames
    seconds = perf_counter() - start
    await reader.aclose()
    return seconds, results


async def _asyncio(workload: Workload, yields: bool) -> tuple[float, list[bytes]]:
    reader = _FedStreamReader(workload.chunks, workload.max_line, yields)
    results = []
    count = len(workload.expected)
    start = perf_counter()
    if workload.kind == "lines":
        readuntil = reader.readuntil
        for _ in range(count):
            results.append((await readuntil(b"\n"))[:-1])
    else:
        readexactly = reader.readexactly
        for _ in range(count):
            (size,) = struct.unpack(">I", await readexactly(4))
            results.append(await readexactly(size))
    return perf_counter() - start, results


async def _anyio(workload: Workload, yields: bool) -> tuple[float, list[bytes]]:
    reader = BufferedByteReceiveStream(_AnyioSource(workload.chunks, yields))
    results = []
    count = len(workload.expected)
    start = perf_counter()
    if workload.kind == "lines":
        receive_until = reader.receive_until
        limit = workload.max_line
        for _ in range(count):
            results.append(await receive_until(b"\n", limit))
    else:
        receive_exactly = reader.receive_exactly
        for _ in range(count):
            (size,) = struct.unpack(">I", await receive_exactly(4))
            results.append(await receive_exactly(size))
    seconds = perf_counter() - start
    await reader.aclose()
    return seconds, results


def run_reader(reader: str, workload: Workload, *, yields: bool = True) -> float:
    """Run *reader* on *workload* once; return the seconds its reads took.

    With *yields* false, the sources hand out chunks without a trip through
    the scheduler: what is left is the readers' own cost.

    Raises:
      AssertionError: it read something other than the workload's results.
    """
    if reader == OURS:
        seconds, results = trio.run(_ours, workload, yields)
    elif reader == OURS_FRAMES:
        seconds, results = trio.run(_ours_frames, workload, yields)
    elif reader == ASYNCIO:
        seconds, results = asyncio.run(_asyncio(workload, yields))
    else:
        seconds, results = anyio.run(_anyio, workload, yields, backend="trio")
    if results != workload.expected:
        raise AssertionError(f"{reader} read wrong results on {workload.name}")
    return seconds


# ----------------------------------------------------------------------
# The command


@dataclass
class ReadsResult:
    """Seconds per round, by workload and reader."""

    rounds: int
    yields: bool
    seconds: dict[str, dict[str, list[float]]]
    reads: dict[str, int]
    descriptions: dict[str, str]


def run_reads(
    workloads: Sequence[str] = tuple(WORKLOADS),
    *,
    rounds: int = DEFAULT_ROUNDS,
    yields: bool = True,
    out: TextIO | None = None,
) -> ReadsResult:
    """Measure every reader on every workload in *workloads*, in interleaved rounds.

    Prints the table to *out* (default: stdout) and returns what was measured.
    """
    out = sys.stdout if out is None else out
    built = {name: WORKLOADS[name]() for name in workloads}
    result = ReadsResult(
        rounds,
        yields,
        {name: {reader: [] for reader in READERS} for name in built},
        {name: len(w.expected) * (2 if w.kind == "frames" else 1) for name, w in built.items()},
        {name: w.description for name, w in built.items()},
    )
    for round_number in range(rounds):
        for name, workload in built.items():
            for reader in rotated(READERS, round_number):
                result.seconds[name][reader].append(run_reader(reader, workload, yields=yields))
    for line in report_lines(result):
        print(line, file=out)
    return result


def report_lines(result: ReadsResult) -> list[str]:
    """The table: median ms (and the rounds' spread, (max - min) / median), ns
    per read, and each reader's time over ours."""
    rows = [["workload", "reader", "median ms", "spread", "ns/read", "time / ours"]]
    for name, by_reader in result.seconds.items():
        ours = median(by_reader[OURS])
        for reader in READERS:
            seconds = median(by_reader[reader])
            rows.append(
                [
                    name if reader == READERS[0] else "",
                    reader,
                    f"{seconds * 1e3:.1f}",
                    f"{(max(by_reader[reader]) - min(by_reader[reader])) / seconds:.0%}",
                    f"{seconds * 1e9 / result.reads[name]:,.0f}",
                    f"{seconds / ours:.2f}x",
                ]
            )
    source = "one scheduler trip per receive" if result.yields else "sources never yield"
    lines = [f"reads: median of {result.rounds} interleaved rounds ({source})"]
    lines += [f"  {name}: {text}" for name, text in result.descriptions.items()]
    return [*lines, "", *align(rows, left=2)]


def _workload_list(text: str) -> tuple[str, ...]:
    chosen = [part.strip() for part in text.split(",")]
    unknown = [name for name in chosen if name not in WORKLOADS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown workload {', '.join(map(repr, unknown))}: choose from {','.join(WORKLOADS)}"
        )
    return tuple(chosen)


def _run(args: argparse.Namespace) -> int:
    run_reads(args.workloads, rounds=args.rounds, yields=not args.no_yield)
    return 0


def add_reads_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``reads`` command."""
    parser = commands.add_parser(
        "reads",
        help="receive_line/receive_exactly against asyncio's StreamReader and anyio's",
        description=(
            "Read the same in-memory chunks with trio_bufwriter's BufferedReader, "
            "asyncio's StreamReader and anyio's BufferedByteReceiveStream (trio "
            "backend), in interleaved rounds: lines, length-prefixed frames, and one "
            "1 MiB line in 1,500-byte pieces.  Prints median times and the ratios."
        ),
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=DEFAULT_ROUNDS,
        metavar="R",
        help="interleaved rounds (default: %(default)s)",
    )
    parser.add_argument(
        "--workloads",
        type=_workload_list,
        default=tuple(WORKLOADS),
        metavar="NAME,...",
        help=f"which workloads (default: {','.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--no-yield",
        action="store_true",
        help="sources hand out chunks without a trip through the scheduler: "
        "the readers' own cost, without the event loops'",
    )
    parser.set_defaults(run=_run)
