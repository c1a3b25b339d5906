"""Property-based tests of the writer's contract under random concurrent use.

Every ``write()``/``writelines()``/``send_all()`` call carries one
self-describing record::

    magic (1 byte) | task id (1) | sequence number (4) | payload length (4) | payload

so the receiving side can parse the byte stream back into records and check
that each call's bytes arrived contiguously, in the order the calls happened.
``write()`` is synchronous, so appending the record to a shared list right
after the call returns records the true global order of the calls.

Transports: ``open_buffered_stream`` over ``memory_stream_pair`` and over
``lockstep_stream_pair`` (a receiver that stalls the sender), over a real
``trio.SocketStream`` pair (the writer's direct-send fast path), and a
``BufferedWriter`` over ``memory_stream_one_way_pair``.  Between the writer
and the memory/lockstep transports sits :class:`RecordingSendStream`, which
records what ``send_all`` accepted (and can fail on purpose).

Properties:

* ordering and atomicity: several tasks run random programs of write /
  writelines / send_all / drain / flush / corked() blocks (held across
  checkpoints) with small and large (by-reference) records, while a receiver
  reads at a random pace in random chunk sizes; what arrives is exactly the
  records in call order, each record contiguous, and scribbling on a
  written bytearray afterwards changes nothing;
* flush barrier: when ``flush()`` returns, the wrapped stream's ``send_all``
  has accepted every byte written before the call, and they are the right
  bytes;
* every ``send_all`` the writer makes is at most ``max_send_size`` bytes, the
  writer never calls it from two tasks at once, and
  ``statistics().peak_buffered`` is the true peak;
* backpressure: see :func:`test_drain_bounds_the_buffer`;
* failure: see :func:`test_failing_stream_breaks_the_writer_cleanly`;
* corking: see :func:`test_nothing_is_sent_while_corked` and
  :func:`test_large_writes_while_corked_go_out_together`.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TypeAlias

import pytest
import trio
import trio.testing
from hypothesis import event, example, given, note
from hypothesis import strategies as st
from trio.lowlevel import checkpoint

import trio_bufwriter._writer
from trio_bufwriter import (
    DEFAULT_HIGH_WATER,
    DEFAULT_MAX_SEND_SIZE,
    BufferedStream,
    BufferedWriter,
    WriterState,
    open_buffered_stream,
)

Writer: TypeAlias = "BufferedWriter | BufferedStream"

#: write() queues a ``bytes`` at least this long by reference instead of copying it.
BY_REFERENCE_MIN: int = trio_bufwriter._writer.BY_REFERENCE_MIN

# ----------------------------------------------------------------------
# Records

_MAGIC = 0xA5
_HEADER = struct.Struct(">BBII")


def make_record(task: int, seq: int, payload: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, task, seq, len(payload)) + payload


@dataclass(frozen=True)
class Parsed:
    offset: int
    task: int
    seq: int
    payload: bytes
    size: int


def parse_records(data: bytes) -> list[Parsed]:
    """Parse a stream of records; fail loudly on anything that is not one."""
    records: list[Parsed] = []
    offset = 0
    while offset < len(data):
        assert len(data) - offset >= _HEADER.size, (
            f"truncated header at offset {offset}: {data[offset:]!r}"
        )
        magic, task, seq, length = _HEADER.unpack_from(data, offset)
        assert magic == _MAGIC, f"no record starts at offset {offset}: a record was split"
        end = offset + _HEADER.size + length
        assert end <= len(data), f"truncated record at offset {offset}"
        payload = data[offset + _HEADER.size : end]
        records.append(Parsed(offset, task, seq, payload, end - offset))
        offset = end
    return records


def check_stream(received: bytes, written: Sequence[bytes]) -> None:
    """*received* is exactly the *written* records, in order, each contiguous."""
    parsed = parse_records(received)
    # (d) total bytes
    assert len(received) == sum(map(len, written))
    # (c) the global order of the records is the order of the write() calls
    assert len(parsed) == len(written)
    offset = 0
    for got, record in zip(parsed, written, strict=True):
        # (b) each call's bytes are contiguous and intact
        assert got.offset == offset
        assert received[offset : offset + len(record)] == record
        offset += len(record)
    # (a) each task's records arrive in the order that task wrote them
    next_seq: dict[int, int] = {}
    for got in parsed:
        assert got.seq == next_seq.get(got.task, 0)
        next_seq[got.task] = got.seq + 1
    assert received == b"".join(written)


# ----------------------------------------------------------------------
# Programs the writing tasks run


@dataclass(frozen=True)
class Write:
    payload: bytes


@dataclass(frozen=True)
class WriteLines:
    """writelines() of one record cut into pieces (some possibly empty)."""

    payload: bytes
    cuts: tuple[int, ...]


@dataclass(frozen=True)
class Large:
    """write() of a record about BY_REFERENCE_MIN long, as ``bytes``: at or
    over that size the writer queues it by reference instead of copying it."""

    extra: int
    offset: int
    #: write a bytearray instead (which must be copied), then scribble on it
    mutable: bool = False

    def payload(self) -> bytes:
        size = BY_REFERENCE_MIN - _HEADER.size + self.extra
        return (bytes(range(256)) * (size // 256 + 2))[self.offset : self.offset + size]


@dataclass(frozen=True)
class SendAll:
    """``await send_all(record)`` in task 0 (only one task at a time may be in
    send_all); a plain write() in the others."""

    payload: bytes


@dataclass(frozen=True)
class Drain:
    pass


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class Pause:
    checkpoints: int


@dataclass(frozen=True)
class Cork:
    """Hold ``corked()`` across the body (which may checkpoint, drain, flush)."""

    body: tuple[Op, ...]


Op: TypeAlias = "Write | WriteLines | Large | SendAll | Drain | Flush | Pause | Cork"

payloads = st.binary(max_size=48)
large_ops = st.builds(Large, st.integers(-2, 3000), st.integers(0, 255), st.booleans())
simple_ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Write, payloads),
    st.builds(WriteLines, payloads, st.lists(st.integers(0, 255), max_size=4).map(tuple)),
    st.builds(SendAll, payloads),
    large_ops,
    st.builds(Pause, st.integers(0, 4)),
    st.just(Drain()),
    st.just(Flush()),
)
ops: st.SearchStrategy[Op] = st.one_of(
    simple_ops, st.builds(Cork, st.lists(simple_ops, max_size=4).map(tuple))
)
programs = st.lists(st.lists(ops, max_size=10), min_size=1, max_size=4)

# The receiver: (max_bytes for receive_some, checkpoints before it), cycled.
reader_schedules = st.lists(
    st.tuples(st.one_of(st.integers(1, 64), st.none()), st.integers(0, 5)),
    min_size=1,
    max_size=16,
)


@st.composite
def water_marks(draw: st.DrawFn) -> tuple[int, int | None]:
    high = draw(st.one_of(st.integers(0, 160), st.integers(0, 4096)))
    low = draw(st.one_of(st.none(), st.integers(0, high)))
    return high, low


max_send_sizes = st.one_of(st.integers(1, 64), st.just(DEFAULT_MAX_SEND_SIZE))


def has_large(tasks: Sequence[Sequence[Op]]) -> bool:
    def large(op: Op) -> bool:
        return isinstance(op, Large) or (isinstance(op, Cork) and any(map(large, op.body)))

    return any(large(op) for program in tasks for op in program)


def scale_for_large(
    max_send_size: int, schedule: list[tuple[int | None, int]]
) -> tuple[int, list[tuple[int | None, int]]]:
    """Keep runs with large records fast: no 64 KiB record in 1-byte pieces."""
    return (
        max_send_size * 1024 if max_send_size < 1024 else max_send_size,
        [(None if size is None else size * 256, pauses) for size, pauses in schedule],
    )


def cut(record: bytes, cuts: Sequence[int]) -> list[bytes | bytearray | memoryview]:
    points = sorted(c % (len(record) + 1) for c in cuts)
    bounds = [0, *points, len(record)]
    pieces: list[bytes | bytearray | memoryview] = []
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        piece = record[start:end]
        pieces.append((piece, bytearray(piece), memoryview(piece))[i % 3])
    return pieces


def scribble(pieces: Sequence[bytes | bytearray | memoryview]) -> None:
    """Overwrite the mutable buffers among *pieces*: write() promises a copy."""
    for piece in pieces:
        if isinstance(piece, bytearray):
            piece[:] = b"\xee" * len(piece)


# ----------------------------------------------------------------------
# The stream between the writer and the transport


@dataclass(frozen=True)
class FailPlan:
    """Fail the send_all that would pass byte *at_byte*, or call number *at_call*
    (after forwarding *partial* bytes of it)."""

    at_byte: int | None = None
    at_call: int | None = None
    partial: int = 0


class RecordingSendStream(trio.abc.SendStream):
    """Forwards to *inner*, recording what its send_all accepted; may fail."""

    def __init__(self, inner: trio.abc.SendStream, plan: FailPlan | None = None) -> None:
        self.inner = inner
        self.plan = plan
        #: every byte handed on to *inner*, including part of a failing call
        self.forwarded = bytearray()
        #: bytes of the send_all calls that returned normally
        self.accepted = 0
        self.calls = 0
        self.largest_call = 0
        self.calls_after_error = 0
        self.error: OSError | None = None
        self._busy = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        assert not self._busy, "the writer called send_all from two tasks at once"
        self._busy = True
        try:
            if self.error is not None:
                self.calls_after_error += 1
                await checkpoint()
                raise OSError("send_all after the stream failed")
            chunk = bytes(data)
            self.calls += 1
            self.largest_call = max(self.largest_call, len(chunk))
            plan = self.plan
            keep = len(chunk)
            if plan is not None:
                if plan.at_byte is not None and len(self.forwarded) + keep > plan.at_byte:
                    keep = plan.at_byte - len(self.forwarded)
                elif plan.at_call is not None and self.calls - 1 == plan.at_call:
                    keep = min(keep, plan.partial)
            if keep:
                await self.inner.send_all(chunk[:keep])
                self.forwarded += chunk[:keep]
            else:
                await checkpoint()
            if keep < len(chunk):
                self.error = OSError(f"injected failure in send_all call {self.calls}")
                raise self.error
            self.accepted += len(chunk)
        finally:
            self._busy = False

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(frozen=True)
class Options:
    high_water: int
    low_water: int | None
    max_send_size: int


KINDS = ["stream-memory", "stream-lockstep", "stream-socket", "writer-memory"]


async def make_transport(
    kind: str, plan: FailPlan | None = None
) -> tuple[
    trio.abc.Stream | RecordingSendStream, RecordingSendStream | None, trio.abc.ReceiveStream
]:
    """Return (what to wrap, the recording stream inside it, the receiving end).

    A socket is wrapped bare (no recording stream): the writer's direct-send
    fast path only exists for a :class:`trio.SocketStream` itself.
    """
    if kind == "stream-socket":
        assert plan is None
        a, b = trio.socket.socketpair()
        await checkpoint()
        return trio.SocketStream(a), None, trio.SocketStream(b)
    if kind.startswith("stream-"):
        pair = (
            trio.testing.memory_stream_pair()
            if kind == "stream-memory"
            else trio.testing.lockstep_stream_pair()
        )
        left, right = pair
        recording = RecordingSendStream(left.send_stream, plan)
        return trio.StapledStream(recording, left.receive_stream), recording, right
    send: trio.abc.SendStream
    receive: trio.abc.ReceiveStream
    if kind == "writer-memory":
        send, receive = trio.testing.memory_stream_one_way_pair()
    else:
        assert kind == "writer-lockstep"
        send, receive = trio.testing.lockstep_stream_one_way_pair()
    recording = RecordingSendStream(send, plan)
    return recording, recording, receive


async def receive_all(
    stream: trio.abc.ReceiveStream, schedule: Sequence[tuple[int | None, int]], out: bytearray
) -> None:
    """Read to end-of-file at the pace and in the chunk sizes *schedule* says."""
    step = 0
    while True:
        max_bytes, pauses = schedule[step % len(schedule)]
        step += 1
        for _ in range(pauses):
            await checkpoint()
        chunk = await stream.receive_some(max_bytes)
        if not chunk:
            return
        assert max_bytes is None or len(chunk) <= max_bytes
        out += chunk


# ----------------------------------------------------------------------
# Running programs


@dataclass
class Shared:
    writer: Writer
    stream: RecordingSendStream | None
    #: every record, in the order its write()/writelines() call happened
    order: list[bytes] = field(default_factory=list)
    written: int = 0
    #: the most bytes the writer held: the buffer only grows in a write, so
    #: looking right after each one sees the true maximum
    most_buffered: int = 0
    flushes_checked: int = 0
    drains_waited: int = 0
    checked_before_close: bool = False
    #: BrokenResourceErrors raised to the writing tasks
    broken: list[trio.BrokenResourceError] = field(default_factory=list)

    def wrote(self, record: bytes, before: int) -> None:
        """Note that *record* was just written, with *before* bytes buffered
        before the call.  (Not the buffer now: a write to an idle writer over
        a socket may already have sent the bytes, but it did hold them.)"""
        self.order.append(record)
        self.written += len(record)
        self.most_buffered = max(self.most_buffered, before + len(record))

    def unwrote(self, record: bytes) -> None:
        assert self.order.pop() is record
        self.written -= len(record)


async def run_op(shared: Shared, task: int, seq: int, op: Op) -> int:
    """Run *op* for *task*, whose next record number is *seq*; return the next."""
    writer = shared.writer
    before = writer.buffered
    if isinstance(op, Write) or (isinstance(op, SendAll) and task != 0):
        record = make_record(task, seq, op.payload)
        writer.write(record)
        shared.wrote(record, before)  # nothing can run between the call and this
        return seq + 1
    if isinstance(op, WriteLines):
        record = make_record(task, seq, op.payload)
        pieces = cut(record, op.cuts)
        writer.writelines(pieces)
        shared.wrote(record, before)
        scribble(pieces)  # the writer copied them
        return seq + 1
    if isinstance(op, Large):
        record = make_record(task, seq, op.payload())
        data = bytearray(record) if op.mutable else record
        writer.write(data)
        shared.wrote(record, before)
        scribble([data])
        return seq + 1
    if isinstance(op, SendAll):
        record = make_record(task, seq, op.payload)
        calls = writer.statistics().write_calls
        # send_all writes before it first yields, so noting the record now
        # keeps the true order; take it back (peak included) if the write
        # did not happen.
        most_buffered = shared.most_buffered
        shared.wrote(record, before)
        try:
            await writer.send_all(record)
        finally:
            if writer.statistics().write_calls == calls:
                shared.unwrote(record)
                shared.most_buffered = most_buffered
        return seq + 1
    if isinstance(op, Drain):
        shared.drains_waited += writer.need_drain
        await writer.drain()
    elif isinstance(op, Flush):
        target = shared.written
        written_before = b"".join(shared.order)
        await writer.flush()
        # The barrier: every byte written before the call has been accepted
        # by the wrapped stream's send_all, and they are the right bytes.
        assert writer.statistics().bytes_sent >= target
        if shared.stream is not None:
            assert shared.stream.accepted >= target
            assert shared.stream.forwarded[:target] == written_before
        shared.flushes_checked += 1
    elif isinstance(op, Pause):
        for _ in range(op.checkpoints):
            await checkpoint()
    else:
        with writer.corked():
            for inner in op.body:
                seq = await run_op(shared, task, seq, inner)
    return seq


async def run_program(shared: Shared, task: int, program: Sequence[Op]) -> None:
    seq = 0
    for op in program:
        seq = await run_op(shared, task, seq, op)


async def run_tasks(shared: Shared, tasks: Sequence[Sequence[Op]]) -> None:
    async with trio.open_nursery() as nursery:
        for task, program in enumerate(tasks):
            nursery.start_soon(run_program, shared, task, program)


async def run_with_writer(
    kind: str,
    options: Options,
    schedule: Sequence[tuple[int | None, int]],
    body: Callable[[Shared], Awaitable[None]],
) -> tuple[Shared, bytes]:
    """Run *body* on a writer of *kind* while a receiver reads everything; close
    the writer gracefully afterwards.  Return the shared state and what arrived."""
    wrapped, recording, receiving = await make_transport(kind)
    received = bytearray()
    shared: Shared | None = None
    high_water = options.high_water
    low_water = options.low_water
    max_send_size = options.max_send_size
    async with receiving:  # closed (socket included) even if the test fails
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_all, receiving, schedule, received)
                if isinstance(wrapped, trio.abc.Stream):
                    async with open_buffered_stream(
                        wrapped,
                        high_water=high_water,
                        low_water=low_water,
                        max_send_size=max_send_size,
                    ) as stream:
                        shared = Shared(stream, recording)
                        await body(shared)
                else:
                    writer = BufferedWriter(
                        wrapped,
                        high_water=high_water,
                        low_water=low_water,
                        max_send_size=max_send_size,
                    )
                    async with trio.open_nursery() as sender_nursery:
                        await sender_nursery.start(writer.run)
                        shared = Shared(writer, recording)
                        await body(shared)
                        await writer.aclose()
    assert shared is not None
    stats = shared.writer.statistics()
    assert stats.state is WriterState.CLOSED
    assert stats.bytes_written == stats.bytes_sent == shared.written
    assert stats.buffered == 0
    assert stats.peak_buffered == shared.most_buffered
    if recording is not None:
        assert recording.largest_call <= max_send_size
        assert stats.send_calls == recording.calls
    return shared, bytes(received)


# ----------------------------------------------------------------------
# Ordering, atomicity, flush barrier


@pytest.mark.parametrize("kind", KINDS)
@given(
    tasks=programs,
    marks=water_marks(),
    max_send_size=max_send_sizes,
    schedule=reader_schedules,
)
async def test_concurrent_writes_arrive_in_call_order_and_unsplit(
    kind: str,
    tasks: list[list[Op]],
    marks: tuple[int, int | None],
    max_send_size: int,
    schedule: list[tuple[int | None, int]],
) -> None:
    """Several tasks write / writelines / send_all (task 0) / drain / flush /
    cork (held across checkpoints, drains, flushes) at random while the peer
    reads at a random pace in random chunk sizes.  What arrives is exactly
    the records in the order their calls happened, each one contiguous; each
    flush() is a barrier for the bytes written before it; every send_all is
    at most max_send_size; peak_buffered is the true peak."""
    if has_large(tasks):
        event("large records (queued by reference)")
        max_send_size, schedule = scale_for_large(max_send_size, schedule)
    options = Options(marks[0], marks[1], max_send_size)

    async def body(shared: Shared) -> None:
        await run_tasks(shared, tasks)

    shared, received = await run_with_writer(kind, options, schedule, body)
    check_stream(received, shared.order)
    stats = shared.writer.statistics()
    assert stats.write_calls == len(shared.order)
    note(f"{len(shared.order)} records, {shared.flushes_checked} flushes checked")
    event(f"{len(tasks)} tasks")
    if shared.flushes_checked:
        event("a flush barrier was checked")
    if shared.drains_waited:
        event("a drain had to wait")
    if stats.send_calls > len(shared.order) and max_send_size < DEFAULT_MAX_SEND_SIZE:
        event("writes were split at max_send_size")


# ----------------------------------------------------------------------
# Backpressure


@dataclass(frozen=True)
class Step:
    """``write(record); await drain()``, optionally both corked, then *extras*
    (anything that does not write)."""

    payload: bytes
    lines: bool
    corked: bool
    extras: tuple[Op, ...]


non_writing_ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Pause, st.integers(0, 4)),
    st.just(Flush()),
    st.just(Drain()),
    st.builds(Cork, st.lists(st.builds(Pause, st.integers(0, 3)), max_size=2).map(tuple)),
)
steps = st.builds(
    Step,
    st.binary(max_size=200),
    st.booleans(),
    st.booleans(),
    st.lists(non_writing_ops, max_size=2).map(tuple),
)


@pytest.mark.parametrize("kind", KINDS)
@given(
    tasks=st.lists(st.lists(steps, max_size=12), min_size=1, max_size=4),
    marks=water_marks(),
    max_send_size=max_send_sizes,
    schedule=reader_schedules,
)
async def test_drain_bounds_the_buffer(
    kind: str,
    tasks: list[list[Step]],
    marks: tuple[int, int | None],
    max_send_size: int,
    schedule: list[tuple[int | None, int]],
) -> None:
    """With N tasks that each always do ``write(x); await drain()``, the writer
    never holds more than ``high_water + N * M`` bytes (M: the largest write).

    Why: while the buffer stays above high water, every ``drain()`` that runs
    waits, and it is only woken once the buffer is down to low water (<= high),
    which ends that stretch.  So within one stretch each task writes at most
    once (the write that starts it included, which began at <= high water).
    Between stretches the buffer is <= high water.  The bound is tight when
    N tasks are woken together from drain at low == high.

    With one task there is also nothing between the end of its ``drain()``
    and its next write to refill the buffer, so after each ``drain()`` the
    buffer is at most high water.
    """
    high_water = marks[0]
    writers = sum(1 for program in tasks if program)
    largest = max(
        (len(make_record(0, 0, step.payload)) for program in tasks for step in program),
        default=0,
    )
    bound = high_water + writers * largest
    options = Options(high_water, marks[1], max_send_size)

    async def run_steps(shared: Shared, task: int, program: Sequence[Step]) -> None:
        writer = shared.writer
        for seq, step in enumerate(program):
            with writer.corked() if step.corked else nullcontext():
                record = make_record(task, seq, step.payload)
                before = writer.buffered
                if step.lines:
                    writer.writelines(cut(record, [len(record) // 2]))
                else:
                    writer.write(record)
                shared.wrote(record, before)
                assert writer.buffered <= bound
                await writer.drain()
                if writers == 1:
                    assert writer.buffered <= high_water
            for extra in step.extras:
                await run_op(shared, task, seq + 1, extra)

    async def body(shared: Shared) -> None:
        async with trio.open_nursery() as nursery:
            for task, program in enumerate(tasks):
                nursery.start_soon(run_steps, shared, task, program)

    shared, received = await run_with_writer(kind, options, schedule, body)
    check_stream(received, shared.order)
    peak = shared.writer.statistics().peak_buffered
    assert peak <= bound
    if peak > high_water:
        event("buffer went over high water")
    event(f"{writers} writing tasks")


# ----------------------------------------------------------------------
# Failure of the wrapped stream

fail_plans = st.one_of(
    st.builds(FailPlan, at_byte=st.integers(0, 250)),
    st.builds(FailPlan, at_call=st.integers(0, 4), partial=st.integers(0, 100)),
)


async def assert_stays_broken(writer: Writer, error: OSError, *, send_all: bool) -> None:
    """Every later call raises BrokenResourceError caused by *error*.

    Only one task at a time may be in ``send_all`` or
    ``wait_send_all_might_not_block``, and task 0 may be waiting in one: so
    only task 0 and the main task try those (*send_all*).
    """
    assert writer.state is WriterState.BROKEN
    with pytest.raises(trio.BrokenResourceError) as info:
        writer.write(b"late")
    assert info.value.__cause__ is error
    with pytest.raises(trio.BrokenResourceError) as info:
        writer.writelines([b"la", b"te"])
    assert info.value.__cause__ is error
    waits: list[Callable[[], Awaitable[None]]] = [writer.drain, writer.flush]
    if send_all:
        waits += [writer.wait_send_all_might_not_block, lambda: writer.send_all(b"late")]
    for wait in waits:
        with pytest.raises(trio.BrokenResourceError) as info:
            await wait()
        assert info.value.__cause__ is error
    assert writer.state is WriterState.BROKEN


@pytest.mark.parametrize("kind", ["writer-memory", "writer-lockstep"])
@given(
    tasks=programs,
    plan=fail_plans,
    marks=water_marks(),
    max_send_size=max_send_sizes,
    schedule=reader_schedules,
    check_before_close=st.booleans(),
)
async def test_failing_stream_breaks_the_writer_cleanly(
    kind: str,
    tasks: list[list[Op]],
    plan: FailPlan,
    marks: tuple[int, int | None],
    max_send_size: int,
    schedule: list[tuple[int | None, int]],
    check_before_close: bool,
) -> None:
    """The wrapped send_all raises OSError at a random point (possibly after
    passing on part of its bytes).  Then:

    * the bytes that arrive are a prefix of the bytes written (nothing
      reordered, duplicated or retried), and the writer never calls send_all
      again;
    * every later write / writelines / drain / flush / send_all /
      wait_send_all_might_not_block raises BrokenResourceError whose
      ``__cause__`` is that OSError;
    * the sender task returns, so the nursery running it exits cleanly;
    * aclose() raises that BrokenResourceError only if no call reported it.
    """
    if has_large(tasks):
        max_send_size, schedule = scale_for_large(max_send_size, schedule)
    wrapped, recording, receiving = await make_transport(kind, plan)
    assert isinstance(wrapped, RecordingSendStream)
    assert recording is wrapped
    writer = BufferedWriter(
        wrapped, high_water=marks[0], low_water=marks[1], max_send_size=max_send_size
    )
    shared = Shared(writer, recording)
    received = bytearray()
    close_error: trio.BrokenResourceError | None = None

    async def run_until_broken(task: int, program: Sequence[Op]) -> None:
        try:
            await run_program(shared, task, program)
        except trio.BrokenResourceError as exc:
            shared.broken.append(exc)  # checked below
            assert recording.error is not None
            await assert_stays_broken(writer, recording.error, send_all=task == 0)

    async with receiving:  # closed (socket included) even if the test fails
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_all, receiving, schedule, received)
                async with trio.open_nursery() as sender_nursery:
                    await sender_nursery.start(writer.run)
                    async with trio.open_nursery() as task_nursery:
                        for task, program in enumerate(tasks):
                            task_nursery.start_soon(run_until_broken, task, program)
                    if check_before_close:
                        # Let a pending failure happen, then look.
                        await trio.testing.wait_all_tasks_blocked()
                        if recording.error is not None:
                            await assert_stays_broken(writer, recording.error, send_all=True)
                            shared.checked_before_close = True
                    try:
                        await writer.aclose()
                    except trio.BrokenResourceError as exc:
                        close_error = exc
                # The sender task returned by itself: the nursery exited cleanly.

    error = recording.error
    written = b"".join(shared.order)
    stats = writer.statistics()
    assert stats.state is WriterState.CLOSED
    assert stats.bytes_written == len(written) == shared.written
    assert recording.largest_call <= max_send_size
    assert stats.peak_buffered == shared.most_buffered
    if error is None:
        event("the stream never failed")
        assert close_error is None
        assert not shared.broken
        assert not shared.checked_before_close
        check_stream(bytes(received), shared.order)
        assert stats.bytes_sent == len(written)
        return
    event("the stream failed")
    # A prefix of what was written: never reordered, duplicated or retried.
    assert received == recording.forwarded
    assert received == written[: len(received)]
    assert recording.calls_after_error == 0
    assert stats.bytes_sent == recording.accepted <= len(received) < len(written)
    assert all(exc.__cause__ is error for exc in shared.broken)
    if shared.broken or shared.checked_before_close:
        event("a call reported the failure")
        assert close_error is None
    elif not writer._write_api_used():
        # Used only through send_all, the writer keeps trio's close
        # semantics: aclose() does not report what no send reported.
        event("send_all only: aclose() kept trio's semantics")
        assert close_error is None
    else:
        event("only aclose() reported the failure")
        assert close_error is not None
        assert close_error.__cause__ is error


# ----------------------------------------------------------------------
# Corking


def send_calls_for(size: int, max_send_size: int) -> int:
    return -(-size // max_send_size)


async def check_cork(
    shared: Shared, before: Sequence[bytes], corked: Sequence[tuple[bytes | Large, int]]
) -> None:
    """Write and flush *before*; then, corked, write each of *corked* and
    checkpoint as often as it says.  Nothing may be sent while corked, and
    all of it goes out together once uncorked."""
    writer = shared.writer
    max_send_size = writer.max_send_size
    seq = 0
    for data in before:
        seq = await run_op(shared, 0, seq, Write(data))
    await writer.flush()
    assert writer.buffered == 0
    at_cork = writer.statistics()
    held = 0
    with writer.corked():
        for payload, pauses in corked:
            op = payload if isinstance(payload, Large) else Write(payload)
            seq = await run_op(shared, 0, seq, op)
            held += len(shared.order[-1])
            await run_op(shared, 0, seq, Pause(pauses))
            now = writer.statistics()
            # Nothing is sent while corked (nothing was in flight at the start).
            assert (now.bytes_sent, now.send_calls) == (at_cork.bytes_sent, at_cork.send_calls)
            assert now.buffered == held
    await writer.flush()
    # Everything written meanwhile goes out together, in one send_all
    # (split at max_send_size).
    calls = writer.statistics().send_calls - at_cork.send_calls
    assert calls == send_calls_for(held, max_send_size)


@pytest.mark.parametrize("kind", KINDS)
@given(
    before=st.lists(payloads, max_size=3),
    corked=st.lists(st.tuples(payloads, st.integers(0, 3)), min_size=1, max_size=5),
    max_send_size=max_send_sizes,
    schedule=reader_schedules,
)
@example(before=[], corked=[(b"", 0)], max_send_size=DEFAULT_MAX_SEND_SIZE, schedule=[(None, 0)])
async def test_nothing_is_sent_while_corked(
    kind: str,
    before: list[bytes],
    corked: list[tuple[bytes, int]],
    max_send_size: int,
    schedule: list[tuple[int | None, int]],
) -> None:
    options = Options(DEFAULT_HIGH_WATER, None, max_send_size)

    async def body(shared: Shared) -> None:
        await check_cork(shared, before, corked)

    shared, received = await run_with_writer(kind, options, schedule, body)
    check_stream(received, shared.order)


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "stream-socket"])
@given(
    before=st.lists(payloads, max_size=3),
    corked=st.lists(
        st.tuples(st.one_of(payloads, large_ops), st.integers(0, 3)),
        min_size=2,
        max_size=4,
    ).filter(lambda items: any(isinstance(payload, Large) for payload, _ in items)),
    max_send_size=max_send_sizes,
    schedule=reader_schedules,
)
@example(
    before=[],
    corked=[(b"", 0), (Large(0, 0), 0)],
    max_send_size=DEFAULT_MAX_SEND_SIZE,
    schedule=[(None, 0)],
)
async def test_large_writes_while_corked_go_out_together(
    kind: str,
    before: list[bytes],
    corked: list[tuple[bytes | Large, int]],
    max_send_size: int,
    schedule: list[tuple[int | None, int]],
) -> None:
    max_send_size, schedule = scale_for_large(max_send_size, schedule)
    options = Options(4 * DEFAULT_HIGH_WATER, None, max_send_size)

    async def body(shared: Shared) -> None:
        await check_cork(shared, before, corked)

    shared, received = await run_with_writer(kind, options, schedule, body)
    check_stream(received, shared.order)
