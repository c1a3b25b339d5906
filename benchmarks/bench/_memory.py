"""The memory benchmark, each figure from a fresh subprocess.

* Idle writers: ``N`` :class:`~trio_bufwriter.BufferedWriter`\\ s, each over a
  null :class:`trio.abc.SendStream` stub (it discards what it is sent) and
  each with its sender task running (``nursery.start(writer.run)``), all
  parked.  The stubs are made before the first reading, so what is counted is
  the writer, its buffer, its parking lots and its sender task (its trio
  ``Task``, coroutine frames, nursery bookkeeping), not the stream wrapped.
  Measured twice, in two processes: with :mod:`tracemalloc` (bytes traced
  after minus before, / N), and without it (the RSS delta / N, which also
  counts allocator slack).
* Pushing: 1 GiB in 1 MiB ``write(); await drain()`` steps (once with a
  ``bytes`` message, once with a ``bytearray``) through
  :func:`~trio_bufwriter.open_buffered_writer` over loopback TCP to a
  receiver process.  The RSS at the start (connection open, the 1 MiB message
  allocated) and the peak RSS (Linux ``VmHWM``, reset to the current RSS at
  the start through ``/proc/self/clear_refs`` where allowed, else
  ``ru_maxrss`` since the process began).

Run as ``python -m benchmarks.bench._memory idle N traced|rss`` or
``... push BYTES bytes|bytearray``; each prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import trio
import trio.testing
from trio.lowlevel import checkpoint

from trio_bufwriter import BufferedWriter, open_buffered_writer
from trio_bufwriter._loopback import start_receiver

from ._config import RUN_TIMEOUT, Budget, MiB, size_label
from ._throughput import BenchError

#: The write size of the peak-RSS push.
PUSH_WRITE_SIZE = MiB
#: The message types pushed: the writer may keep ``bytes`` by reference, and
#: has to copy a ``bytearray`` (which the caller may change after write()).
PUSH_KINDS = ("bytes", "bytearray")
#: The allowance above high water and two maximum sends in the peak-RSS target.
RSS_ALLOWANCE = 16 * MiB
#: Allocation sites listed in the idle-writer breakdown.
_TOP_SITES = 8


class NullStream(trio.abc.SendStream):
    """A stub stream: accepts and discards everything."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await checkpoint()

    async def aclose(self) -> None:
        await checkpoint()


# ----------------------------------------------------------------------
# Reading this process's memory


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not on Linux
        pass
    return None  # pragma: no cover - not on Linux


def rss_bytes() -> int | None:
    """This process's resident set size now, in bytes (None if unknown)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> int:
    """This process's peak resident set size, in bytes (VmHWM, else ru_maxrss)."""
    kib = _status_kib("VmHWM")
    if kib is None:  # pragma: no cover - not on Linux
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return kib * 1024


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); return whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:  # pragma: no cover - Linux < 4.0, or not Linux
        return False
    return True


# ----------------------------------------------------------------------
# The subprocess side


def _where(frame: tracemalloc.Frame) -> str:
    """``package/module.py:line`` for a traceback frame (the path cut at site-packages)."""
    if frame.filename == __file__:
        # The only allocation of ours still alive is at BufferedWriter(stub).
        return "the BufferedWriter object itself"
    path = frame.filename.replace("\\", "/")
    for marker in ("/site-packages/", "/trio_bufwriter/", "/lib/python"):  # pragma: no branch
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/trio_bufwriter/":
                path = "trio_bufwriter/" + path
            break
    return f"{path}:{frame.lineno}"


def _top_sites(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int
) -> list[dict[str, Any]]:
    """The allocation sites that grew most, per writer."""
    return [
        {
            "site": _where(stat.traceback[0]),
            "bytes_per_writer": stat.size_diff / count,
            "blocks_per_writer": stat.count_diff / count,
        }
        for stat in after.compare_to(before, "lineno")[:_TOP_SITES]
    ]


async def _idle(count: int, traced: bool) -> dict[str, Any]:
    if traced:
        tracemalloc.start()
    stubs = [NullStream() for _ in range(count)]
    writers: list[BufferedWriter | None] = [None] * count
    # Taken before the first reading, so that it is counted in both.
    snapshot = tracemalloc.take_snapshot() if traced else None
    gc.collect()
    traced_before = tracemalloc.get_traced_memory()[0] if traced else None
    rss_before = rss_bytes()
    async with trio.open_nursery() as nursery:
        for i, stub in enumerate(stubs):
            writer = BufferedWriter(stub)
            await nursery.start(writer.run)
            writers[i] = writer
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        traced_after = tracemalloc.get_traced_memory()[0] if traced else None
        rss_after = rss_bytes()
        top = [] if snapshot is None else _top_sites(snapshot, tracemalloc.take_snapshot(), count)
        for made in writers:
            assert made is not None
            await made.aclose()
    if traced:
        tracemalloc.stop()
    return {
        "writers": count,
        "stream": "a null trio.abc.SendStream stub (not counted)",
        "traced": traced,
        "traced_before": traced_before,
        "traced_after": traced_after,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "top_sites": top,
    }


async def _push(total: int, kind: str) -> dict[str, Any]:
    message: bytes | bytearray = b"x" * PUSH_WRITE_SIZE
    if kind == "bytearray":
        message = bytearray(message)
    writes = total // PUSH_WRITE_SIZE
    with start_receiver() as receiver:
        receiver.expect_connection()
        stream = await trio.open_tcp_stream("127.0.0.1", receiver.port)
        gc.collect()
        start_rss = rss_bytes()
        reset = _reset_peak_rss()
        start = perf_counter()
        async with open_buffered_writer(stream) as writer:
            high_water, max_send_size = writer.high_water, writer.max_send_size
            for _ in range(writes):
                writer.write(message)
                await writer.drain()
        received = receiver.wait_count()
        seconds = perf_counter() - start
    return {
        "kind": kind,
        "bytes": writes * PUSH_WRITE_SIZE,
        "write_size": PUSH_WRITE_SIZE,
        "received": received,
        "seconds": seconds,
        "start_rss": start_rss,
        "peak_rss": peak_rss_bytes(),
        "peak_reset_at_start": reset,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "high_water": high_water,
        "max_send_size": max_send_size,
    }


def _main(argv: list[str]) -> None:
    if argv[0] == "idle":
        result = trio.run(_idle, int(argv[1]), argv[2] == "traced")
    else:
        result = trio.run(_push, int(argv[1]), argv[2])
    print(json.dumps(result))


# ----------------------------------------------------------------------
# The parent side


@dataclass
class MemoryResult:
    """The memory figures: the subprocesses' raw readings, and figures derived from them."""

    idle_traced: dict[str, Any]
    idle_rss: dict[str, Any]
    #: One reading per kind of 1 MiB message written: ``bytes``, ``bytearray``.
    pushes: list[dict[str, Any]]

    def traced_per_writer(self) -> float:
        """tracemalloc bytes per idle writer, its sender task included."""
        data = self.idle_traced
        return float(data["traced_after"] - data["traced_before"]) / float(data["writers"])

    def rss_per_writer(self) -> float | None:
        """RSS bytes per idle writer (measured without tracemalloc), if known."""
        data = self.idle_rss
        if data["rss_after"] is None or data["rss_before"] is None:
            return None
        return float(data["rss_after"] - data["rss_before"]) / float(data["writers"])


def push_delta(push: dict[str, Any]) -> int | None:
    """Peak RSS minus start RSS of a push reading, if known."""
    if push["start_rss"] is None:
        return None
    return int(push["peak_rss"] - push["start_rss"])


def push_bound(push: dict[str, Any]) -> int:
    """high_water + 2 * max_send_size + 16 MiB: the target for :func:`push_delta`."""
    return int(push["high_water"] + 2 * push["max_send_size"] + RSS_ALLOWANCE)


def _subprocess(*args: str) -> dict[str, Any]:
    """Run this module in a fresh interpreter with *args*; return its JSON."""
    command = [sys.executable, "-m", __name__, *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=2 * RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - a hung subprocess
        raise BenchError(f"memory benchmark {' '.join(args)} timed out") from exc
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:]
        raise BenchError(
            f"memory benchmark {' '.join(args)} failed (exit {done.returncode}): "
            + " | ".join(tail)
        )
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def measure_memory(budget: Budget, *, progress: Callable[[str], None]) -> MemoryResult:
    """Run the three memory subprocesses and check the push's byte count."""
    progress(f"memory: {budget.idle_writers:,} idle writers (tracemalloc)")
    traced = _subprocess("idle", str(budget.idle_writers), "traced")
    progress(f"memory: {budget.idle_writers:,} idle writers (RSS)")
    rss = _subprocess("idle", str(budget.idle_writers), "rss")
    pushes = []
    for kind in PUSH_KINDS:
        progress(f"memory: pushing {size_label(budget.push_bytes)} in 1 MiB {kind} writes")
        push = _subprocess("push", str(budget.push_bytes), kind)
        if push["received"] != push["bytes"]:  # pragma: no cover - a receiver bug
            raise BenchError(
                f"the receiver got {push['received']:,} bytes of the {kind} push, "
                f"expected {push['bytes']:,}"
            )
        pushes.append(push)
    return MemoryResult(traced, rss, pushes)


if __name__ == "__main__":
    _main(sys.argv[1:])
