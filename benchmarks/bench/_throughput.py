"""The throughput benchmark: every peer, every size, interleaved rounds.

The schedule, for a receiver process on loopback TCP:

1. Calibration: one untimed warm-up run per (size, peer), repeated with more
   messages while it is shorter than the budget's ``calibrate_seconds``; its
   rate sizes the timed runs to about ``run_seconds`` each (two significant
   digits, capped by bytes: write-only holds all of its run in memory).
2. ``repeat`` rounds; in each, for every size, every peer runs once, the
   peers' order rotated by one place per round so that none always runs
   first or after the same neighbour.

Every run uses a fresh connection, and the receiver's byte count of every
run (warm-ups included) must be exactly what was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from trio_bufwriter._loopback import LoopbackReceiver, start_receiver

from ._config import RUN_TIMEOUT, Budget, MiB, size_label
from ._machine import optional_module, pinned, usable_cpus, watchdog
from ._peers import BULK_CHUNK, PEERS, Job, Outcome, Peer
from ._stats import median, rotated, round_count, spread

#: A calibration run sends about this many bytes at first...
_WARMUP_BYTES = MiB
#: ... in at least this many and at most this many messages.
_WARMUP_MIN_COUNT = 16
_WARMUP_MAX_COUNT = 10_000
#: Timed runs send at least this many messages (unless the byte cap says fewer).
_MIN_COUNT = 8


class BenchError(Exception):
    """A run failed or the receiver got the wrong number of bytes."""


@dataclass
class Series:
    """One (peer, size): its workload and the time of each run."""

    peer: str
    size: int
    #: Bytes per send call: the message size, or the bulk chunk for raw bulk.
    unit: int
    #: Send calls per timed run.
    count: int
    #: (send calls, seconds) of each calibration run, in order.
    warmups: list[tuple[int, float]] = field(default_factory=list)
    #: Seconds of each timed run, in run order.
    seconds: list[float] = field(default_factory=list)
    socket_options: dict[str, int | None] = field(default_factory=dict)

    @property
    def run_bytes(self) -> int:
        """Bytes sent by each timed run."""
        return self.unit * self.count

    def byte_rates(self) -> list[float]:
        """Bytes per second of each timed run."""
        return [self.run_bytes / s for s in self.seconds]

    def mb_per_s(self) -> float:
        """The median rate in MB/s (10^6 bytes per second)."""
        return median(self.byte_rates()) / 1e6

    def msgs_per_s(self) -> float:
        """The median rate in messages of :attr:`size` per second."""
        return median(self.byte_rates()) / self.size

    def spread(self) -> float:
        """(max - min) / median of the runs' rates."""
        return spread(self.byte_rates())


@dataclass
class ThroughputResult:
    """Everything the throughput benchmark measured."""

    sizes: list[int]
    peers: list[str]
    series: list[Series]
    #: Peers not run, and why.
    skipped: dict[str, str]
    #: (sender CPU, receiver CPU), or None if unpinned.
    pinning: tuple[int, int] | None
    repeat: int
    notes: list[str] = field(default_factory=list)

    def get(self, peer: str, size: int) -> Series | None:
        """The series of *peer* at *size*, if it ran."""
        for series in self.series:
            if series.peer == peer and series.size == size:
                return series
        return None


def _run(receiver: LoopbackReceiver, peer: Peer, size: int, message: bytes, count: int) -> Outcome:
    """One run of *peer* on a fresh connection, its byte count checked."""
    label = f"{peer.name} at {size_label(size)} ({count:,} x {len(message):,} bytes)"
    receiver.expect_connection()
    try:
        with watchdog(RUN_TIMEOUT):
            outcome = peer.run(Job(receiver.port, message, count, receiver.wait_count))
    except (OSError, trio.BrokenResourceError) as exc:
        raise BenchError(f"{label} failed: {exc!r}") from exc
    expected = count * len(message)
    if outcome.received != expected:
        raise BenchError(
            f"the receiver got {outcome.received:,} bytes from {label}, expected {expected:,}"
        )
    return outcome


def _calibrate(receiver: LoopbackReceiver, peer: Peer, size: int, budget: Budget) -> Series:
    """Warm *peer* up at *size* and size its timed runs from the warm-up's rate."""
    unit = BULK_CHUNK if peer.bulk else size
    message = b"x" * unit
    cap = max(1, (budget.max_buffered_bytes if peer.buffers_all else budget.max_run_bytes) // unit)
    count = min(cap, max(_WARMUP_MIN_COUNT, min(_WARMUP_MAX_COUNT, _WARMUP_BYTES // unit)))
    series = Series(peer.name, size, unit, count)
    while True:
        outcome = _run(receiver, peer, size, message, count)
        series.warmups.append((count, outcome.seconds))
        series.socket_options = outcome.socket_options
        if outcome.seconds >= budget.calibrate_seconds or count >= cap:
            break
        factor = min(16.0, max(2.0, 1.5 * budget.calibrate_seconds / outcome.seconds))
        count = min(cap, int(count * factor))
    rate = count / outcome.seconds
    series.count = round_count(rate * budget.run_seconds, min(_MIN_COUNT, cap), cap)
    return series


def available_peers() -> tuple[list[Peer], dict[str, str]]:
    """The peers that can run here, and why the others cannot."""
    runnable: list[Peer] = []
    skipped: dict[str, str] = {}
    for peer in PEERS:
        if peer.requires is not None and optional_module(peer.requires) is None:
            skipped[peer.name] = f"{peer.requires} is not installed"
        else:
            runnable.append(peer)
    return runnable, skipped


def measure_throughput(
    budget: Budget,
    sizes: Sequence[int],
    *,
    pin: bool,
    progress: Callable[[str], None],
    peers: Sequence[Peer] | None = None,
) -> ThroughputResult:
    """Run the throughput benchmark (see the module's docstring)."""
    if peers is None:
        runnable, skipped = available_peers()
    else:
        runnable, skipped = list(peers), {}
    notes: list[str] = []
    cpus = usable_cpus()
    pinning: tuple[int, int] | None = None
    if pin:
        if len(cpus) >= 2:
            pinning = (cpus[0], cpus[1])
        else:
            notes.append(f"--pin needs two usable CPUs; found {cpus or 'no affinity support'}")
    result = ThroughputResult(
        list(sizes), [p.name for p in runnable], [], skipped, pinning, budget.repeat, notes
    )
    by_key: dict[tuple[str, int], Series] = {}
    with (
        start_receiver(cpu=None if pinning is None else pinning[1]) as receiver,
        pinned(None if pinning is None else pinning[0]),
    ):
        for size in sizes:
            progress(f"throughput: warming up at {size_label(size)}")
            for peer in runnable:
                series = _calibrate(receiver, peer, size, budget)
                by_key[peer.name, size] = series
                result.series.append(series)
        for round_ in range(budget.repeat):
            progress(f"throughput: round {round_ + 1}/{budget.repeat}")
            for size in sizes:
                for peer in rotated(runnable, round_):
                    series = by_key[peer.name, size]
                    outcome = _run(receiver, peer, size, b"x" * series.unit, series.count)
                    series.seconds.append(outcome.seconds)
    return result
