"""A ticker server: latest value wins for a slow client.

Run it::

    python examples/ticker_server.py --keys 300 --rate 20000 --seconds 5

It publishes price updates for some hundreds of keys at a high rate to many
clients over loopback TCP, one of which reads slowly, twice: first with
plain FIFO writers, then with a :class:`~trio_bufwriter.ConflatingWriter` in
front of each client's writer.  For the slow client it prints the age of the
data it receives (now minus when the update was published) and what the
server held for it; for the fast ones, how many updates they received.

What it shows:

* Every connection is an ``open_buffered_stream(...)`` with a small
  ``high_water`` and ``notsent_lowat``, subscribed to one ``Broadcaster``,
  directly (FIFO) or through ``open_conflating_writer()``.  The publisher
  calls ``hub.broadcast_latest(key, frame)``: synchronous, never blocks.
* FIFO: the slow client receives every update, in order, and falls further
  behind every second; the server's buffer for it grows until
  ``max_buffer``.  Conflated: it receives, for each key, the newest update
  when it can take anything; its data stays fresh and the server holds at
  most one frame per key for it.
* Conflation only replaces what is still in the server process.  What the
  kernel already holds (the server's socket, up to ``notsent_lowat``, and
  the client's receive buffer) is FIFO, so those are kept small here.

Each frame is 32 bytes: key, sequence number (per key), publication time.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from collections.abc import Sequence
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

#: key, sequence number (per key), publication time (trio.current_time()).
FRAME = struct.Struct("!IQd12x")
#: The server's buffering per client: drain()'s high water (nobody drains
#: here, but the conflating writer feeds a writer only up to it), the
#: socket's unsent bytes, and a hard limit for the FIFO case.
HIGH_WATER = 4096
NOTSENT_LOWAT = 16 * 1024
MAX_BUFFER = 64 * 1024 * 1024
#: The clients' receive buffer (SO_RCVBUF): the kernel's FIFO on their side.
CLIENT_RCVBUF = 16 * 1024
#: The publisher's pacing tick.
TICK = 0.005


@dataclass
class ClientReport:
    """What one client received."""

    slow: bool
    frames: int = 0
    #: Age of each update at receipt, while the publisher was running.
    ages: list[float] = field(default_factory=list)
    #: The last sequence number seen per key.
    last: dict[int, int] = field(default_factory=dict)
    #: Updates received for a key older than (or the same as) one already seen.
    out_of_order: int = 0
    #: Bytes left over at end-of-file (a torn frame), or -1 if cut off.
    leftover: int = 0


@dataclass
class ModeResult:
    """One run: FIFO or conflated."""

    conflate: bool
    published: int = 0
    #: The last sequence number published per key.
    last: dict[int, int] = field(default_factory=dict)
    clients: list[ClientReport] = field(default_factory=list)
    #: The most bytes the server held for the slow client at once (writer
    #: plus frames waiting to be conflated).
    slow_peak_held: int = 0
    slow_superseded: int = 0
    #: The process's peak RSS during the run, above its RSS at the start
    #: (server and clients: they share the process).
    peak_rss: int = 0

    @property
    def slow(self) -> ClientReport:
        return next(c for c in self.clients if c.slow)

    def problems(self) -> list[str]:
        """What went wrong: an update out of order, a torn frame, a key
        whose last value a client never received."""
        found = []
        for n, client in enumerate(self.clients):
            who = "slow client" if client.slow else f"client {n}"
            if client.out_of_order:
                found.append(f"{who}: {client.out_of_order} updates out of order")
            if client.leftover:
                found.append(f"{who}: ended with {client.leftover} bytes of a torn frame")
            if client.last != self.last:
                missing = sum(1 for k, s in self.last.items() if client.last.get(k) != s)
                found.append(f"{who}: {missing} keys without their last value")
        return found


def percentile(values: Sequence[float], share: float) -> float:
    """The *share* (0..1) percentile of *values* (nearest rank), 0.0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def reset_peak_rss() -> None:
    """Restart this process's VmHWM from its RSS now (Linux 4.0 and later)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:  # pragma: no cover - not Linux, or not allowed
        pass


def peak_rss() -> int:
    """This process's peak RSS (VmHWM) in bytes, 0 where unknown."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0  # pragma: no cover


class TickerServer:
    """The server side: one Broadcaster, a subscriber per connection."""

    def __init__(self, conflate: bool, keys: int) -> None:
        self.conflate = conflate
        self.keys = keys
        self.hub = Broadcaster()
        self.done = trio.Event()
        self.subscribers: list[tuple[BufferedStream, ConflatingWriter | None]] = []
        #: The slow client's writers (it says so in its first byte).
        self.slow: tuple[BufferedStream, ConflatingWriter | None] | None = None
        self.connected = 0
        self.changed = trio.Event()

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
                    await self._subscribe(stream, latest)
            else:
                await self._subscribe(stream, None)

    async def _subscribe(self, stream: BufferedStream, latest: ConflatingWriter | None) -> None:
        hello = await stream.receive_some(1)
        if hello == b"S":
            self.slow = (stream, latest)
        self.hub.add(stream if latest is None else latest)
        self.subscribers.append((stream, latest))
        self.connected += 1
        self.changed.set()
        # Publish until done; then leaving the blocks sends what is waiting
        # and closes the connection.
        await self.done.wait()

    async def publish(self, rate: float, seconds: float, result: ModeResult) -> None:
        """Publish *rate* updates a second, keys in turn, for *seconds*."""
        seq = [0] * self.keys
        key = 0
        start = trio.current_time()
        while (now := trio.current_time()) - start < seconds:
            due = int((now - start + TICK) * rate) - result.published
            for _ in range(max(0, due)):
                seq[key] += 1
                self.hub.broadcast_latest(key, FRAME.pack(key, seq[key], trio.current_time()))
                result.published += 1
                key = (key + 1) % self.keys
            await trio.sleep(TICK)
        result.last = {k: s for k, s in enumerate(seq) if s}
        self.done.set()


async def run_client(
    port: int, report: ClientReport, finished: trio.Event, slow_read: int, slow_pause: float
) -> None:
    """Connect, read frames to end-of-file, check them.  The slow one reads
    *slow_read* bytes every *slow_pause* seconds until *finished* is set,
    then as fast as it can."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
    await sock.connect(("127.0.0.1", port))
    carry = b""
    async with trio.SocketStream(sock) as stream:
        await stream.send_all(b"S" if report.slow else b"F")
        while True:
            slow = report.slow and not finished.is_set()
            try:
                data = await stream.receive_some(slow_read if slow else 65536)
            except trio.BrokenResourceError:  # pragma: no cover - cut off
                report.leftover = -1
                return
            if not data:
                break
            now = trio.current_time()
            data = carry + data
            whole = len(data) - len(data) % FRAME.size
            for key, seq, published in FRAME.iter_unpack(data[:whole]):
                report.frames += 1
                if seq <= report.last.get(key, 0):
                    report.out_of_order += 1
                report.last[key] = seq
                if not finished.is_set():
                    report.ages.append(now - published)
            carry = data[whole:]
            if slow:
                await trio.sleep(slow_pause)
    report.leftover = len(carry)


async def run_mode(
    conflate: bool,
    *,
    keys: int,
    rate: float,
    seconds: float,
    clients: int,
    slow_read: int,
    slow_pause: float,
) -> ModeResult:
    """Serve *clients* fast clients and one slow one for *seconds*; report."""
    result = ModeResult(conflate)
    server = TickerServer(conflate, keys)
    reset_peak_rss()
    rss_start = peak_rss()
    finished = trio.Event()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as client_nursery:
            for n in range(clients + 1):
                report = ClientReport(slow=n == clients)
                result.clients.append(report)
                client_nursery.start_soon(run_client, port, report, finished, slow_read, slow_pause)
            while server.connected < clients + 1:
                await server.changed.wait()
                server.changed = trio.Event()
            await server.publish(rate, seconds, result)
            finished.set()
        nursery.cancel_scope.cancel()
    assert server.slow is not None
    stream, latest = server.slow
    result.slow_peak_held = stream.statistics().peak_buffered
    if latest is not None:
        stats = latest.statistics()
        result.slow_peak_held += stats.peak_pending_bytes
        result.slow_superseded = stats.frames_superseded
    result.peak_rss = max(0, peak_rss() - rss_start)
    return result


def render(results: Sequence[ModeResult], out: TextIO) -> bool:
    """Print the table and the check; return whether every check passed."""
    print(
        f"{'mode':<10} {'slow got':>9} {'age p50':>9} {'age p99':>9} {'age max':>9} "
        f"{'held peak':>12} {'superseded':>10} {'fast got':>9} {'RSS peak+':>10}",
        file=out,
    )
    problems = []
    for result in results:
        slow = result.slow
        fast = min((c.frames for c in result.clients if not c.slow), default=0)
        print(
            f"{'conflated' if result.conflate else 'fifo':<10} {slow.frames:>9,} "
            f"{percentile(slow.ages, 0.5) * 1e3:>7.1f}ms "
            f"{percentile(slow.ages, 0.99) * 1e3:>7.1f}ms "
            f"{max(slow.ages, default=0.0) * 1e3:>7.1f}ms {result.slow_peak_held:>10,} B "
            f"{result.slow_superseded:>10,} {fast:>9,} {result.peak_rss / 2**20:>7.1f}MiB",
            file=out,
        )
        problems += [
            f"{'conflated' if result.conflate else 'fifo'}: {p}" for p in result.problems()
        ]
    ok = not problems
    print(
        "check: every client got each key's updates in order, no torn frame, and "
        f"the last value of every key: {'OK' if ok else 'FAILED'}",
        file=out,
    )
    for problem in problems:
        print(f"  {problem}", file=out)
    return ok


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run FIFO then conflated; print the comparison; 0 if every check passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20_000, help="updates per second")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=20, help="fast clients")
    parser.add_argument("--slow-read", type=int, default=4096, help="bytes per slow read")
    parser.add_argument("--slow-pause", type=float, default=0.01, help="seconds between them")
    args = parser.parse_args(argv)
    out = sys.stdout if out is None else out
    print(
        f"ticker: {args.keys} keys, {args.rate:,g} updates/s for {args.seconds:g} s "
        f"({FRAME.size}-byte frames), {args.clients} fast clients + 1 slow one reading "
        f"{args.slow_read} B every {args.slow_pause * 1e3:g} ms",
        file=out,
    )
    run = partial(
        run_mode,
        keys=args.keys,
        rate=args.rate,
        seconds=args.seconds,
        clients=args.clients,
        slow_read=args.slow_read,
        slow_pause=args.slow_pause,
    )
    results = [trio.run(partial(run, conflate)) for conflate in (False, True)]
    return 0 if render(results, out) else 1


if __name__ == "__main__":
    sys.exit(main())
