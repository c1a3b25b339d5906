"""What to measure and how much: the command's options and the two budgets."""

from __future__ import annotations

from dataclasses import dataclass, replace

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: Message sizes measured by default, 16 B to 1 MiB.
DEFAULT_SIZES = (16, 64, KiB, 16 * KiB, MiB)
#: A single run (or subprocess) that takes longer than this is taken to hang:
#: the bench dumps its stacks and exits with status 1.
RUN_TIMEOUT = 60.0
#: The parts of the suite, in the order they run.
PARTS = ("throughput", "latency", "memory", "micro")


@dataclass(frozen=True)
class Budget:
    """How much work each part does: one budget for a full run, one for ``--quick``."""

    #: Timed rounds per (peer, size); every round runs every peer once.
    repeat: int
    #: The length a timed throughput run is sized to, from its warm-up rate.
    run_seconds: float
    #: A warm-up run shorter than this is repeated with more messages.
    calibrate_seconds: float
    #: At most this many bytes per throughput run...
    max_run_bytes: int
    #: ... and at most this many for write-only, which holds them all in memory.
    max_buffered_bytes: int
    #: Timed ping-pong round trips per (client, placement), over all rounds.
    round_trips: int
    #: Untimed round trips at the start of each ping-pong connection.
    warmup_round_trips: int
    #: Idle writers created for the per-writer memory figure.
    idle_writers: int
    #: Bytes pushed for the peak-RSS figure, in 1 MiB writes.
    push_bytes: int
    #: Calls per timeit repeat in the write() micro-benchmark.
    micro_calls: int
    #: timeit repeats per statement in the micro-benchmark.
    micro_repeat: int


FULL = Budget(
    repeat=5,
    run_seconds=0.25,
    calibrate_seconds=0.05,
    max_run_bytes=2 * GiB,
    max_buffered_bytes=128 * MiB,
    round_trips=20_000,
    warmup_round_trips=500,
    idle_writers=10_000,
    push_bytes=GiB,
    micro_calls=200_000,
    micro_repeat=9,
)

QUICK = Budget(
    repeat=3,
    run_seconds=0.08,
    calibrate_seconds=0.02,
    max_run_bytes=512 * MiB,
    max_buffered_bytes=64 * MiB,
    round_trips=3_000,
    warmup_round_trips=200,
    idle_writers=10_000,
    push_bytes=GiB,
    micro_calls=100_000,
    micro_repeat=5,
)


@dataclass(frozen=True)
class BenchOptions:
    """The ``bench`` command's options."""

    quick: bool = False
    sizes: tuple[int, ...] = DEFAULT_SIZES
    #: Timed rounds; None means the budget's.
    repeat: int | None = None
    json_path: str | None = None
    chart_path: str | None = None
    #: Pin the throughput sender and receiver to different CPUs.
    pin: bool = False
    only: tuple[str, ...] = PARTS

    @property
    def budget(self) -> Budget:
        """The budget for this run, with ``--repeat`` applied."""
        base = QUICK if self.quick else FULL
        if self.repeat is None:
            return base
        return replace(base, repeat=self.repeat)


def size_label(size: int) -> str:
    """``16 B``, ``1 KiB``, ``16 KiB``, ``1 MiB``; exact sizes otherwise in bytes."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"
