"""The latency benchmark: 64-byte ping-pong with an echo peer process.

Each client connects to the echo peer (:func:`trio_bufwriter._loopback.start_receiver`
with ``echo=True``: blocking socket, ``TCP_NODELAY``), sends 64 bytes, waits for
the 64 bytes to come back, and repeats; every round trip is timed with
``perf_counter_ns``.  The first ``warmup_round_trips`` of every connection are
not kept.

Placements: the bench process on the first usable CPU and the echo peer on
the same CPU, then on the second one.  Where CPUs cannot be pinned, a single
"unpinned" placement is measured instead (and the report says so).  Within a
placement the clients run in rotated order over ``repeat`` rounds, each round
on fresh connections, and the percentiles are taken over all kept round trips.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter_ns

import trio

from trio_bufwriter import open_buffered_stream
from trio_bufwriter._loopback import start_receiver

from ._config import RUN_TIMEOUT, Budget
from ._machine import can_pin, optional_module, pinned, usable_cpus, watchdog
from ._peers import new_event_loop
from ._stats import median, percentile, rotated
from ._throughput import BenchError

#: The ping-pong message size.
MESSAGE_SIZE = 64

RAW = "raw blocking"
ASYNCIO = "asyncio"
UVLOOP = "uvloop"
TRIO_SEND_ALL = "trio send_all"
BUFWRITER = "bufwriter write"

#: ``client(port, message, round_trips) -> nanoseconds of each round trip``.
Client = Callable[[int, bytes, int], list[int]]


@dataclass(frozen=True)
class Placement:
    """Where the bench process (client) and the echo peer run."""

    name: str
    client_cpu: int | None
    echo_cpu: int | None


@dataclass
class LatencySeries:
    """One client at one placement: every kept round trip, in nanoseconds."""

    placement: str
    client: str
    samples_ns: list[int] = field(default_factory=list)
    #: The p50 of each connection's kept round trips, in run order.
    run_p50s_ns: list[float] = field(default_factory=list)

    def p50_us(self) -> float:
        """The median round trip, in microseconds."""
        return percentile(self.samples_ns, 50) / 1000

    def p99_us(self) -> float:
        """The 99th percentile round trip, in microseconds."""
        return percentile(self.samples_ns, 99) / 1000


@dataclass
class LatencyResult:
    """Everything the latency benchmark measured."""

    placements: list[Placement]
    clients: list[str]
    series: list[LatencySeries]
    skipped: dict[str, str]
    round_trips_per_run: int
    warmup_round_trips: int
    repeat: int
    notes: list[str] = field(default_factory=list)

    def get(self, placement: str, client: str) -> LatencySeries | None:
        """The series of *client* at *placement*, if it ran."""
        for series in self.series:
            if series.placement == placement and series.client == client:
                return series
        return None


# ----------------------------------------------------------------------
# The clients


def _raw_client(port: int, message: bytes, round_trips: int) -> list[int]:
    size = len(message)
    buffer = bytearray(size)
    samples: list[int] = []
    with socket.create_connection(("127.0.0.1", port)) as sock, memoryview(buffer) as view:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(round_trips):
            start = perf_counter_ns()
            sock.sendall(message)
            got = 0
            while got < size:
                received = sock.recv_into(view[got:])
                if not received:
                    raise BenchError("the echo peer closed the connection early")
                got += received
            samples.append(perf_counter_ns() - start)
    return samples


async def _asyncio_pings(port: int, message: bytes, round_trips: int) -> list[int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    size = len(message)
    samples: list[int] = []
    for _ in range(round_trips):
        start = perf_counter_ns()
        writer.write(message)
        await writer.drain()
        await reader.readexactly(size)
        samples.append(perf_counter_ns() - start)
    writer.close()
    await writer.wait_closed()
    return samples


def _on_loop(library: str) -> Client:
    def run(port: int, message: bytes, round_trips: int) -> list[int]:
        loop = new_event_loop(library)
        try:
            return loop.run_until_complete(_asyncio_pings(port, message, round_trips))
        finally:
            loop.close()

    return run


async def _receive_rest(stream: trio.abc.ReceiveStream, missing: int) -> None:
    """Receive *missing* more bytes of a reply that came in pieces."""
    while missing > 0:
        data = await stream.receive_some(missing)
        if not data:
            raise BenchError("the echo peer closed the connection early")
        missing -= len(data)


async def _trio_pings(port: int, message: bytes, round_trips: int) -> list[int]:
    size = len(message)
    samples: list[int] = []
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        for _ in range(round_trips):
            start = perf_counter_ns()
            await stream.send_all(message)
            data = await stream.receive_some(size)
            if len(data) < size:
                await _receive_rest(stream, size - len(data))
            samples.append(perf_counter_ns() - start)
    return samples


async def _bufwriter_pings(port: int, message: bytes, round_trips: int) -> list[int]:
    size = len(message)
    samples: list[int] = []
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with open_buffered_stream(stream) as conn:
        for _ in range(round_trips):
            start = perf_counter_ns()
            conn.write(message)  # wakes the idle sender; receive_some lets it run
            data = await conn.receive_some(size)
            if len(data) < size:
                await _receive_rest(conn, size - len(data))
            samples.append(perf_counter_ns() - start)
    return samples


def _on_trio(pings: Callable[[int, bytes, int], Awaitable[list[int]]]) -> Client:
    def run(port: int, message: bytes, round_trips: int) -> list[int]:
        return trio.run(pings, port, message, round_trips)

    return run


#: (name, description, client, optional module it needs)
CLIENTS: tuple[tuple[str, str, Client, str | None], ...] = (
    (RAW, "blocking socket: sendall(); recv_into() until 64 bytes", _raw_client, None),
    (
        ASYNCIO,
        "StreamWriter write(); await drain(); await readexactly(64)",
        _on_loop("asyncio"),
        None,
    ),
    (UVLOOP, "the same on uvloop", _on_loop("uvloop"), "uvloop"),
    (
        TRIO_SEND_ALL,
        "SocketStream: await send_all(); await receive_some()",
        _on_trio(_trio_pings),
        None,
    ),
    (
        BUFWRITER,
        "open_buffered_stream: write() (no drain); await receive_some(): the idle-send path",
        _on_trio(_bufwriter_pings),
        None,
    ),
)


# ----------------------------------------------------------------------
# The schedule


def placements() -> tuple[list[Placement], list[str]]:
    """Same CPU and other CPU if pinning works here; else one unpinned placement."""
    cpus = usable_cpus()
    if not can_pin():
        return [Placement("unpinned", None, None)], [
            "latency: CPU pinning is not available here; measured unpinned only"
        ]
    found = [Placement("same CPU", cpus[0], cpus[0])]
    notes: list[str] = []
    if len(cpus) >= 2:
        found.append(Placement("other CPU", cpus[0], cpus[1]))
    else:
        notes.append(f"latency: only CPU {cpus[0]} is usable; no other-CPU placement")
    return found, notes


def measure_latency(budget: Budget, *, progress: Callable[[str], None]) -> LatencyResult:
    """Run the latency benchmark (see the module's docstring)."""
    clients = []
    skipped: dict[str, str] = {}
    for name, _, client, requires in CLIENTS:
        if requires is not None and optional_module(requires) is None:
            skipped[name] = f"{requires} is not installed"
        else:
            clients.append((name, client))
    where, notes = placements()
    per_run = math.ceil(budget.round_trips / budget.repeat)
    warmup = budget.warmup_round_trips
    message = b"p" * MESSAGE_SIZE
    result = LatencyResult(
        where, [name for name, _ in clients], [], skipped, per_run, warmup, budget.repeat, notes
    )
    for placement in where:
        series = {name: LatencySeries(placement.name, name) for name, _ in clients}
        result.series.extend(series.values())
        with (
            start_receiver(cpu=placement.echo_cpu, echo=True) as echo,
            pinned(placement.client_cpu),
        ):
            for round_ in range(budget.repeat):
                progress(f"latency: {placement.name}, round {round_ + 1}/{budget.repeat}")
                for name, client in rotated(clients, round_):
                    echo.expect_connection()
                    try:
                        with watchdog(RUN_TIMEOUT):
                            samples = client(echo.port, message, warmup + per_run)
                    except (OSError, asyncio.IncompleteReadError, trio.BrokenResourceError) as exc:
                        raise BenchError(f"latency client {name} failed: {exc!r}") from exc
                    echoed = echo.wait_count()
                    expected = (warmup + per_run) * MESSAGE_SIZE
                    if echoed != expected:
                        raise BenchError(
                            f"the echo peer echoed {echoed:,} bytes to {name}, "
                            f"expected {expected:,}"
                        )
                    kept = samples[warmup:]
                    series[name].samples_ns.extend(kept)
                    series[name].run_p50s_ns.append(median(kept))
    return result
