"""The write() micro-benchmark: the cost of one ``writer.write(msg)`` of 64 bytes
next to a bare ``buf += msg`` on a bytearray, timeit-style, in the same run.

The writer wraps a null stream stub and its sender task is running, as in
real use: the first write after the sender parks wakes it, the others only
append.  Every statement is timed ``micro_calls`` times per repeat (with the
garbage collector off, as :mod:`timeit` does), the statements' order rotated
each repeat; between repeats the writer is flushed and the bytearray starts
empty again, so both grow the same way.  The figures are nanoseconds per call
including timeit's loop; the empty loop is measured too, for reference.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from trio_bufwriter import open_buffered_writer

from ._config import Budget
from ._memory import NullStream
from ._stats import median, rotated

#: The message size of the micro-benchmark.
MESSAGE_SIZE = 64

BARE = "buf += msg"
WRITE = "writer.write(msg)"
BOUND = "write(msg), bound method"
EMPTY = "empty loop"

#: name -> (setup, statement); ``writer`` and ``msg`` are globals of the timer.
STATEMENTS: dict[str, tuple[str, str]] = {
    BARE: ("buf = bytearray(); m = msg", "buf += m"),
    WRITE: ("w = writer; m = msg", "w.write(m)"),
    BOUND: ("write = writer.write; m = msg", "write(m)"),
    EMPTY: ("m = msg", "pass"),
}


@dataclass
class MicroResult:
    """Nanoseconds per call of each statement, one figure per repeat."""

    calls: int
    repeat: int
    ns_per_call: dict[str, list[float]] = field(default_factory=dict)

    def median_ns(self, name: str) -> float:
        """The median over the repeats of *name*'s nanoseconds per call."""
        return median(self.ns_per_call[name])


async def _measure(result: MicroResult) -> None:
    message = b"x" * MESSAGE_SIZE
    async with open_buffered_writer(NullStream()) as writer:
        names = list(STATEMENTS)
        for round_ in range(result.repeat):
            for name in rotated(names, round_):
                setup, statement = STATEMENTS[name]
                timer = timeit.Timer(statement, setup, globals={"writer": writer, "msg": message})
                seconds = timer.timeit(result.calls)
                result.ns_per_call.setdefault(name, []).append(seconds / result.calls * 1e9)
                await writer.flush()


def measure_micro(budget: Budget, *, progress: Callable[[str], None]) -> MicroResult:
    """Run the micro-benchmark (see the module's docstring)."""
    progress(
        f"micro: write() vs bytearray +=, {budget.micro_repeat} x {budget.micro_calls:,} calls"
    )
    result = MicroResult(budget.micro_calls, budget.micro_repeat)
    trio.run(_measure, result)
    return result
