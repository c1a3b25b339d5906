"""``python -m benchmarks latest``: staleness and memory for a slow client, FIFO against conflated.

One trio process serves loopback TCP clients from a
:class:`~trio_bufwriter.Broadcaster`: a paced publisher calls
``broadcast_latest(key, frame)`` for K keys in turn at R updates a second.
Every frame carries its key, its sequence number for that key and its
publication time.  Three phases, each with connections of its own and the
same producer rate:

* ``fast only``: N fast clients, plain FIFO writers;
* ``fifo``: the same plus one slow client (it reads a few KiB, then
  sleeps), every writer plain FIFO;
* ``conflated``: the same, every writer behind a
  :class:`~trio_bufwriter.ConflatingWriter`.

For the slow client it reports the age of the updates it receives (p50,
p99, max: receipt time minus publication time, while the publisher runs)
and what the server held for it at most (writer plus frames waiting); for
the fast clients, the updates a second they received, against ``fast
only``.  The clients are trio tasks in the same process (their reads cost
the server's CPU too), so the figures are for comparing the modes, not for
absolute rates.

Verdicts: correctness only (the exit status): every client gets each key's
updates in order, untorn, and ends with the last value of every key; FIFO
clients get every update, and for a conflating one every update is either
delivered or superseded; the conflating slow client's memory stays within
``keys x frame + high_water + frame``.  Staleness and throughput are
reported, never judged.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from dataclasses import dataclass, field
from functools import partial
from typing import TextIO

import trio

from trio_bufwriter import (
    Broadcaster,
    BufferedStream,
    ConflatingWriter,
    open_buffered_stream,
    open_conflating_writer,
)
from trio_bufwriter._cli import positive_float, positive_int

from .fanout import peak_rss_bytes, reset_peak_rss

#: key, sequence number (per key), publication time; padded to --frame-size.
_HEAD = struct.Struct("!IQd")
HIGH_WATER = 16 * 1024
NOTSENT_LOWAT = 16 * 1024
MAX_BUFFER = 256 * 1024 * 1024
CLIENT_RCVBUF = 16 * 1024
_TICK = 0.005
_PHASES = (("fast only", False, False), ("fifo", True, False), ("conflated", True, True))


@dataclass
class Client:
    """What one client received."""

    slow: bool
    frames: int = 0
    bytes: int = 0
    ages: list[float] = field(default_factory=list)
    last: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: (trio time, frames received) when the publisher started and stopped.
    marks: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Phase:
    """One phase's measurements."""

    name: str
    slow: bool
    conflate: bool
    published: int = 0
    seconds: float = 0.0
    last: dict[int, int] = field(default_factory=dict)
    clients: list[Client] = field(default_factory=list)
    slow_held: int = 0
    slow_writer_peak: int = 0
    slow_pending_peak: int = 0
    slow_superseded: int = 0
    rss: int = 0
    problems: list[str] = field(default_factory=list)

    def fast_rate(self) -> float:
        """The fast clients' mean received updates a second, while publishing."""
        rates = [
            (c.marks[1][1] - c.marks[0][1]) / max(1e-9, c.marks[1][0] - c.marks[0][0])
            for c in self.clients
            if not c.slow and len(c.marks) == 2
        ]
        return sum(rates) / len(rates) if rates else 0.0

    def slow_client(self) -> Client | None:
        return next((c for c in self.clients if c.slow), None)


def percentile(values: list[float], share: float) -> float:
    """The *share* (0..1) percentile of *values*, nearest rank; 0.0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class _Options:
    keys: int
    rate: float
    seconds: float
    clients: int
    frame_size: int
    slow_read: int
    slow_pause: float


class _Server:
    def __init__(self, conflate: bool, keys: int) -> None:
        self.conflate = conflate
        self.keys = keys
        self.hub = Broadcaster()
        self.done = trio.Event()
        self.connected = 0
        self.changed = trio.Event()
        self.slow: tuple[BufferedStream, ConflatingWriter | None] | None = None

    async def handle(self, sock: trio.SocketStream) -> None:
        async with open_buffered_stream(
            sock,
            high_water=HIGH_WATER,
            notsent_lowat=NOTSENT_LOWAT,
            max_buffer=MAX_BUFFER,
            overflow="abort",
        ) as stream:
            if self.conflate:
                async with open_conflating_writer(stream, max_keys=self.keys) as latest:
                    await self._serve(stream, latest)
            else:
                await self._serve(stream, None)

    async def _serve(self, stream: BufferedStream, latest: ConflatingWriter | None) -> None:
        if await stream.receive_some(1) == b"S":
            self.slow = (stream, latest)
        self.hub.add(stream if latest is None else latest)
        self.connected += 1
        self.changed.set()
        await self.done.wait()


async def _client(
    port: int, client: Client, options: _Options, publishing: list[bool], done: trio.Event
) -> None:
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
    await sock.connect(("127.0.0.1", port))
    size = options.frame_size
    carry = b""
    async with trio.SocketStream(sock) as stream:
        await stream.send_all(b"S" if client.slow else b"F")
        while True:
            slow = client.slow and not done.is_set()
            data = await stream.receive_some(options.slow_read if slow else 256 * 1024)
            if not data:
                break
            now = trio.current_time()
            client.bytes += len(data)
            data = carry + data
            whole = len(data) - len(data) % size
            for start in range(0, whole, size):
                key, seq, published = _HEAD.unpack_from(data, start)
                if data[start + _HEAD.size : start + size].strip(b"\x00"):
                    client.problems.append(f"a torn frame at byte {client.bytes - len(data)}")
                if seq <= client.last.get(key, 0):
                    client.problems.append(f"key {key}: update {seq} after {client.last[key]}")
                client.last[key] = seq
                client.frames += 1
                if publishing[0]:
                    client.ages.append(now - published)
            carry = data[whole:]
            if slow:
                await trio.sleep(options.slow_pause)
    if carry:
        client.problems.append(f"ended with {len(carry)} bytes of a torn frame")


async def _run_phase(phase: Phase, options: _Options) -> None:
    server = _Server(phase.conflate, options.keys)
    done = trio.Event()
    publishing = [False]
    reset_peak_rss()
    rss_start = peak_rss_bytes() or 0
    pad = bytes(options.frame_size - _HEAD.size)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as clients:
            for n in range(options.clients + phase.slow):
                client = Client(slow=phase.slow and n == options.clients)
                phase.clients.append(client)
                clients.start_soon(_client, port, client, options, publishing, done)
            while server.connected < len(phase.clients):
                await server.changed.wait()
                server.changed = trio.Event()
            seq = [0] * options.keys
            key = 0
            start = trio.current_time()
            publishing[0] = True
            for client in phase.clients:
                client.marks.append((start, client.frames))
            while (now := trio.current_time()) - start < options.seconds:
                due = int((now - start + _TICK) * options.rate) - phase.published
                for _ in range(max(0, due)):
                    seq[key] += 1
                    frame = _HEAD.pack(key, seq[key], trio.current_time()) + pad
                    for _, error in server.hub.broadcast_latest(key, frame):
                        phase.problems.append(f"a subscriber was dropped: {error!r}")
                    phase.published += 1
                    key = (key + 1) % options.keys
                await trio.sleep(_TICK)
            end = trio.current_time()
            for client in phase.clients:
                client.marks.append((end, client.frames))
            publishing[0] = False
            phase.seconds = end - start
            phase.last = {k: s for k, s in enumerate(seq) if s}
            server.done.set()
            done.set()
        nursery.cancel_scope.cancel()
    phase.rss = max(0, (peak_rss_bytes() or 0) - rss_start)
    if server.slow is not None:
        stream, latest = server.slow
        phase.slow_writer_peak = stream.statistics().peak_buffered
        if latest is not None:
            stats = latest.statistics()
            phase.slow_pending_peak = stats.peak_pending_bytes
            phase.slow_superseded = stats.frames_superseded
        phase.slow_held = phase.slow_writer_peak + phase.slow_pending_peak
    _verify(phase, options)


def _verify(phase: Phase, options: _Options) -> None:
    for n, client in enumerate(phase.clients):
        who = "slow client" if client.slow else f"client {n}"
        phase.problems += [f"{who}: {problem}" for problem in client.problems[:5]]
        if client.last != phase.last:
            missing = sum(1 for k, s in phase.last.items() if client.last.get(k) != s)
            phase.problems.append(f"{who}: {missing} keys without their last value")
        if not phase.conflate and client.frames != phase.published:
            phase.problems.append(f"{who}: {client.frames:,} of {phase.published:,} updates")
    slow = phase.slow_client()
    if phase.conflate and slow is not None:
        if slow.frames + phase.slow_superseded != phase.published:
            phase.problems.append(
                f"slow client: {slow.frames:,} received + {phase.slow_superseded:,} "
                f"superseded != {phase.published:,} published"
            )
        bound = options.keys * options.frame_size
        if phase.slow_pending_peak > bound:
            phase.problems.append(f"pending peak {phase.slow_pending_peak:,} B > {bound:,} B")
        if phase.slow_writer_peak > HIGH_WATER + options.frame_size:
            phase.problems.append(
                f"writer peak {phase.slow_writer_peak:,} B > high water + one frame"
            )


def _report(phases: list[Phase], options: _Options, out: TextIO) -> bool:
    base = phases[0].fast_rate() or 1.0
    print(
        f"\n{'phase':<10} {'slow got':>9} {'age p50':>9} {'age p99':>9} {'age max':>9} "
        f"{'held peak':>13} {'fast upd/s':>11} {'vs alone':>8} {'RSS peak+':>10}",
        file=out,
    )
    for phase in phases:
        slow = phase.slow_client()
        ages = slow.ages if slow is not None else []
        got = f"{slow.frames:,}" if slow is not None else "-"
        print(
            f"{phase.name:<10} {got:>9} {percentile(ages, 0.5) * 1e3:>7.1f}ms "
            f"{percentile(ages, 0.99) * 1e3:>7.1f}ms {max(ages, default=0.0) * 1e3:>7.1f}ms "
            f"{phase.slow_held:>11,} B {phase.fast_rate():>11,.0f} "
            f"{phase.fast_rate() / base:>8.3f} {phase.rss / 2**20:>7.1f}MiB",
            file=out,
        )
    bound = options.keys * options.frame_size + HIGH_WATER + options.frame_size
    problems = [f"{phase.name}: {problem}" for phase in phases for problem in phase.problems]
    ok = not problems
    print(
        f"memory bound for the conflating slow client: {options.keys} keys x "
        f"{options.frame_size} B + high water {HIGH_WATER:,} B + one frame = {bound:,} B",
        file=out,
    )
    print(
        "delivery: in order, untorn, the last value of every key; FIFO gets every "
        "update, conflated every update delivered or superseded; memory within "
        f"its bound: {'PASS' if ok else 'FAIL'}",
        file=out,
    )
    for problem in problems[:20]:
        print(f"  {problem}", file=out)
    print("staleness and throughput are reported, not judged", file=out)
    print(f"result: {'PASS' if ok else 'FAIL'}", file=out, flush=True)
    return ok


def run_latest(
    keys: int = 300,
    rate: float = 20_000,
    seconds: float = 5.0,
    clients: int = 20,
    frame_size: int = 64,
    slow_read: int = 4096,
    slow_pause: float = 0.01,
    out: TextIO | None = None,
) -> int:
    """Run the three phases, print the table; return 0 if every correctness
    verdict passed, else 1."""
    out = sys.stdout if out is None else out
    if frame_size < _HEAD.size:
        raise ValueError(f"frame_size must be at least {_HEAD.size}")
    options = _Options(keys, rate, seconds, clients, frame_size, slow_read, slow_pause)
    print(
        f"trio_bufwriter latest: {keys} keys, {rate:,g} updates/s of {frame_size} B for "
        f"{seconds:g} s per phase; {clients} fast clients, 1 slow one reading "
        f"{slow_read:,} B every {slow_pause * 1e3:g} ms; high_water {HIGH_WATER:,} B, "
        f"notsent_lowat {NOTSENT_LOWAT:,} B, client SO_RCVBUF {CLIENT_RCVBUF:,} B",
        file=out,
        flush=True,
    )
    phases = [Phase(name, slow, conflate) for name, slow, conflate in _PHASES]
    for phase in phases:
        trio.run(_run_phase, phase, options)
        print(f"  {phase.name}: {phase.published:,} updates published", file=out, flush=True)
    return 0 if _report(phases, options, out) else 1


def _run_command(args: argparse.Namespace) -> int:
    return run_latest(
        args.keys,
        args.rate,
        args.seconds,
        args.clients,
        args.frame_size,
        args.slow_read,
        args.slow_pause,
    )


def add_latest_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``latest`` command."""
    parser = commands.add_parser(
        "latest",
        help="staleness and memory for a slow client: FIFO against conflated",
        description=(
            "Publish keyed updates at a fixed rate to N fast loopback clients and one "
            "slow one, with FIFO writers then with ConflatingWriter, and report the age "
            "of the slow client's data, the server's memory for it, and the fast "
            "clients' throughput.  Fails only on correctness."
        ),
    )
    parser.add_argument("--keys", type=positive_int, default=300, metavar="K")
    parser.add_argument("--rate", type=positive_float, default=20_000, metavar="UPDATES")
    parser.add_argument("--seconds", type=positive_float, default=5.0, metavar="S")
    parser.add_argument("--clients", type=positive_int, default=20, metavar="N")
    parser.add_argument("--frame-size", type=positive_int, default=64, metavar="BYTES")
    parser.add_argument("--slow-read", type=positive_int, default=4096, metavar="BYTES")
    parser.add_argument("--slow-pause", type=positive_float, default=0.01, metavar="S")
    parser.set_defaults(run=_run_command)
