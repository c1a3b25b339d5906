"""``python -m benchmarks soak``: many buffered connections under random load, verified.

One Trio process (this one) opens N loopback TCP connections, each wrapped in
:func:`~trio_bufwriter.open_buffered_stream`, and for S seconds every
connection writes random-size records (1 B .. 64 KiB, log-uniform, so mostly
small) in bursts, with random ``drain()`` calls inside each burst, a
``drain()`` or (sometimes) a ``flush()`` after it, and a random pause before
the next.  The writer side keeps a running CRC-32 and byte count per
connection.

The receiver is a separate process (multiprocessing "spawn") with a Trio loop
of its own.  It reads every connection to end-of-file with a running CRC-32
and byte count; a share of the connections (the *slow readers*) read a few KiB
at a time with pauses and small socket buffers, so that their writers sit at
high water and ``drain()`` really waits.  When the load phase ends, the slow
readers speed up, the writers close (flush, then close the socket), and the
receiver reports each connection's byte count and CRC, which must match the
writer side's exactly.

The writer process's resident set size (``/proc/self/statm``) is sampled
after the first 10 s of load (a third of the run for runs shorter than 20 s)
and at the end of the load phase; the run passes only if every connection
stayed open and verified, and the end sample is at most 1.05 times the first.
The bytes malloc has handed out (glibc's ``mallinfo2``) are reported at the
same two moments, not judged: RSS includes the heap's free space, so a slow
leak only shows in RSS once it has used that up (about 40 s for 1 MB/s on
the reference machine), while it shows in the heap figure at once.

Control pipe protocol, parent to receiver::

    receiver -> parent   the listening port (int), once listening
    parent -> receiver   "finish": slow readers read at full speed from now on
    parent -> receiver   "report": send the report once every connection ended
    receiver -> parent   a _ReceiverReport
    parent -> receiver   None (or closing the pipe): exit
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import signal
import socket
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO, final

import trio

from trio_bufwriter import BufferedStream, open_buffered_stream
from trio_bufwriter._cli import positive_float, positive_int

from ._worker import Worker, WorkerKind, ensure_fd_limit

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from trio_bufwriter import WriterStatistics

#: The largest record one ``write()`` queues.
MAX_RECORD = 64 * 1024
#: What each connection sends first, outside the checksum: its id, and 1 if
#: the receiver is to read it slowly.
_HEADER = struct.Struct("!IB")
#: Records are slices of one random block of this size (plus MAX_RECORD).
_POOL_SIZE = 1 << 20

# The load each connection offers: bursts of 1.._BURST_MAX writes; after
# each write a drain() with probability _DRAIN_P; after each burst a flush()
# with probability _FLUSH_P, else a drain(); then a pause of uniform(0,
# 2 * _PAUSE_MEAN) seconds.  About 8.5 writes of 5.9 KiB mean per burst, two
# bursts a second: ~100 KB/s per connection, ~100 MB/s for 1,000.
_BURST_MAX = 16
_DRAIN_P = 0.25
_FLUSH_P = 0.03
_PAUSE_MEAN = 0.5

# Slow readers: reads of _SLOW_READ bytes with pauses of _SLOW_PAUSE seconds
# (~40 KB/s, below what their writers offer), through socket buffers of
# _SLOW_SOCKET_BUFFER bytes on both ends, so backpressure reaches the writer.
_SLOW_READ = (1024, 4096)
_SLOW_PAUSE = (0.02, 0.1)
_SLOW_SOCKET_BUFFER = 16 * 1024
_FAST_READ = 64 * 1024

#: How long the receiver, asked for its report, waits for connections it
#: has not accepted yet (the parent asks once all of its own have closed,
#: so those are in the listen backlog, if they exist at all).
_ACCEPT_GRACE = 2.0
#: Connections being opened at once.
_CONNECT_CONCURRENCY = 64
#: The first RSS sample is taken this long into the load phase (or a third
#: of it, for runs shorter than twice this).
_EARLY_SAMPLE = 10.0
#: The end sample may be at most this many times the first.
RSS_LIMIT = 1.05

# Generous bounds on the phases around the load, so a run never hangs.
_CONNECT_TIMEOUT = 60.0
_SHUTDOWN_TIMEOUT = 120.0
_REPLY_TIMEOUT = 120.0


class SoakError(Exception):
    """The soak could not run (or could not finish): reported as ``error: ...``."""


# ----------------------------------------------------------------------
# Process facts


def rss_bytes() -> int:
    """This process's resident set size in bytes (Linux: current; elsewhere: peak)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _heap_in_use_reader() -> Callable[[], int] | None:
    """A function returning the bytes malloc has handed out and not had back
    (glibc's ``mallinfo2``), or None where that is not available.

    Unlike RSS it does not include memory malloc keeps after a free, so it
    shows a leak at once, where RSS only shows it once the leak has used up
    the heap's free space.  Reported, not judged: it also moves with the
    bytes buffered at the moment.
    """
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # pragma: no cover - not glibc >= 2.33
        return None

    class Mallinfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    mallinfo2.restype = Mallinfo2
    mallinfo2.argtypes = []

    def heap_in_use() -> int:
        info = mallinfo2()
        return int(info.uordblks + info.hblkhd)

    return heap_in_use


def _ensure_fd_limit(needed: int) -> None:
    ensure_fd_limit(needed, SoakError, "--connections")


def _fds_needed(connections: int) -> int:
    return connections + 256


# ----------------------------------------------------------------------
# The receiver


@dataclass
class _ReceiverReport:
    """What the receiver saw: per connection id, (bytes after the header, CRC-32)."""

    results: dict[int, tuple[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    accepted: int = 0
    slow: int = 0
    peak_rss: int = 0


@final
class _Receiving:
    """The receiver's state inside its Trio run."""

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.report = _ReceiverReport()
        self.fast = trio.Event()
        self.active = 0
        self.idle = trio.Event()
        self.all_accepted = trio.Event()

    async def accept_all(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while self.report.accepted < self.connections:
            stream = await listener.accept()
            self.report.accepted += 1
            self.active += 1
            self.idle = trio.Event()
            nursery.start_soon(self.read_connection, stream)
        self.all_accepted.set()

    async def read_connection(self, stream: trio.SocketStream) -> None:
        connection_id = -1
        try:
            async with stream:
                header = bytearray()
                while len(header) < _HEADER.size:
                    data = await stream.receive_some(_HEADER.size - len(header))
                    if not data:
                        raise SoakError("end-of-file inside the connection header")
                    header += data
                connection_id, slow = _HEADER.unpack(header)
                if slow:
                    self.report.slow += 1
                    stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SLOW_SOCKET_BUFFER)
                rng = random.Random(connection_id)
                crc = 0
                count = 0
                while True:
                    if slow and not self.fast.is_set():
                        data = await stream.receive_some(rng.randint(*_SLOW_READ))
                        if data:
                            await trio.sleep(rng.uniform(*_SLOW_PAUSE))
                    else:
                        data = await stream.receive_some(_FAST_READ)
                    if not data:
                        break
                    crc = zlib.crc32(data, crc)
                    count += len(data)
                self.report.results[connection_id] = (count, crc)
        except (OSError, trio.BrokenResourceError, SoakError) as exc:
            self.report.errors.append(f"connection {connection_id}: {exc!r}")
        finally:
            self.active -= 1
            if not self.active:
                self.idle.set()

    async def obey(self, control: Connection[object, object], nursery: trio.Nursery) -> None:
        """Act on the parent's commands until it says stop (or goes away)."""
        while True:
            await trio.lowlevel.wait_readable(control.fileno())
            try:
                command = control.recv()
            except EOFError:
                command = None
            if command == "finish":
                self.fast.set()
            elif command == "report":
                self.fast.set()
                with trio.move_on_after(_ACCEPT_GRACE):
                    await self.all_accepted.wait()
                while self.active:
                    await self.idle.wait()
                self.report.peak_rss = _peak_rss()
                control.send(self.report)
            else:
                nursery.cancel_scope.cancel()
                return


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # pragma: no branch


async def _receive(control: Connection[object, object], connections: int) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    receiving = _Receiving(connections)
    async with listener, trio.open_nursery() as nursery:
        control.send(listener.socket.getsockname()[1])
        nursery.start_soon(receiving.accept_all, listener, nursery)
        nursery.start_soon(receiving.obey, control, nursery)


def _receiver_main(control: Connection[object, object], connections: int) -> None:
    """Run the receiver until the parent says stop: a process's (or a thread's) target."""
    with control:
        trio.run(_receive, control, connections)


def _receiver_process_main(  # pragma: no cover - runs in the child
    control: Connection[object, object], connections: int
) -> None:
    """The receiver process's target."""
    # The parent decides when this process ends (and Ctrl-C reaches both).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _ensure_fd_limit(_fds_needed(connections))
    _receiver_main(control, connections)


ReceiverKind = WorkerKind


@final
class _Receiver:
    """The parent's handle on a running receiver."""

    def __init__(self, connections: int, kind: ReceiverKind) -> None:
        self._worker = Worker(
            kind,
            _receiver_process_main,
            _receiver_main,
            (connections,),
            name="trio_bufwriter soak receiver",
            what="receiver",
            error=SoakError,
        )
        try:
            port = self._worker.recv(_REPLY_TIMEOUT)
        except BaseException:
            self.close()
            raise
        if not isinstance(port, int):  # pragma: no cover
            self.close()
            raise SoakError(f"the receiver sent {port!r} instead of its port")
        self.port = port

    def send(self, command: str | None) -> None:
        self._worker.send(command)

    async def report(self) -> _ReceiverReport:
        report = await self._worker.ask("report", _REPLY_TIMEOUT)
        if not isinstance(report, _ReceiverReport):  # pragma: no cover
            raise SoakError(f"the receiver sent {report!r} instead of its report")
        return report

    def close(self) -> None:
        self._worker.close()


# ----------------------------------------------------------------------
# The writer side


@final
class _Connection:
    """One connection's writer-side bookkeeping."""

    __slots__ = (
        "crc",
        "drain_waits",
        "error",
        "final",
        "flushes",
        "id",
        "open",
        "slow",
        "writer",
        "writes",
        "written",
    )

    def __init__(self, connection_id: int, slow: bool) -> None:
        self.id = connection_id
        self.slow = slow
        self.written = 0
        self.crc = 0
        self.writes = 0
        self.drain_waits = 0
        self.flushes = 0
        self.open = False
        self.writer: BufferedStream | None = None
        self.final: WriterStatistics | None = None
        self.error: str | None = None

    def bytes_sent(self) -> int:
        if self.final is not None:
            return self.final.bytes_sent
        return 0 if self.writer is None else self.writer.statistics().bytes_sent


@final
class _Load:
    """The writer side of a soak run, inside its Trio run."""

    def __init__(self, port: int, connections: list[_Connection], seed: int, seconds: float):
        self.port = port
        self.connections = connections
        self.seed = seed
        self.seconds = seconds
        self.pool = memoryview(random.Random(seed).randbytes(_POOL_SIZE + MAX_RECORD))
        self.ready = 0
        self.go = trio.Event()
        self.stop = trio.Event()
        self.limiter = trio.CapacityLimiter(_CONNECT_CONCURRENCY)
        self.started = 0.0

    def open_now(self) -> int:
        return sum(c.open for c in self.connections)

    def bytes_sent(self) -> int:
        return sum(c.bytes_sent() for c in self.connections)

    def _connected(self) -> None:
        self.ready += 1
        if self.ready == len(self.connections):
            self.go.set()

    async def run_connection(self, conn: _Connection) -> None:
        counted = False
        try:
            async with self.limiter:
                stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            if conn.slow:
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SLOW_SOCKET_BUFFER)
            async with open_buffered_stream(stream) as writer:
                conn.writer = writer
                conn.open = True
                writer.write(_HEADER.pack(conn.id, conn.slow))
                counted = True
                self._connected()
                await self.go.wait()
                await self._offer_load(conn, writer)
                conn.open = False
            conn.final = writer.statistics()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            conn.error = repr(exc)
        finally:
            conn.open = False
            if not counted:
                self._connected()

    async def _offer_load(self, conn: _Connection, writer: BufferedStream) -> None:
        rng = random.Random(f"{self.seed}:{conn.id}")
        pool = self.pool
        crc32 = zlib.crc32
        stop = self.stop
        while not stop.is_set():
            for _ in range(rng.randint(1, _BURST_MAX)):
                size = min(int(2.0 ** rng.uniform(0.0, 16.0)), MAX_RECORD)
                start = rng.randrange(_POOL_SIZE)
                record = pool[start : start + size]
                writer.write(record)
                conn.crc = crc32(record, conn.crc)
                conn.written += size
                conn.writes += 1
                if rng.random() < _DRAIN_P:
                    conn.drain_waits += writer.need_drain
                    await writer.drain()
            if rng.random() < _FLUSH_P:
                conn.flushes += 1
                await writer.flush()
            else:
                conn.drain_waits += writer.need_drain
                await writer.drain()
            # The pause; cut short when the load phase ends.
            with trio.move_on_after(rng.uniform(0.0, 2 * _PAUSE_MEAN)):
                await stop.wait()


@dataclass
class SoakResult:
    """What a soak run measured."""

    connections: int
    seconds: float
    slow: int
    #: Connections open at every progress sample of the load phase (the fewest).
    held: int = 0
    verified_connections: int = 0
    verified_bytes: int = 0
    writes: int = 0
    drain_waits: int = 0
    flushes: int = 0
    peak_buffered: int = 0
    #: Verified bytes of the slow readers' connections, and of the others.
    slow_bytes: int = 0
    fast_bytes: int = 0
    rss_start: int = 0
    rss_start_at: float = 0.0
    rss_end: int = 0
    rss_end_at: float = 0.0
    #: glibc's bytes in use at the same two moments (None: not available).
    heap_start: int | None = None
    heap_end: int | None = None
    receiver_peak_rss: int = 0
    connect_seconds: float = 0.0
    shutdown_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def rss_ratio(self) -> float:
        return self.rss_end / self.rss_start if self.rss_start else float("inf")

    @property
    def passed(self) -> bool:
        return (
            not self.problems
            and self.held == self.connections
            and self.verified_connections == self.connections
            and self.rss_ratio <= RSS_LIMIT
        )


def _early_sample_time(seconds: float) -> float:
    return _EARLY_SAMPLE if seconds >= 2 * _EARLY_SAMPLE else seconds / 3


def _per_second(size: int, connections: int, seconds: float) -> str:
    if not connections:
        return "-"
    return f"{size / connections / seconds / 1e3:,.1f} kB/s"


def _heap(result: SoakResult) -> str:
    if result.heap_start is None or result.heap_end is None:  # pragma: no cover
        return "not available (needs glibc 2.33 or later)"
    return (
        f"{_mib(result.heap_start)} / {_mib(result.heap_end)} at the same moments "
        "(malloc's, not judged; a leak shows here before RSS)"
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


async def _drive(receiver: _Receiver, load: _Load, result: SoakResult, out: TextIO) -> None:
    """Connect, offer the load, sample RSS, shut down; fill in *result*."""
    connections = load.connections
    stopping = 0.0
    load.started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for conn in connections:
            nursery.start_soon(load.run_connection, conn)
        with trio.move_on_after(_CONNECT_TIMEOUT):
            await load.go.wait()
        # (Cancelling sets go: each task counts itself ready as it ends.)
        ready = load.go.is_set()
        opened = load.open_now()
        if not ready:
            nursery.cancel_scope.cancel()
        else:
            await _offer(load, result, out)
            # Shut down: slow readers speed up, writers finish their burst and close.
            receiver.send("finish")
            load.stop.set()
            stopping = trio.current_time()
            nursery.cancel_scope.deadline = stopping + _SHUTDOWN_TIMEOUT
    if not ready:
        raise SoakError(
            f"only {opened:,} of {len(connections):,} connections were open "
            f"after {_CONNECT_TIMEOUT:g} s"
        )
    if nursery.cancel_scope.cancelled_caught:
        raise SoakError(f"the connections did not close within {_SHUTDOWN_TIMEOUT:g} s")
    result.shutdown_seconds = trio.current_time() - stopping
    _verify(connections, await receiver.report(), result)


async def _offer(load: _Load, result: SoakResult, out: TextIO) -> None:
    """The load phase: print progress every second, take the two RSS samples."""
    total = len(load.connections)
    t0 = trio.current_time()
    result.connect_seconds = t0 - load.started
    result.held = load.open_now()
    early = t0 + _early_sample_time(result.seconds)
    end = t0 + result.seconds
    tick = 1
    last_sent, last_time = 0, t0
    heap_in_use = _heap_in_use_reader()
    while True:
        next_tick = t0 + tick
        await trio.sleep_until(min(next_tick, end) if result.rss_start else min(next_tick, early))
        now = trio.current_time()
        if not result.rss_start and now >= early:
            result.rss_start = rss_bytes()
            result.rss_start_at = now - t0
            result.heap_start = None if heap_in_use is None else heap_in_use()
        if now >= end:
            break
        if now >= next_tick:
            sent = load.bytes_sent()
            open_now = load.open_now()
            result.held = min(result.held, open_now)
            rate = (sent - last_sent) / (now - last_time) / 1e6
            print(
                f"{now - t0:7.1f} s  open {open_now:,}/{total:,}  sent {sent:,} B "
                f"({rate:,.1f} MB/s)  RSS {_mib(rss_bytes())}",
                file=out,
                flush=True,
            )
            last_sent, last_time = sent, now
            tick = int(now - t0) + 1
    result.rss_end = rss_bytes()
    result.rss_end_at = now - t0
    result.heap_end = None if heap_in_use is None else heap_in_use()
    result.held = min(result.held, load.open_now())
    print(
        f"{now - t0:7.1f} s  open {load.open_now():,}/{total:,}  sent {load.bytes_sent():,} B  "
        f"RSS {_mib(result.rss_end)}  (end of load; closing)",
        file=out,
        flush=True,
    )


def _verify(connections: list[_Connection], report: _ReceiverReport, result: SoakResult) -> None:
    result.receiver_peak_rss = report.peak_rss
    result.problems.extend(f"receiver: {error}" for error in report.errors[:10])
    if report.accepted != len(connections) or report.slow != result.slow:
        result.problems.append(
            f"receiver: accepted {report.accepted:,} connections ({report.slow:,} slow), "
            f"expected {len(connections):,} ({result.slow:,} slow)"
        )
    for conn in connections:
        result.writes += conn.writes
        result.drain_waits += conn.drain_waits
        result.flushes += conn.flushes
        if conn.error is not None:
            result.problems.append(f"connection {conn.id}: {conn.error}")
            continue
        assert conn.final is not None
        result.peak_buffered = max(result.peak_buffered, conn.final.peak_buffered)
        expected = (conn.written, conn.crc)
        got = report.results.get(conn.id)
        if got is None:
            result.problems.append(f"connection {conn.id}: the receiver has no result for it")
        elif got != expected:
            result.problems.append(
                f"connection {conn.id}: the receiver got {got[0]:,} bytes with CRC "
                f"{got[1]:08x}, the writer wrote {expected[0]:,} with CRC {expected[1]:08x}"
            )
        elif conn.final.bytes_sent != conn.written + _HEADER.size:
            result.problems.append(
                f"connection {conn.id}: the writer counted {conn.final.bytes_sent:,} bytes "
                f"sent, {conn.written + _HEADER.size:,} written"
            )
        else:
            result.verified_connections += 1
            result.verified_bytes += conn.written
            if conn.slow:
                result.slow_bytes += conn.written
            else:
                result.fast_bytes += conn.written


def _summary(result: SoakResult) -> list[str]:
    n = result.connections
    verdict = "PASS" if result.passed else "FAIL"
    rss_ok = "ok" if result.rss_ratio <= RSS_LIMIT else "over the limit"
    lines = [
        "",
        f"summary ({n:,} connections, {result.slow:,} slow readers, {result.seconds:g} s of load):",
        f"  connections held:   {result.held:,}/{n:,} open throughout the load phase "
        f"(all ready in {result.connect_seconds:.2f} s)",
        f"  bytes verified:     {result.verified_bytes:,} B in "
        f"{result.verified_connections:,}/{n:,} connections (byte count and CRC-32 match)",
        f"  writes:             {result.writes:,} ({result.drain_waits:,} drains had to wait, "
        f"{result.flushes:,} flushes); peak buffered on one connection "
        f"{result.peak_buffered:,} B",
        f"  per connection:     {_per_second(result.fast_bytes, n - result.slow, result.seconds)} "
        f"to fast readers, {_per_second(result.slow_bytes, result.slow, result.seconds)} "
        "to slow readers (mean)",
        f"  RSS start/end:      {_mib(result.rss_start)} at {result.rss_start_at:.1f} s / "
        f"{_mib(result.rss_end)} at {result.rss_end_at:.1f} s, ratio "
        f"{result.rss_ratio:.3f} (limit {RSS_LIMIT:.2f}: {rss_ok})",
        f"  heap in use:        {_heap(result)}",
        f"  receiver peak RSS:  {_mib(result.receiver_peak_rss)}; shutdown took "
        f"{result.shutdown_seconds:.2f} s",
    ]
    if result.problems:
        lines.append(f"  problems:           {len(result.problems):,}")
        lines.extend(f"    {problem}" for problem in result.problems[:20])
    lines.append(f"result: {verdict}")
    return lines


def run_soak(
    connections: int,
    seconds: float,
    slow_share: float,
    seed: int,
    out: TextIO | None = None,
    *,
    receiver: ReceiverKind = "process",
) -> int:
    """Run the soak and print progress and a summary to *out* (stdout).

    *connections* loopback connections, *seconds* of load, a *slow_share*
    (0..1) of slow readers, random choices seeded by *seed*.  *receiver* is
    ``"process"`` (the real thing) or ``"thread"`` (for tests only: the
    receiver then shares this process's GIL and memory).  Returns the exit
    status: 0 on PASS, 1 on FAIL or error, 130 if interrupted.
    """
    out = sys.stdout if out is None else out
    if connections < 1 or seconds <= 0 or not 0 <= slow_share <= 1:
        raise ValueError("need connections >= 1, seconds > 0 and 0 <= slow_share <= 1")
    slow_ids = set(random.Random(seed).sample(range(connections), round(connections * slow_share)))
    plan = [_Connection(i, i in slow_ids) for i in range(connections)]
    result = SoakResult(connections, seconds, len(slow_ids))
    print(
        f"trio_bufwriter soak: {connections:,} loopback connections, {len(slow_ids):,} "
        f"slow readers, {seconds:g} s of load, seed {seed}; receiver: "
        f"{'a separate process (spawn)' if receiver == 'process' else 'a thread (test mode)'}",
        file=out,
        flush=True,
    )
    try:
        _ensure_fd_limit(_fds_needed(connections))
        handle = _Receiver(connections, receiver)
        try:
            load = _Load(handle.port, plan, seed, seconds)
            trio.run(_drive, handle, load, result, out)
        finally:
            handle.close()
    except SoakError as exc:
        result.problems.append(f"error: {exc}")
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=out, flush=True)
        return 130
    print("\n".join(_summary(result)), file=out, flush=True)
    return 0 if result.passed else 1


# ----------------------------------------------------------------------
# The command line


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _run_soak_command(args: argparse.Namespace) -> int:
    """Run ``soak`` with the parsed *args*."""
    return run_soak(args.connections, args.seconds, args.slow_share, args.seed)


def add_soak_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``soak`` command."""
    parser = commands.add_parser(
        "soak",
        help="many buffered loopback connections under random load, every byte verified",
        description=(
            "Open N loopback TCP connections through open_buffered_stream and write "
            "random-size records with random drains and flushes for S seconds, to a "
            "receiver process that checksums every connection (a share of it reading "
            "slowly); check every byte and that RSS stays flat."
        ),
    )
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=1000,
        metavar="N",
        help="connections held open at once (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="seconds of load (default: %(default)s)",
    )
    parser.add_argument(
        "--slow-share",
        type=_share,
        default=0.1,
        metavar="F",
        help="share of slow readers, 0..1 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="seed of the random choices (default: %(default)s)",
    )
    parser.set_defaults(run=_run_soak_command)
