"""``python -m trio_bufwriter demo``: many small writes over loopback TCP, two ways.

Sends N messages of the same size to a receiver in another process (see
:mod:`trio_bufwriter._loopback`), once through a :class:`BufferedWriter`
(``write(); await drain()`` per message) and once with one
``await stream.send_all()`` per message, alternating the two R times, and
prints the median rates side by side.

Each run gets its own connection.  Its clock starts once the connection is
open (so creating the writer and starting its sender task are charged to it)
and stops when the stream is closed *and* the receiver has reported, over its
control pipe, how many bytes it read before end-of-file.  Every count is
checked against ``messages * size``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from time import perf_counter
from typing import TextIO, final

import trio

import trio_bufwriter

from ._loopback import RECV_BUFFER_SIZE, LoopbackReceiver, ReceiverError, start_receiver

#: The hot loops look at the clock when ``i & _TICK_MASK == 0``: every 16384
#: messages, so that progress reporting costs next to nothing.
_TICK_MASK = 0x3FFF
#: Redraw the live progress line at most this often (seconds).
_REDRAW_INTERVAL = 0.1
#: Messages in the untimed warm-up run of each method (at most).
_WARMUP_MESSAGES = 10_000

BUFWRITER = "trio_bufwriter"
SEND_ALL = "trio send_all"


class DemoError(Exception):
    """The demo could not do what it set out to: reported as ``error: ...``."""


# ----------------------------------------------------------------------
# Progress on stderr


@final
class _Progress:
    """Shows which run is going and how far it got, on *stream*.

    On a terminal, one line redrawn in place (``\\r``) at most every
    :data:`_REDRAW_INTERVAL` seconds.  Otherwise one line per finished run.
    """

    __slots__ = ("_label", "_last_draw", "_live", "_stream", "_total", "_width")

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._label = ""
        self._total = 0
        self._last_draw = 0.0
        self._width = 0

    def start_run(self, label: str, total: int) -> None:
        """A run of *total* messages, described by *label*, is starting."""
        self._label = label
        self._total = total
        if self._live:
            self._draw(0)

    def tick(self, sent: int) -> None:
        """*sent* messages of the current run have been sent (redraws if due)."""
        if self._live and perf_counter() - self._last_draw >= _REDRAW_INTERVAL:
            self._draw(sent)

    def end_run(self, seconds: float) -> None:
        """The current run finished, in *seconds*."""
        if self._live:
            self._draw(self._total)
        else:
            print(f"{self._label}: {self._total:,} messages in {seconds:.3f} s", file=self._stream)

    def clear(self) -> None:
        """Erase the live line, if one is showing."""
        if self._live and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0

    def _draw(self, sent: int) -> None:
        line = f"{self._label}: {sent:,}/{self._total:,} messages"
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = max(self._width, len(line))
        self._last_draw = perf_counter()


# ----------------------------------------------------------------------
# The two ways of sending

_Sender = Callable[[trio.SocketStream, bytes, int, _Progress], Awaitable[None]]


async def _send_buffered(
    stream: trio.SocketStream, message: bytes, count: int, progress: _Progress
) -> None:
    """Send *message* *count* times through a BufferedWriter, then close *stream*."""
    async with trio_bufwriter.open_buffered_writer(stream) as writer:
        for i in range(count):
            if not i & _TICK_MASK:
                progress.tick(i)
            writer.write(message)
            await writer.drain()


async def _send_unbuffered(
    stream: trio.SocketStream, message: bytes, count: int, progress: _Progress
) -> None:
    """Send *message* *count* times with ``stream.send_all``, then close *stream*."""
    async with stream:
        for i in range(count):
            if not i & _TICK_MASK:
                progress.tick(i)
            await stream.send_all(message)


_SENDERS: dict[str, _Sender] = {BUFWRITER: _send_buffered, SEND_ALL: _send_unbuffered}


# ----------------------------------------------------------------------
# Measuring


@dataclass
class DemoResult:
    """What a demo measured: each method's run times in seconds, in run order."""

    messages: int
    size: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    #: Runs whose byte count the receiver confirmed, warm-up runs included.
    verified_runs: int = 0

    def median_rate(self, method: str) -> float:
        """The median of *method*'s per-run rates, in messages per second."""
        return statistics.median(self.messages / s for s in self.seconds[method])


def _check_count(label: str, received: int, count: int, size: int) -> None:
    """Raise :exc:`DemoError` unless the receiver got exactly ``count * size`` bytes."""
    expected = count * size
    if received != expected:
        raise DemoError(
            f"the receiver got {received:,} bytes in {label}, expected {expected:,} "
            f"({count:,} messages x {size:,} bytes)"
        )


async def _timed_run(
    receiver: LoopbackReceiver,
    label: str,
    send: _Sender,
    message: bytes,
    count: int,
    progress: _Progress,
) -> float:
    """Do one run: connect, *send* *count* messages, check the receiver's count.

    Returns the seconds from connected to count received.
    """
    progress.start_run(label, count)
    receiver.expect_connection()
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", receiver.port)
        start = perf_counter()
        await send(stream, message, count, progress)
    except (trio.BrokenResourceError, OSError) as exc:
        raise DemoError(f"{label} failed: {exc!r}") from exc
    received = await receiver.receive_count()
    seconds = perf_counter() - start
    _check_count(label, received, count, len(message))
    progress.end_run(seconds)
    return seconds


async def _measure(
    receiver: LoopbackReceiver, result: DemoResult, repeat: int, progress: _Progress
) -> None:
    """Fill in *result*: one untimed warm-up run per method, then *repeat*
    timed rounds, each running every method once."""
    message = b"x" * result.size
    warmup = min(result.messages, _WARMUP_MESSAGES)
    for method, send in _SENDERS.items():
        await _timed_run(receiver, f"{method} warm-up", send, message, warmup, progress)
        result.verified_runs += 1
    for run in range(1, repeat + 1):
        for method, send in _SENDERS.items():
            label = f"{method} run {run}/{repeat}"
            seconds = await _timed_run(receiver, label, send, message, result.messages, progress)
            result.seconds.setdefault(method, []).append(seconds)
            result.verified_runs += 1


def measure(messages: int, size: int, repeat: int, progress: _Progress) -> DemoResult:
    """Start a receiver process and measure both methods against it."""
    result = DemoResult(messages, size)
    with start_receiver() as receiver:
        try:
            trio.run(_measure, receiver, result, repeat, progress)
        finally:
            progress.clear()
    return result


# ----------------------------------------------------------------------
# Reporting


def _machine() -> str:
    """One line of facts about this machine and software."""
    cpus = f"{os.cpu_count()} CPUs"
    if hasattr(os, "sched_getaffinity"):
        usable = len(os.sched_getaffinity(0))
        if usable != os.cpu_count():
            cpus += f" ({usable} usable)"
    return (
        f"{cpus}, {platform.python_implementation()} {platform.python_version()}, "
        f"trio {trio.__version__}, trio_bufwriter {trio_bufwriter.__version__}, "
        f"{platform.platform(terse=True)}"
    )


def _header(messages: int, size: int, repeat: int, command: str) -> list[str]:
    """The lines that say what is being measured, how, and where."""
    warmup = min(messages, _WARMUP_MESSAGES)
    runs = "1 timed run" if repeat == 1 else f"{repeat} timed runs"
    return [
        f"trio_bufwriter demo: {messages:,} messages x {size:,} bytes over loopback TCP, "
        f"{runs} per method, interleaved",
        f"command:  {command}",
        f"date:     {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine:  {_machine()}",
        f"receiver: a separate process (spawn), blocking recv_into a "
        f"{RECV_BUFFER_SIZE / 2**20:g} MiB buffer",
        "clock:    from connected until closed and the receiver's byte count is in,",
        f"          after one untimed {warmup:,}-message warm-up run per method",
    ]


def _align(rows: Sequence[Sequence[str]]) -> list[str]:
    """Lay *rows* out as a table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _report(result: DemoResult) -> list[str]:
    """The results table, the run times, and what the receiver verified."""
    buffered = result.median_rate(BUFWRITER)
    plain = result.median_rate(SEND_ALL)
    ratio = f"{buffered / plain:.2f}x"
    mb = result.size / 1e6
    table = _align(
        [
            ["", BUFWRITER, SEND_ALL, "ratio"],
            ["msgs/s (median)", f"{buffered:,.0f}", f"{plain:,.0f}", ratio],
            ["MB/s (median)", f"{buffered * mb:,.2f}", f"{plain * mb:,.2f}", ratio],
        ]
    )
    times = _align(
        [
            [f"  {method}", *(f"{s:.3f}" for s in seconds)]
            for method, seconds in result.seconds.items()
        ]
    )
    timed = sum(len(seconds) for seconds in result.seconds.values())
    return [
        *table,
        "",
        "seconds per run, in run order:",
        *times,
        "",
        f"receiver verified the byte count of all {result.verified_runs} runs "
        f"({timed} timed at {result.messages * result.size:,} bytes each, "
        f"{result.verified_runs - timed} warm-up)",
    ]


def run_demo(
    messages: int,
    size: int,
    repeat: int,
    *,
    command: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the demo, printing to *out* (stdout) with progress on *err* (stderr).

    *command* is the command line to quote in the output.  Returns the exit
    status: 0; 1 after printing ``error: ...`` to *err* if a run failed or
    the receiver got the wrong number of bytes; 130 if interrupted.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    print("\n".join(_header(messages, size, repeat, command)), end="\n\n", file=out, flush=True)
    try:
        result = measure(messages, size, repeat, _Progress(err))
    except (DemoError, ReceiverError) as exc:
        print(f"error: {exc}", file=err, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=err, flush=True)
        return 130
    print("\n".join(_report(result)), file=out, flush=True)
    return 0
