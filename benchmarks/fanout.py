"""``python -m benchmarks fanout``: one publisher, many subscribers, one that never reads.

The slow-consumer load test.  This process is the server: a Trio loop that
listens on loopback, wraps every connection it accepts with
:func:`~trio_bufwriter.open_buffered_stream` (``max_buffer``,
``overflow="abort"``, ``stall_timeout``, ``notsent_lowat``), subscribes it to
one :class:`~trio_bufwriter.Broadcaster`, and broadcasts fixed-size messages
as fast as it can for S seconds (or at ``--rate`` messages a second): a batch
of broadcasts (half of high water's worth per subscriber, see
:func:`batch_size`), then a checkpoint so that the senders run.  It never
waits for any one subscriber's ``drain()``: it only pauses while more than a
quorum of the subscribers (1 %, at least one) are over their high-water
mark, which one stuck client alone can never be.

The clients are a separate process (multiprocessing "spawn") running a plain
``selectors`` loop: the fast clients read as fast as they can and check the
sequence number at the head of every message; the stuck client connects and
never reads.

Two phases in one run, each with connections of its own: (a) N-1 fast
clients alone, (b) the same N-1 plus the stuck client; before them, an
unmeasured warm-up like (a), because whichever phase runs first in a process
runs some 5 % slower.  glibc's malloc thresholds are fixed for the run (see
:func:`fix_malloc_thresholds`), for the same reason.  Targets:

* throughput: the fast clients' received MB/s in (b) is at least
  :data:`THROUGHPUT_TARGET` times that of (a).  Each is measured by the
  client process between two marks the server sends when publishing starts
  and just before it stops: bytes received in between over the time in
  between, both on the client's clock.
* cut-off: the Broadcaster drops the stuck client (its write failed with
  :exc:`~trio_bufwriter.BufferLimitError` or
  :exc:`~trio_bufwriter.StallTimeoutError` as cause), and the client sees its
  connection end.  Phase (b) publishes for S seconds *and* until the stuck
  client is cut off (for :data:`CUT_OFF_TIMEOUT` more seconds at most), so
  the verdict depends on amounts (bytes past ``max_buffer``), not on how
  fast the machine is that minute.
* memory: the server's peak RSS (``VmHWM``) above its RSS at start stays
  below ``clients x high_water + max_buffer + 32 MiB``.
* delivery: every fast client receives every message, in order, with no gap,
  and none of them is dropped; the stuck client's bytes are a gap-free prefix.

Control pipe protocol, parent (server) to client process::

    client -> parent   "ready", once started
    parent -> client   ("connect", port, fast, stuck): open the connections
    client -> parent   the number of connections opened, or an error string
    parent -> client   "mark"
    client -> parent   (client clock, bytes the fast clients received so far,
                        the client process's CPU seconds so far)
    parent -> client   "finish": read every connection to its end
    client -> parent   a _ClientReport
    parent -> client   None (or closing the pipe): exit
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import selectors
import signal
import socket
import struct
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TextIO, final

import trio

from trio_bufwriter import (
    DEFAULT_HIGH_WATER,
    Broadcaster,
    BufferLimitError,
    StallTimeoutError,
    open_buffered_stream,
)
from trio_bufwriter import DEFAULT_NOTSENT_LOWAT as WRITER_NOTSENT_LOWAT
from trio_bufwriter._cli import positive_float, positive_int

from ._worker import Worker, WorkerKind, ensure_fd_limit
from .soak import rss_bytes

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from trio_bufwriter import BufferedStream, Subscriber

#: What a throughput miss does to the run's result: fail it, or only report it.
SpeedVerdict = Literal["fail", "report"]

#: The fast clients' received throughput with the stuck client present must be
#: at least this share of the throughput without it.
THROUGHPUT_TARGET = 0.90
#: The memory bound's allowance on top of ``clients x high_water + max_buffer``.
MEMORY_SLACK = 32 * 1024 * 1024
#: Phase (b) goes on publishing after its S seconds until the stuck client is
#: cut off, for at most this many seconds more: a slow or loaded machine takes
#: longer to push max_buffer's worth of bytes, but it gets there.
CUT_OFF_TIMEOUT = 60.0

DEFAULT_CLIENTS = 500
DEFAULT_SECONDS = 10.0
DEFAULT_MESSAGE_SIZE = 256
DEFAULT_MAX_BUFFER = 1024 * 1024
DEFAULT_STALL_TIMEOUT = 2.0
#: The subscribers' ``TCP_NOTSENT_LOWAT``: how much the kernel may hold unsent
#: on top of the writer's buffer.  The writer's default, 1 MiB, is sized for
#: bulk transfers; a fan-out sends each subscriber batches of high_water / 2,
#: and with 1 MiB a stuck subscriber's socket took some 1.2 MB more before
#: its writer reached max_buffer (cut off after 2.3 to 3.2 s instead of 1.2
#: to 1.5 s, at the same throughput for everyone else).  None: the writer's
#: default (not the writer's None, which would leave trio's 16 KiB).
DEFAULT_NOTSENT_LOWAT: int | None = 64 * 1024

#: Each message starts with its sequence number, in native byte order.
_SEQ = struct.Struct("=Q")
#: What each client sends first: its id, and 1 if it is the stuck client.
_HEADER = struct.Struct("!IB")
#: The publisher pauses while more than this share of the subscribers (and
#: more than one) are over high water.
_QUORUM_SHARE = 0.01
#: The warm-up publishes this long (at most half a phase).  Whatever phase
#: runs first in a process was some 5 % slower than the same phase run again
#: (50 clients, 2 s phases), which would flatter the b/a ratio.
_WARMUP = 1.0
#: How long one such pause sleeps before looking again.
_PAUSE = 0.001
#: Sample RSS this often (seconds); print a progress line every second.
_SAMPLE_INTERVAL = 0.1
# glibc's mallopt() parameters, and the values fix_malloc_thresholds() sets.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_TRIM_THRESHOLD = 128 * 1024 * 1024
_MMAP_THRESHOLD = 32 * 1024 * 1024
#: The client process's one receive buffer.
_RECV_SIZE = 256 * 1024

# Generous bounds on the phases around the load, so a run never hangs.
_CONNECT_TIMEOUT = 60.0
_CLOSE_TIMEOUT = 10.0
_FINISH_TIMEOUT = 30.0
#: (Longer than the client process's own bounds.)
_REPLY_TIMEOUT = 2 * max(_CONNECT_TIMEOUT, _FINISH_TIMEOUT)


class FanoutError(Exception):
    """The load test could not run (or finish): reported as ``error: ...``."""


# ----------------------------------------------------------------------
# Pure helpers


def make_message(seq: int, filler: bytes) -> bytes:
    """Message number *seq*: its sequence number, then *filler*."""
    return _SEQ.pack(seq) + filler


def check_sequence(chunk: memoryview, message_size: int, expected: int) -> tuple[int, int | None]:
    """Check the whole messages in *chunk* against consecutive numbers from *expected*.

    *chunk* holds whole messages of *message_size* bytes (a multiple of 8),
    each starting with its sequence number.  Returns the sequence number the
    next message should have, and the index in *chunk* of the first message
    whose number is wrong (None if all are right).  After a wrong number
    the count carries on from the last message, so that one gap is reported
    once.
    """
    with chunk.cast("Q") as words, words[:: message_size // 8] as heads:
        seqs = heads.tolist()
    if not seqs:
        return expected, None
    if seqs == list(range(expected, expected + len(seqs))):
        return expected + len(seqs), None
    first_bad = next(i for i, seq in enumerate(seqs) if seq != expected + i)
    return seqs[-1] + 1, first_bad


def drop_reason(error: BaseException) -> str:
    """Name what made a Broadcaster drop a subscriber.

    The limit's own error if it is *error* or its cause (``overflow="abort"``
    and ``stall_timeout`` report a :exc:`trio.BrokenResourceError` caused by
    it), else the error's type with its cause's in brackets.
    """
    cause = error.__cause__
    for candidate in (error, cause):
        if isinstance(candidate, BufferLimitError | StallTimeoutError):
            return type(candidate).__name__
    name = type(error).__name__
    return name if cause is None else f"{name} ({type(cause).__name__})"


def memory_bound(clients: int, high_water: int, max_buffer: int) -> int:
    """The most the server's RSS may grow: every client at high water, one at
    the limit, and :data:`MEMORY_SLACK` for everything else."""
    return clients * high_water + max_buffer + MEMORY_SLACK


def batch_size(high_water: int, message_size: int) -> int:
    """Messages the publisher broadcasts between two checkpoints: half of high
    water's worth per subscriber, so that a subscriber whose sender keeps up
    (one batch in flight, the next one queued) stays at or below high water."""
    return max(1, high_water // (2 * message_size))


def warmup_seconds(seconds: float) -> float:
    """How long the unmeasured warm-up before phase (a) publishes."""
    return min(_WARMUP, seconds / 2)


def quorum(subscribers: int) -> int:
    """How many subscribers may be over high water before the publisher pauses."""
    return max(1, int(subscribers * _QUORUM_SHARE))


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size (``VmHWM``), or None if unknown."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return None
    return None  # pragma: no cover - a Linux without VmHWM


def reset_peak_rss() -> bool:
    """Restart this process's ``VmHWM`` from its RSS now; return whether it could.

    (Linux 4.0 and later: writing 5 to ``/proc/self/clear_refs``.)  So that
    the peak measured is the run's, not that of whatever ran before in the
    same process.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:  # pragma: no cover - not Linux, or not allowed
        return False
    return True


def fix_malloc_thresholds() -> bool:
    """Fix glibc's trim and mmap thresholds for this process; return whether it could.

    By default glibc adjusts both as the program runs, and gives freed heap
    back to the system (trims it) whenever more than the trim threshold is
    free at its top.  A fan-out frees and reallocates every subscriber's
    buffer every round, so a phase spends a share of its time trimming the
    heap and faulting the pages back in; but a stuck subscriber's growing
    buffer near the top of the heap stops the trimming, which made phase (b)
    some 5 % *faster* than phase (a) on the reference machine.  Fixed
    thresholds (no trimming below 128 MiB free, no mmap below 32 MiB) make
    both phases allocate alike, so the ratio measures the writer, not the
    allocator's heuristics.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) and mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    )


def _ensure_fd_limit(needed: int) -> None:
    ensure_fd_limit(needed, FanoutError, "--clients")


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


# ----------------------------------------------------------------------
# The client process


@dataclass
class ConnectionReport:
    """What one client connection saw."""

    id: int
    stuck: bool
    received: int = 0
    #: How it ended: "end-of-file", "reset", or None if it was still open.
    end: str | None = None
    #: The sequence number the next message would have had.
    next_seq: int = 0
    violations: int = 0
    first_violation: str | None = None


@dataclass
class _ClientReport:
    connections: list[ConnectionReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@final
class _ClientConnection:
    __slots__ = ("carry", "report", "sock")

    def __init__(self, sock: socket.socket, report: ConnectionReport) -> None:
        self.sock = sock
        self.report = report
        self.carry = b""


@final
class _Clients:
    """The client side: a selectors loop over the control pipe and the fast clients."""

    def __init__(self, control: Connection[object, object]) -> None:
        self.control = control
        self.selector = selectors.DefaultSelector()
        self.buffer = bytearray(_RECV_SIZE)
        self.view = memoryview(self.buffer)
        self.message_size = DEFAULT_MESSAGE_SIZE
        self.fast: list[_ClientConnection] = []
        self.stuck: _ClientConnection | None = None
        self.open_fast = 0
        self.fast_bytes = 0
        self.finish_by: float | None = None
        self.errors: list[str] = []

    def run(self) -> None:
        """Serve the parent's commands until it says stop (or goes away)."""
        self.selector.register(self.control.fileno(), selectors.EVENT_READ, None)
        self.control.send("ready")
        try:
            while True:
                for key, _ in self.selector.select(timeout=0.5):
                    if key.data is None:
                        if not self._obey():
                            return
                    else:
                        self._read(key.data)
                if self.finish_by is not None and (
                    not self.open_fast or time.monotonic() > self.finish_by
                ):
                    self._finish()
        finally:
            self._close_all()
            self.selector.close()

    def _obey(self) -> bool:
        try:
            command = self.control.recv()
        except EOFError:  # pragma: no cover - the parent died
            return False
        if command == "mark":
            self.control.send((time.perf_counter(), self.fast_bytes, time.process_time()))
        elif command == "finish":
            self.finish_by = time.monotonic() + _FINISH_TIMEOUT
        elif isinstance(command, tuple) and command[0] == "connect":
            _, port, fast, stuck, message_size = command
            try:
                self._connect(port, fast, stuck, message_size)
            except OSError as exc:
                self._close_all()
                self.control.send(f"connecting failed: {exc!r}")
            else:
                self.control.send(fast + stuck)
        else:
            return False
        return True

    def _connect(self, port: int, fast: int, stuck: int, message_size: int) -> None:
        self.message_size = message_size
        self.fast_bytes = 0
        self.errors = []
        for client_id in range(fast + stuck):
            is_stuck = client_id >= fast
            sock = socket.create_connection(("127.0.0.1", port), timeout=_CONNECT_TIMEOUT)
            conn = _ClientConnection(sock, ConnectionReport(client_id, is_stuck))
            sock.sendall(_HEADER.pack(client_id, is_stuck))
            if is_stuck:
                self.stuck = conn
            else:
                sock.setblocking(False)
                self.fast.append(conn)
                self.selector.register(sock, selectors.EVENT_READ, conn)
        self.open_fast = len(self.fast)

    def _read(self, conn: _ClientConnection) -> None:
        """Take what one fast connection has, check it, count it."""
        view = self.view
        carried = len(conn.carry)
        if carried:
            view[:carried] = conn.carry
        try:
            received = conn.sock.recv_into(view[carried:])
        except BlockingIOError:  # pragma: no cover - woken for nothing
            return
        except OSError as exc:
            self._ended(conn, "reset" if isinstance(exc, ConnectionResetError) else repr(exc))
            return
        if not received:
            self._ended(conn, "end-of-file")
            return
        conn.report.received += received
        self.fast_bytes += received
        self._take(conn, carried + received)

    def _take(self, conn: _ClientConnection, size: int) -> None:
        """Check the whole messages among the first *size* bytes of the buffer."""
        message_size = self.message_size
        whole = size - size % message_size
        report = conn.report
        if whole:
            with self.view[:whole] as chunk:
                report.next_seq, bad = check_sequence(chunk, message_size, report.next_seq)
            if bad is not None:
                report.violations += 1
                if report.first_violation is None:
                    offset = report.received - size + bad * message_size
                    report.first_violation = (
                        f"a wrong sequence number at byte {offset:,} (message {bad} of a read)"
                    )
        conn.carry = bytes(self.view[whole:size])

    def _ended(self, conn: _ClientConnection, how: str) -> None:
        conn.report.end = how
        if not conn.report.stuck:
            self.selector.unregister(conn.sock)
            self.open_fast -= 1
        conn.sock.close()

    def _read_stuck_to_its_end(self, conn: _ClientConnection) -> None:
        """Read what the stuck client never read, until its connection ends."""
        conn.sock.settimeout(max(0.1, (self.finish_by or 0) - time.monotonic()))
        view = self.view
        while True:
            carried = len(conn.carry)
            if carried:
                view[:carried] = conn.carry
            try:
                received = conn.sock.recv_into(view[carried:])
            except TimeoutError:  # pragma: no cover - the server never closed it
                return
            except OSError as exc:  # pragma: no cover - closed with a reset, not a FIN
                self._ended(conn, "reset" if isinstance(exc, ConnectionResetError) else repr(exc))
                return
            if not received:
                self._ended(conn, "end-of-file")
                return
            conn.report.received += received
            self._take(conn, carried + received)

    def _finish(self) -> None:
        if self.open_fast:  # pragma: no cover - the server did not close them
            self.errors.append(
                f"{self.open_fast:,} fast connections were still open {_FINISH_TIMEOUT:g} s "
                "after the server said it had finished"
            )
        if self.stuck is not None:
            self._read_stuck_to_its_end(self.stuck)
        report = _ClientReport(errors=self.errors)
        for conn in self.fast:
            report.connections.append(conn.report)
        if self.stuck is not None:
            report.connections.append(self.stuck.report)
        self._close_all()
        self.control.send(report)

    def _close_all(self) -> None:
        for conn in self.fast:
            if conn.report.end is None:  # pragma: no cover - only after a failure
                with suppress(KeyError, ValueError):
                    self.selector.unregister(conn.sock)
                conn.sock.close()
        if self.stuck is not None:
            self.stuck.sock.close()
        self.fast = []
        self.stuck = None
        self.open_fast = 0
        self.finish_by = None


def _clients_main(control: Connection[object, object]) -> None:
    """Run the client side until the parent says stop: a process's (or thread's) target."""
    with control:
        _Clients(control).run()


def _clients_process_main(  # pragma: no cover - runs in the child
    control: Connection[object, object], clients: int
) -> None:
    """The client process's target."""
    # The parent decides when this process ends (and Ctrl-C reaches both).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _ensure_fd_limit(clients + 256)
    _clients_main(control)


ClientSide = WorkerKind


@final
class _ClientHandle:
    """The server's handle on the running client side."""

    def __init__(self, clients: int, kind: ClientSide) -> None:
        self._worker = Worker(
            kind,
            _clients_process_main,
            _clients_main,
            (clients,) if kind == "process" else (),
            name="trio_bufwriter fanout clients",
            what="client process",
            error=FanoutError,
        )
        try:
            ready = self._worker.recv(_REPLY_TIMEOUT)
        except BaseException:  # pragma: no cover - it died starting
            self.close()
            raise
        if ready != "ready":  # pragma: no cover
            self.close()
            raise FanoutError(f"the client process sent {ready!r} instead of 'ready'")

    def send(self, command: object) -> None:
        self._worker.send(command)

    async def ask(self, command: object) -> object:
        """Send *command* and wait (in Trio) for the answer."""
        return await self._worker.ask(command, _REPLY_TIMEOUT)

    def close(self) -> None:
        self._worker.close()


# ----------------------------------------------------------------------
# The server side


@dataclass
class Drop:
    """A subscriber the Broadcaster dropped."""

    client: int
    stuck: bool
    #: Seconds into the phase's publishing.
    at: float
    #: What cut it off (see :func:`drop_reason`), and the error's message.
    reason: str
    detail: str


@dataclass
class PhaseResult:
    """What one phase measured."""

    name: str
    fast: int
    stuck: int
    #: Seconds of publishing.
    seconds: float
    #: Whether publishing ran to its end (and the phase's connections closed).
    done: bool = False
    #: The client-side window between the two marks, and what the fast
    #: clients received in it.
    window: float = 0.0
    window_bytes: int = 0
    #: CPU seconds the server and the client process used in the window.
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    messages: int = 0
    #: The highest RSS sampled during the phase, above the run's start.
    sampled_peak: int = 0
    #: The most bytes any one writer held, among the fast clients' and the stuck one's.
    peak_buffered_fast: int = 0
    peak_buffered_stuck: int = 0
    #: The fast clients' writers' bytes sent and sends made.
    fast_bytes_sent: int = 0
    fast_send_calls: int = 0
    pauses: int = 0
    paused_seconds: float = 0.0
    dropped: list[Drop] = field(default_factory=list)
    connections: list[ConnectionReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """The fast clients' received bytes per second, in the window."""
        return self.window_bytes / self.window if self.window > 0 else 0.0

    @property
    def per_cpu(self) -> float:
        """The fast clients' received bytes per CPU-second of the server, in the window."""
        return self.window_bytes / self.server_cpu if self.server_cpu > 0 else 0.0

    @property
    def stuck_drop(self) -> Drop | None:
        return next((drop for drop in self.dropped if drop.stuck), None)

    @property
    def stuck_connection(self) -> ConnectionReport | None:
        return next((conn for conn in self.connections if conn.stuck), None)


@dataclass
class FanoutResult:
    """What a fan-out run measured, and its verdicts."""

    clients: int
    seconds: float
    message_size: int
    rate: float | None
    max_buffer: int
    high_water: int
    stall_timeout: float | None
    #: Each subscriber's notsent_lowat: bytes, or "leave" (trio's setting).
    notsent_lowat: int | Literal["leave"] = WRITER_NOTSENT_LOWAT
    #: Whether a throughput miss fails the run ("fail"), or is only
    #: reported ("report": for a machine that is busy with other work).
    speed_verdict: SpeedVerdict = "fail"
    phases: list[PhaseResult] = field(default_factory=list)
    rss_start: int = 0
    #: VmHWM (or the highest sample, where VmHWM is not known) above rss_start.
    peak_rss: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def bound(self) -> int:
        return memory_bound(self.clients, self.high_water, self.max_buffer)

    def phase(self, name: str) -> PhaseResult | None:
        """The phase called *name* ("warm-up", "a" or "b"), if it ran to its end."""
        return next((p for p in self.phases if p.name == name and p.done), None)

    @property
    def ratio(self) -> float | None:
        """Phase b's throughput over phase a's: what the target is about."""
        a, b = self.phase("a"), self.phase("b")
        if a is None or b is None or not a.throughput:
            return None
        return b.throughput / a.throughput

    @property
    def cpu_ratio(self) -> float | None:
        """The same per CPU-second of the server: what the stuck client cost in work,
        undisturbed by other programs taking CPU time from the server (reported only)."""
        a, b = self.phase("a"), self.phase("b")
        if a is None or b is None or not a.per_cpu:
            return None
        return b.per_cpu / a.per_cpu

    @property
    def throughput_ok(self) -> bool:
        ratio = self.ratio
        return ratio is not None and ratio >= THROUGHPUT_TARGET

    @property
    def cut_off_ok(self) -> bool:
        b = self.phase("b")
        if b is None:
            return False
        drop = b.stuck_drop
        conn = b.stuck_connection
        return (
            drop is not None
            and drop.reason in ("BufferLimitError", "StallTimeoutError")
            and conn is not None
            and conn.end is not None
        )

    @property
    def complete(self) -> bool:
        """Whether every phase ran to its end."""
        return bool(self.phases) and all(phase.done for phase in self.phases)

    @property
    def memory_ok(self) -> bool:
        # A peak of 0 bytes above the start is a pass (nothing grew), not a
        # missing measurement: rss_start says whether RSS could be read.
        return self.complete and self.rss_start > 0 and self.peak_rss < self.bound

    @property
    def delivery_ok(self) -> bool:
        return self.complete and not any(phase.problems for phase in self.phases)

    @property
    def correct(self) -> bool:
        """Every verdict that is not about speed passed: nothing lost or
        reordered, the stuck client cut off, memory within its bound."""
        return not self.problems and self.cut_off_ok and self.memory_ok and self.delivery_ok

    @property
    def passed(self) -> bool:
        return self.correct and (self.throughput_ok or self.speed_verdict == "report")


@final
class _Subscriber:
    __slots__ = ("id", "stuck", "writer")

    def __init__(self, client_id: int, stuck: bool, writer: BufferedStream) -> None:
        self.id = client_id
        self.stuck = stuck
        self.writer = writer


async def _receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:  # pragma: no cover - a client went away at once
            raise FanoutError("end-of-file inside a client's header")
        data += chunk
    return bytes(data)


@final
class _Phase:
    """One phase of the server side, inside its Trio run."""

    def __init__(
        self, config: FanoutResult, phase: PhaseResult, hub: Broadcaster, out: TextIO
    ) -> None:
        self.config = config
        self.phase = phase
        self.hub = hub
        self.out = out
        self.expected = phase.fast + phase.stuck
        self.subscribers: dict[Subscriber, _Subscriber] = {}
        self.all_in = trio.Event()
        self.stop = trio.Event()
        self.started = 0.0

    async def accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        for _ in range(self.expected):
            stream = await listener.accept()
            nursery.start_soon(self.serve, stream)

    async def serve(self, stream: trio.SocketStream) -> None:
        """One connection: read its header, subscribe it, hold it until the phase ends."""
        config = self.config
        client_id = -1
        try:
            async with open_buffered_stream(
                stream,
                high_water=config.high_water,
                max_buffer=config.max_buffer,
                overflow="abort",
                stall_timeout=config.stall_timeout,
                notsent_lowat=config.notsent_lowat,
            ) as writer:
                client_id, stuck = _HEADER.unpack(await _receive_exactly(stream, _HEADER.size))
                self.subscribers[writer] = _Subscriber(client_id, bool(stuck), writer)
                self.hub.add(writer)
                if len(self.subscribers) == self.expected:
                    self.all_in.set()
                await self.stop.wait()
                # Leaving the block flushes (the fast clients read everything)
                # and closes; a dropped subscriber's writer is quiet: its
                # error was reported to the broadcast that dropped it.
        except (  # pragma: no cover - a connection failed
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            FanoutError,
        ) as exc:
            self.phase.problems.append(f"server: connection of client {client_id}: {exc!r}")

    async def publish(self, clients: _ClientHandle) -> None:
        """Broadcast for the phase's seconds; mark the window on the client side."""
        config = self.config
        phase = self.phase
        hub = self.hub
        filler = b"." * (config.message_size - _SEQ.size)
        rate = config.rate
        batch = batch_size(config.high_water, config.message_size)
        allowed = quorum(len(hub))
        start_mark = await clients.ask("mark")
        cpu_start = time.process_time()
        self.started = start = trio.current_time()
        end = start + phase.seconds
        # A phase with a stuck client ends once it is cut off, not before.
        last = end + CUT_OFF_TIMEOUT if phase.stuck else end
        seq = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.progress, start, end)
            while True:
                for _ in range(batch):
                    dropped = hub.broadcast(make_message(seq, filler))
                    seq += 1
                    if dropped:
                        self.record_drops(dropped)
                await trio.lowlevel.checkpoint()
                now = trio.current_time()
                if now >= last or (now >= end and (phase.stuck_drop or not phase.stuck)):
                    break
                if rate is not None and start + seq / rate > now:
                    await trio.sleep_until(min(start + seq / rate, last))
                if sum(1 for writer in hub if writer.need_drain) > allowed:
                    phase.pauses += 1
                    paused = trio.current_time()
                    # Polling, not drain(): the condition spans every subscriber,
                    # and waiting in a writer's drain() would start its stall clock.
                    while (  # noqa: ASYNC110
                        sum(1 for writer in hub if writer.need_drain) > allowed
                        and trio.current_time() < last
                    ):
                        await trio.sleep(_PAUSE)
                    phase.paused_seconds += trio.current_time() - paused
            # Still publishing while the end mark is taken: the window holds
            # nothing but load.
            end_mark = await clients.ask("mark")
            phase.server_cpu = time.process_time() - cpu_start
            nursery.cancel_scope.cancel()
        phase.messages = seq
        assert isinstance(start_mark, tuple)
        assert isinstance(end_mark, tuple)
        phase.window = end_mark[0] - start_mark[0]
        phase.window_bytes = end_mark[1] - start_mark[1]
        phase.client_cpu = end_mark[2] - start_mark[2]
        for sub in self.subscribers.values():
            stats = sub.writer.statistics()
            if sub.stuck:
                phase.peak_buffered_stuck = max(phase.peak_buffered_stuck, stats.peak_buffered)
            else:
                phase.peak_buffered_fast = max(phase.peak_buffered_fast, stats.peak_buffered)
                phase.fast_bytes_sent += stats.bytes_sent
                phase.fast_send_calls += stats.send_calls

    def record_drops(self, dropped: list[tuple[Subscriber, Exception]]) -> None:
        at = trio.current_time() - self.started
        for writer, error in dropped:
            sub = self.subscribers[writer]
            cause = error.__cause__ or error
            drop = Drop(sub.id, sub.stuck, at, drop_reason(error), str(cause))
            self.phase.dropped.append(drop)
            what = "stuck" if sub.stuck else "fast"
            print(
                f"{at:7.2f} s  dropped client {sub.id} ({what}): {drop.reason}: {drop.detail}",
                file=self.out,
                flush=True,
            )

    def bytes_sent(self) -> int:
        return sum(sub.writer.statistics().bytes_sent for sub in self.subscribers.values())

    async def progress(self, start: float, end: float) -> None:
        """Sample RSS; print a progress line every second."""
        config = self.config
        tick = 1
        last_sent, last_time = 0, start
        while True:
            await trio.sleep(_SAMPLE_INTERVAL)
            now = trio.current_time()
            rss = rss_bytes()
            self.phase.sampled_peak = max(self.phase.sampled_peak, rss - config.rss_start)
            if now >= start + tick and now < end:
                sent = self.bytes_sent()
                stats = self.hub.statistics()
                rate = (sent - last_sent) / (now - last_time) / 1e6
                print(
                    f"{now - start:7.1f} s  subscribers {stats.subscribers:,}/{self.expected:,}  "
                    f"sent {rate:,.1f} MB/s  over high water {stats.over_high_water:,}  "
                    f"dropped {stats.dropped:,}  RSS {_mib(rss)}",
                    file=self.out,
                    flush=True,
                )
                last_sent, last_time = sent, now
                tick = int(now - start) + 1


async def _run_phase(
    clients: _ClientHandle,
    listener: trio.SocketListener,
    config: FanoutResult,
    phase: PhaseResult,
    out: TextIO,
) -> None:
    state = _Phase(config, phase, Broadcaster(), out)
    port = listener.socket.getsockname()[1]
    failure = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(state.accept, listener, nursery)
        opened = await clients.ask(("connect", port, phase.fast, phase.stuck, config.message_size))
        if opened != state.expected:
            failure = f"the client process: {opened}"
        else:
            with trio.move_on_after(_CONNECT_TIMEOUT):
                await state.all_in.wait()
            if not state.all_in.is_set():
                failure = (
                    f"only {len(state.subscribers):,} of {state.expected:,} clients subscribed "
                    f"within {_CONNECT_TIMEOUT:g} s"
                )
        if failure is not None:
            nursery.cancel_scope.cancel()
        else:
            await state.publish(clients)
            state.stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + _CLOSE_TIMEOUT
    if failure is not None:
        # (Raised out here: inside the nursery it would come out wrapped in a group.)
        raise FanoutError(failure)
    if nursery.cancel_scope.cancelled_caught:
        phase.problems.append(
            f"server: the connections did not close within {_CLOSE_TIMEOUT:g} s "
            "(then they were closed forcefully)"
        )
    report = await clients.ask("finish")
    if not isinstance(report, _ClientReport):  # pragma: no cover
        raise FanoutError(f"the client process sent {report!r} instead of its report")
    _verify(phase, report, config.message_size)
    phase.done = True


def _verify(phase: PhaseResult, report: _ClientReport, message_size: int) -> None:
    """Check every connection the client side saw against what was published."""
    phase.connections = report.connections
    problems = phase.problems
    problems.extend(f"clients: {error}" for error in report.errors)
    problems.extend(
        f"client {drop.client} (fast) was dropped: {drop.reason}: {drop.detail}"
        for drop in phase.dropped
        if not drop.stuck
    )
    expected = phase.messages * message_size
    for conn in report.connections:
        if conn.violations:
            problems.append(
                f"client {conn.id}: {conn.violations:,} sequence violations, the first: "
                f"{conn.first_violation}"
            )
        if conn.stuck:
            continue
        if conn.end != "end-of-file":  # pragma: no cover - the server did not close it
            problems.append(f"client {conn.id}: ended with {conn.end or 'nothing (still open)'}")
        elif conn.received != expected:
            problems.append(
                f"client {conn.id}: received {conn.received:,} B, expected {expected:,} B "
                f"({phase.messages:,} messages)"
            )


def _phase_summary(phase: PhaseResult) -> list[str]:
    who = f"{phase.fast:,} fast clients" + (" + 1 stuck" if phase.stuck else " alone")
    per_cpu = phase.per_cpu / 1e6
    window = phase.window or 1.0
    stuck = f", stuck client {phase.peak_buffered_stuck:,} B" if phase.stuck else ""
    mean_send = phase.fast_bytes_sent // phase.fast_send_calls if phase.fast_send_calls else 0
    return [
        f"  phase {phase.name}:         {who}: {phase.throughput / 1e6:,.1f} MB/s received "
        f"({phase.window_bytes:,} B in {phase.window:.2f} s, {phase.messages:,} messages)",
        f"                   server CPU {phase.server_cpu / window:.2f} cores ({per_cpu:,.1f} MB "
        f"per CPU-second), clients {phase.client_cpu / window:.2f} cores; publisher paused "
        f"{phase.pauses:,} times ({phase.paused_seconds:.2f} s)",
        f"                   fast clients' writers: mean send {mean_send:,} B, peak buffered "
        f"{phase.peak_buffered_fast:,} B{stuck}",
    ]


def _summary(result: FanoutResult) -> list[str]:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    lines = [
        "",
        f"summary ({result.clients:,} clients, {result.seconds:g} s per phase, "
        f"{result.message_size}-byte messages in batches of "
        f"{batch_size(result.high_water, result.message_size):,}):",
    ]
    warmup = result.phase("warm-up")
    if warmup is not None:
        lines.append(
            f"  warm-up:         {warmup.fast:,} fast clients for {warmup.seconds:g} s, not "
            f"measured: {warmup.throughput / 1e6:,.1f} MB/s"
        )
    for name in ("a", "b"):
        phase = result.phase(name)
        if phase is not None:
            lines.extend(_phase_summary(phase))
    ratio, cpu_ratio = result.ratio, result.cpu_ratio
    speed = verdict(result.throughput_ok)
    if result.speed_verdict == "report" and not result.throughput_ok:
        speed += " (reported, not judged: --speed-verdict report)"
    lines.append(
        f"  throughput b/a:  {'-' if ratio is None else f'{ratio:.3f}'} "
        f"(per server CPU-second: {'-' if cpu_ratio is None else f'{cpu_ratio:.3f}'}; "
        f"target >= {THROUGHPUT_TARGET:.2f}): {speed}"
    )
    b = result.phase("b")
    drop = None if b is None else b.stuck_drop
    conn = None if b is None else b.stuck_connection
    cut = (
        "not cut off"
        if drop is None
        else f"cut off {drop.at:.2f} s into phase b by {drop.reason} ({drop.detail})"
    )
    if conn is not None:
        cut += (
            f"; {conn.received:,} B had reached its socket ({conn.next_seq:,} messages, "
            f"in order), then {conn.end or 'no end (still open)'}"
        )
    lines.append(f"  stuck client:    {cut}: {verdict(result.cut_off_ok)}")
    sampled = ", ".join(f"{phase.name} {_mib(phase.sampled_peak)}" for phase in result.phases)
    lines.append(
        f"  server memory:   peak RSS {_mib(result.peak_rss)} above start (VmHWM; sampled "
        f"peaks: {sampled or '-'}); bound {result.clients:,} x {result.high_water:,} B + "
        f"{result.max_buffer:,} B + 32 MiB = {_mib(result.bound)}: {verdict(result.memory_ok)}"
    )
    problems = [*result.problems, *(p for phase in result.phases for p in phase.problems)]
    violations = sum(conn.violations for phase in result.phases for conn in phase.connections)
    lines.append(
        f"  delivery:        {violations:,} sequence violations; every fast client got every "
        f"message, in order: {verdict(result.delivery_ok)}"
    )
    if problems:
        lines.append(f"  problems:        {len(problems):,}")
        lines.extend(f"    {problem}" for problem in problems[:20])
    lines.append(f"result: {verdict(result.passed)}")
    return lines


async def _drive(clients: _ClientHandle, result: FanoutResult, out: TextIO) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    result.rss_start = rss_bytes()
    reset_peak_rss()
    async with listeners[0] as listener:
        for phase in result.phases:
            who = f"{phase.fast:,} fast clients" + (
                " + 1 stuck client" if phase.stuck else ", no stuck client"
            )
            if phase.name == "warm-up":
                print(f"warm-up ({who}, {phase.seconds:g} s, not measured)", file=out, flush=True)
            else:
                print(f"phase {phase.name} ({who}):", file=out, flush=True)
            await _run_phase(clients, listener, result, phase, out)
    hwm = peak_rss_bytes()
    sampled = max((phase.sampled_peak for phase in result.phases), default=0)
    result.peak_rss = sampled if hwm is None else max(hwm - result.rss_start, sampled)


def run_fanout(
    clients: int = DEFAULT_CLIENTS,
    seconds: float = DEFAULT_SECONDS,
    message_size: int = DEFAULT_MESSAGE_SIZE,
    rate: float | None = None,
    max_buffer: int = DEFAULT_MAX_BUFFER,
    high_water: int = DEFAULT_HIGH_WATER,
    out: TextIO | None = None,
    *,
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
    notsent_lowat: int | Literal["leave"] | None = DEFAULT_NOTSENT_LOWAT,
    client_side: ClientSide = "process",
    speed_verdict: SpeedVerdict = "fail",
    malloc_as_is: bool = False,
) -> int:
    """Run the fan-out load test and print progress and a summary to *out* (stdout).

    *clients* connections in phase (b), one of them stuck (phase (a) has the
    other ``clients - 1``); *seconds* of publishing per phase; messages of
    *message_size* bytes (a multiple of 8) broadcast as fast as possible, or
    *rate* a second.  Every subscriber's writer gets *max_buffer* with
    ``overflow="abort"``, *high_water*, *stall_timeout* and *notsent_lowat*
    (None: the writer's default; ``"leave"``: trio's own setting).
    *client_side* is ``"process"`` (the real thing) or ``"thread"`` (for
    tests only: the clients then share this process's GIL, so the
    throughput figures mean little).  *speed_verdict* ``"report"`` prints
    the throughput verdict without failing the run on it (CI does this: a
    speed ratio on a machine busy with other work says little); the
    correctness verdicts always count.  *malloc_as_is* leaves glibc's
    malloc thresholds alone (see :func:`fix_malloc_thresholds`).  Returns the exit
    status: 0 on PASS, 1 on FAIL or error, 130 if interrupted.
    """
    if speed_verdict not in ("fail", "report"):
        raise ValueError(f"speed_verdict must be 'fail' or 'report', not {speed_verdict!r}")
    out = sys.stdout if out is None else out
    if clients < 2 or seconds <= 0 or (rate is not None and rate <= 0):
        raise ValueError("need clients >= 2, seconds > 0 and rate > 0 (or None)")
    if message_size < _SEQ.size or message_size % _SEQ.size:
        raise ValueError(f"message_size must be a multiple of 8, at least 8; got {message_size}")
    if max_buffer < message_size or not 1 <= high_water < max_buffer:
        raise ValueError(
            "need max_buffer >= message_size and 1 <= high_water < max_buffer "
            f"(got max_buffer={max_buffer}, high_water={high_water})"
        )
    result = FanoutResult(
        clients,
        seconds,
        message_size,
        rate,
        max_buffer,
        high_water,
        stall_timeout,
        WRITER_NOTSENT_LOWAT if notsent_lowat is None else notsent_lowat,
        speed_verdict,
        phases=[
            PhaseResult("warm-up", clients - 1, 0, warmup_seconds(seconds)),
            PhaseResult("a", clients - 1, 0, seconds),
            PhaseResult("b", clients - 1, 1, seconds),
        ],
    )
    pace = "as fast as possible" if rate is None else f"at {rate:,g} a second"
    stall = "none" if stall_timeout is None else f"{stall_timeout:g} s"
    if result.notsent_lowat == "leave":
        lowat = "left as trio sets it"
    else:
        lowat = f"{result.notsent_lowat:,} B"
    if notsent_lowat is None:
        lowat += " (the writer's default)"
    where = "a separate process (spawn)" if client_side == "process" else "a thread (test mode)"
    malloc = (
        "glibc malloc thresholds fixed (trim 128 MiB, mmap 32 MiB)"
        if not malloc_as_is and fix_malloc_thresholds()
        else "malloc as it is"
    )
    print(
        f"trio_bufwriter fanout: {clients:,} clients ({clients - 1:,} fast, 1 stuck), "
        f"{seconds:g} s per phase, {message_size}-byte messages {pace}\n"
        f"  every subscriber: max_buffer {max_buffer:,} B (overflow='abort'), high_water "
        f"{high_water:,} B, stall_timeout {stall}, notsent_lowat {lowat}\n"
        f"  clients: {where}; server: {malloc}; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, trio {trio.__version__}",
        file=out,
        flush=True,
    )
    try:
        _ensure_fd_limit(clients + 256)
        handle = _ClientHandle(clients, client_side)
        try:
            trio.run(_drive, handle, result, out)
        finally:
            handle.close()
    except FanoutError as exc:
        result.problems.append(f"error: {exc}")
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=out, flush=True)
        return 130
    print("\n".join(_summary(result)), file=out, flush=True)
    return 0 if result.passed else 1


# ----------------------------------------------------------------------
# The command line


def _client_count(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (one fast, one stuck), got {value}")
    return value


def _message_size(text: str) -> int:
    value = positive_int(text)
    if value % _SEQ.size:
        raise argparse.ArgumentTypeError(f"must be a multiple of 8, got {value}")
    return value


def _stall_timeout(text: str) -> float | None:
    return None if text.lower() == "none" else positive_float(text)


def _notsent_lowat(text: str) -> int | Literal["leave"] | None:
    if text.lower() == "default":
        return None
    if text.lower() == "leave":
        return "leave"
    return positive_int(text)


def _run_fanout_command(args: argparse.Namespace) -> int:
    """Run ``fanout`` with the parsed *args*."""
    return run_fanout(
        args.clients,
        args.seconds,
        args.message_size,
        args.rate,
        args.max_buffer,
        args.high_water,
        stall_timeout=args.stall_timeout,
        notsent_lowat=args.notsent_lowat,
        speed_verdict=args.speed_verdict,
        malloc_as_is=args.malloc_as_is,
    )


def add_fanout_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``fanout`` command."""
    parser = commands.add_parser(
        "fanout",
        help="the slow-consumer load test: a Broadcaster, N loopback clients, one stuck",
        description=(
            "Broadcast fixed-size messages as fast as possible to N loopback clients "
            "in another process, through a Broadcaster of open_buffered_stream "
            "writers with max_buffer and overflow='abort': first N-1 fast clients "
            "alone, then the same plus one that never reads.  Check that the fast "
            f"clients keep >= {THROUGHPUT_TARGET:.0%} of their throughput, that the "
            "stuck client is cut off, that the server's RSS stays below "
            "clients x high_water + max_buffer + 32 MiB, and that every message "
            "arrives in order."
        ),
    )
    parser.add_argument(
        "--clients",
        type=_client_count,
        default=DEFAULT_CLIENTS,
        metavar="N",
        help="clients in the second phase, one of them stuck (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=DEFAULT_SECONDS,
        metavar="S",
        help="seconds of publishing per phase (default: %(default)s)",
    )
    parser.add_argument(
        "--message-size",
        type=_message_size,
        default=DEFAULT_MESSAGE_SIZE,
        metavar="BYTES",
        help="bytes per message, a multiple of 8 (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=None,
        metavar="MSGS",
        help="messages per second to offer (default: as fast as possible)",
    )
    parser.add_argument(
        "--max-buffer",
        type=positive_int,
        default=DEFAULT_MAX_BUFFER,
        metavar="BYTES",
        help="each subscriber's max_buffer (default: %(default)s)",
    )
    parser.add_argument(
        "--high-water",
        type=positive_int,
        default=DEFAULT_HIGH_WATER,
        metavar="BYTES",
        help="each subscriber's high_water (default: %(default)s)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=_stall_timeout,
        default=DEFAULT_STALL_TIMEOUT,
        metavar="S",
        help="each subscriber's stall_timeout, or 'none' (default: %(default)s)",
    )
    parser.add_argument(
        "--notsent-lowat",
        type=_notsent_lowat,
        default=DEFAULT_NOTSENT_LOWAT,
        metavar="BYTES",
        help="each subscriber's notsent_lowat, 'default' for the writer's own "
        f"({WRITER_NOTSENT_LOWAT:,}), or 'leave' for trio's (default: %(default)s)",
    )
    parser.add_argument(
        "--speed-verdict",
        choices=("fail", "report"),
        default="fail",
        help="whether a throughput miss fails the run, or is only reported (for a "
        "machine busy with other work, as in CI); the correctness verdicts always "
        "count (default: %(default)s)",
    )
    parser.add_argument(
        "--malloc-as-is",
        action="store_true",
        help="leave glibc's malloc trim and mmap thresholds as they are (by default "
        "the run fixes them, so that the allocator's heuristics do not move the ratio)",
    )
    parser.set_defaults(run=_run_fanout_command)
