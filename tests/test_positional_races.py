"""PositionalWriter races: waiters woken by failures and closes, cancelled closes,
outer cancellation, and random interleavings of everything checked against a model.

The targeted tests pin bugs an adversarial review found (a waiting drain()
returning normally on a broken writer, a cancelled aclose() starting an
fsync trip, two Cancelled in a group); the random tests drive write_at,
drain, flush, trips, failures and cancellations in random orders.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import hypothesis.strategies as st
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from positional_testing import (
    GatedTrips,
    fd_is_open,
    gated_trips,
    open_for_writing,
    owned_writer,
    record_outcome,
)

from trio_bufwriter import (
    PositionalWriteError,
    PositionalWriter,
    WriterState,
    open_positional_writer,
)
from trio_bufwriter import _positional as _positional
from trio_bufwriter._pwrite import Outcome, write_runs
from trio_bufwriter._ranges import Run, coalesce


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "out.bin"


class ScriptedTrips:
    """Like GatedTrips, but a trip can be told to fail (writing nothing).

    ``auto=True`` lets every trip through without a permit.
    """

    def __init__(self, auto: bool = False) -> None:
        self.trips: list[tuple[list[Run], bool]] = []
        self.failures: list[OSError] = []
        self.auto = auto
        self._entered = threading.Semaphore(0)
        self._permits = threading.Semaphore(0)
        self.completed = 0
        self.lock = threading.Lock()

    def __call__(self, fd: int, runs: list[Run], sync: bool, datasync: bool = False) -> Outcome:
        self.trips.append((runs, sync))
        self._entered.release()
        if not self.auto and not self._permits.acquire(timeout=10):  # pragma: no cover
            raise AssertionError("a trip was never released")
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        try:
            if failure is not None:
                return Outcome(
                    syscalls=1 if runs else 0,
                    error=failure,
                    failed_call="pwrite" if runs else "fsync",
                    unwritten=[(run.offset, run.end) for run in runs],
                )
            return write_runs(fd, runs, sync, datasync)
        finally:
            self.completed += 1

    async def wait_entered(self) -> None:
        if not await trio.to_thread.run_sync(self._entered.acquire, True, 10):
            raise AssertionError("no trip entered the gate")

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._permits.release()


@contextmanager
def scripted_trips(monkeypatch: pytest.MonkeyPatch, auto: bool = False) -> Iterator[ScriptedTrips]:
    gate = ScriptedTrips(auto)
    monkeypatch.setattr(_positional, "write_runs", gate)
    try:
        yield gate
    finally:
        gate.release(1000)


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device (simulated)")


# ----------------------------------------------------------------------
# Confirmed bugs (these fail against the code under review)


async def test_a_drain_waiting_when_a_write_fails_raises(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs: "Tasks waiting in drain() or flush() wake up and raise"."""
    outcome: list[BaseException | None] = []
    with trio.fail_after(10), scripted_trips(monkeypatch) as gate:
        writer = owned_writer(path, high_water=10, low_water=0)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(0, b"x" * 20)
            await gate.wait_entered()

            nursery.start_soon(record_outcome, outcome, writer.drain)
            await trio.testing.wait_all_tasks_blocked()
            assert outcome == []  # it is waiting: 20 > high water 10
            gate.failures.append(_enospc())
            gate.release()
        assert writer.state is WriterState.BROKEN
        await writer.aclose()  # quietly: the drain reported the failure
    assert len(outcome) == 1
    assert isinstance(outcome[0], PositionalWriteError), outcome


async def test_a_drain_waiting_when_the_owner_is_cancelled_raises(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome: list[BaseException | None] = []
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        writer = owned_writer(path, high_water=10, low_water=0)
        async with trio.open_nursery() as outer:
            async with trio.open_nursery() as owner_nursery:
                await owner_nursery.start(writer.run)
                writer.write_at(0, b"a" * 6)
                await gate.wait_entered()
                writer.write_at(10, b"b" * 6)  # queued: pending 12 > 10
                outer.start_soon(record_outcome, outcome, writer.drain)
                await trio.testing.wait_all_tasks_blocked()
                owner_nursery.cancel_scope.cancel()
                gate.release()
            await trio.testing.wait_all_tasks_blocked()
        assert writer.state is WriterState.BROKEN
    assert len(outcome) == 1
    # The piece at 10 was never written: the waiting drain says so.
    assert isinstance(outcome[0], PositionalWriteError), outcome
    assert outcome[0].unwritten == [(10, 16)]
    await writer.aclose()  # quietly: the drain reported the failure


async def test_an_aclose_waiting_beside_a_cancelled_one_does_not_report_success(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graceful aclose returns normally although its writes were discarded."""
    graceful_result: list[BaseException | None] = []
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        writer = owned_writer(path)
        fd = writer.fd
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(0, b"in flight")
            await gate.wait_entered()
            writer.write_at(100, b"queued")

            nursery.start_soon(record_outcome, graceful_result, writer.aclose)
            await trio.testing.wait_all_tasks_blocked()

            async def release_when_blocked() -> None:
                await trio.testing.wait_all_tasks_blocked()
                gate.release()

            nursery.start_soon(release_when_blocked)
            with trio.CancelScope() as scope:
                scope.cancel()
                await writer.aclose()
        assert not fd_is_open(fd)
    assert path.read_bytes() == b"in flight"  # "queued" is not in the file
    assert len(graceful_result) == 1
    # The graceful aclose promised "write everything pending"; it must not
    # return as if it had.
    assert graceful_result[0] is not None


async def test_a_cancelled_aclose_starts_no_new_trip(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled aclose waits for the trip *in flight*; it must not start an fsync trip."""
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        writer = owned_writer(path, fsync_on_close=True)
        fd = writer.fd
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(0, b"in flight")
            await gate.wait_entered()

            async def release_when_blocked() -> None:
                await trio.testing.wait_all_tasks_blocked()
                gate.release(5)

            nursery.start_soon(release_when_blocked)
            with trio.CancelScope() as scope:
                scope.cancel()
                await writer.aclose()
            assert scope.cancelled_caught
        assert not fd_is_open(fd)
    assert len(gate.trips) == 1, f"{len(gate.trips)} trips: a new fsync trip ran after the cancel"
    assert writer.statistics().fsyncs == 0


async def test_a_block_that_raises_starts_no_new_fsync_trip(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_positional_writer: if the block raises, only the trip in flight finishes."""
    writers: list[PositionalWriter] = []

    async def block_that_raises(gate: GatedTrips) -> None:
        async with open_positional_writer(path, fsync_on_close=True) as writer:
            writers.append(writer)
            writer.write_at(0, b"in flight")
            await gate.wait_entered()
            gate.release(5)
            raise KeyError

    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        with pytest.raises(KeyError):
            await block_that_raises(gate)
        assert len(gate.trips) == 1, f"{len(gate.trips)} trips"
    assert writers[0].statistics().fsyncs == 0


async def test_an_outer_cancellation_comes_out_as_one_cancelled_not_a_group(path: Path) -> None:
    caught: list[BaseException] = []
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            try:
                async with open_positional_writer(path):
                    scope.cancel()
                    await trio.sleep_forever()
            except BaseException as exc:
                caught.append(exc)
                raise
        assert scope.cancelled_caught
    assert len(caught) == 1
    assert isinstance(caught[0], trio.Cancelled), repr(caught[0])


async def test_an_fsync_failure_lists_only_the_writes_queued_behind_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The written bytes reached the file; the ones queued behind the fsync did not."""
    with trio.fail_after(10), scripted_trips(monkeypatch) as gate:
        writer = owned_writer(path)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(0, b"a")
            await gate.wait_entered()
            gate.release()
            await writer.flush()  # the write is done
            flushing: list[PositionalWriteError] = []

            async def fsyncer() -> None:
                try:
                    await writer.flush(fsync=True)
                except PositionalWriteError as exc:
                    flushing.append(exc)

            nursery.start_soon(fsyncer)
            await gate.wait_entered()  # the fsync trip
            writer.write_at(50, b"late")
            gate.failures.append(OSError(errno.EIO, "simulated"))
            gate.release()
        await writer.aclose()
    assert len(flushing) == 1
    assert flushing[0].unwritten == [(50, 54)], flushing[0].unwritten


# ----------------------------------------------------------------------
# Random interleavings against a model


def _apply_all(pieces: list[tuple[int, bytes]]) -> bytes:
    model = bytearray()
    for offset, data in pieces:
        if len(model) < offset + len(data):
            model.extend(bytes(offset + len(data) - len(model)))
        model[offset : offset + len(data)] = data
    return bytes(model)


def _file_matches(path: Path, pieces: list[tuple[int, bytes]]) -> bool:
    # Bytes beyond the model (none here: the file starts empty) would be a bug.
    expected = _apply_all(pieces)
    return path.read_bytes() == expected


class CountingGate(ScriptedTrips):
    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()

    def __call__(self, fd: int, runs: list[Run], sync: bool, datasync: bool = False) -> Outcome:
        try:
            return super().__call__(fd, runs, sync, datasync)
        finally:
            with self.cond:
                self.cond.notify_all()

    def wait_completed(self, n: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.completed >= n, timeout=10)


op_strategy = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 60), st.integers(0, 20)),
    st.tuples(st.just("write"), st.integers(0, 60), st.integers(1, 20)),
    st.tuples(st.just("release"), st.just(0), st.just(0)),
    st.tuples(st.just("owner"), st.just(0), st.just(0)),
    st.tuples(st.just("drain"), st.just(0), st.just(0)),
    st.tuples(st.just("flush"), st.booleans(), st.just(0)),
    st.tuples(st.just("release"), st.just(0), st.just(0)),
    st.tuples(st.just("fail"), st.just(0), st.just(0)),
    st.tuples(st.just("cancel"), st.integers(0, 10), st.just(0)),
)


def _run_with(
    gate: CountingGate,
    tmp: Path,
    ops: list[tuple[str, int, int]],
    high_water: int,
    low_ratio: int,
    end: str,
    allow_failures: bool,
) -> None:
    path = tmp / "random.bin"
    if path.exists():
        path.unlink()
    errors: list[str] = []

    async def main() -> None:
        fd = open_for_writing(path)
        low_water = high_water * low_ratio // 4
        writer = PositionalWriter(fd, close_fd=True, high_water=high_water, low_water=low_water)
        pieces: list[tuple[int, bytes]] = []
        scopes: list[trio.CancelScope] = []
        failure_seen: list[tuple[list[tuple[int, int]], int]] = []
        counter = 0

        def done_pieces() -> int:
            """How many of the pieces have reached the OS, from the public
            counters: pieces go in call order, each at least one byte long,
            so the bytes done name one prefix of them."""
            stats = writer.statistics()
            done_bytes = stats.bytes_written + stats.bytes_superseded
            total = 0
            for k, (_, data) in enumerate(pieces):
                if total >= done_bytes:
                    return k
                total += len(data)
            return len(pieces)

        def check(where: str) -> None:
            failure = writer.failure
            done = done_pieces()
            if failure is None and writer.state is WriterState.OPEN:
                exp_pending = sum(len(d) for _, d in pieces[done:])
                if writer.pending != exp_pending:
                    errors.append(f"{where}: pending {writer.pending} != {exp_pending}")
                stats = writer.statistics()
                if stats.bytes_written + stats.bytes_superseded != sum(
                    len(d) for _, d in pieces[:done]
                ):
                    errors.append(f"{where}: written+superseded is not a prefix of the pieces")
                if stats.peak_pending < stats.pending:
                    errors.append(f"{where}: peak < pending")
            if failure is not None and not failure_seen:
                expected = coalesce([(o, o + len(d)) for o, d in pieces[done:]])
                failure_seen.append((failure.unwritten, done))
                if failure.unwritten != expected:
                    errors.append(f"{where}: unwritten {failure.unwritten} != {expected}")
            if not _file_matches(path, pieces[:done]):
                errors.append(f"{where}: file != model of the first {done} writes")

        async def drainer(scope: trio.CancelScope) -> None:
            with scope:
                try:
                    await writer.drain()
                except (PositionalWriteError, trio.ClosedResourceError):
                    return
                if writer.failure is not None or writer.state is WriterState.CLOSED:
                    errors.append("drain returned normally on a broken/closed writer")
                elif writer.pending > high_water:
                    errors.append("drain returned with pending > high water")

        async def flusher(scope: trio.CancelScope, fsync: bool) -> None:
            target = len(pieces)
            was_open = writer.state is WriterState.OPEN
            with scope:
                try:
                    await writer.flush(fsync=fsync)
                except PositionalWriteError:
                    if was_open and done_pieces() >= target and not fsync:
                        errors.append("flush raised although its writes were done")
                    return
                except trio.ClosedResourceError:
                    return
                if done_pieces() < target:
                    errors.append("flush returned early")
                # (Once the gate is open, a later trip may be writing now.)
                if not gate.auto and not _file_matches(path, pieces[: done_pieces()]):
                    errors.append("flush returned, file differs")

        async def settle(expect_hops: int | None = None) -> None:
            if expect_hops is not None:
                assert await trio.to_thread.run_sync(gate.wait_completed, expect_hops)
                while writer.statistics().thread_hops < expect_hops and writer.failure is None:
                    await trio.lowlevel.checkpoint()
            await trio.testing.wait_all_tasks_blocked()

        async with trio.open_nursery() as nursery:
            owner_scope = trio.CancelScope()

            async def owner(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with owner_scope:
                    await writer.run(task_status=task_status)

            await nursery.start(owner)
            for name, a, b in ops:
                counter += 1
                if name == "write":
                    data = bytes([counter % 251 + 1]) * b
                    try:
                        writer.write_at(a, data)
                    except (PositionalWriteError, trio.ClosedResourceError):
                        continue
                    if b:
                        pieces.append((a, data))
                elif name == "drain":
                    scope = trio.CancelScope()
                    scopes.append(scope)
                    nursery.start_soon(drainer, scope)
                elif name == "flush":
                    scope = trio.CancelScope()
                    scopes.append(scope)
                    nursery.start_soon(flusher, scope, bool(a))
                elif name in ("release", "fail"):
                    if name == "fail" and not allow_failures:
                        continue
                    if len(gate.trips) > gate.completed:
                        if name == "fail":
                            gate.failures.append(_enospc())
                            before = list(pieces[done_pieces() :])
                        gate.release()
                        await settle(gate.completed + 1)
                        if name == "fail":
                            failure = writer.failure
                            if failure is None:
                                errors.append("a failed trip did not break the writer")
                            elif failure.unwritten != coalesce(
                                [(o, o + len(d)) for o, d in before]
                            ):
                                errors.append(
                                    f"unwritten {failure.unwritten} != "
                                    f"{coalesce([(o, o + len(d)) for o, d in before])}"
                                )
                elif name == "owner":
                    owner_scope.cancel()
                elif name == "cancel" and scopes:
                    scopes[a % len(scopes)].cancel()
                await settle()
                check(f"after op {counter} {name}")
                if errors:
                    break

            # The end.
            done_before = done_pieces()
            if end == "graceful":
                gate.auto = True
                gate.release(1000)
                # (A cancelled owner with a trip in flight breaks only now.)
                failed = writer.failure is not None or owner_scope.cancel_called
                try:
                    await writer.aclose()
                except PositionalWriteError:
                    if not failed:
                        errors.append("aclose raised without failure")
                if not failed and writer.failure is None:
                    if not _file_matches(path, pieces):
                        errors.append("after aclose the file != model")
                    stats = writer.statistics()
                    if stats.pending != 0:
                        errors.append("pending after aclose")
                    if stats.bytes_written + stats.bytes_superseded != stats.bytes_accepted:
                        errors.append("bytes not accounted after aclose")
            else:
                in_flight = len(gate.trips) > gate.completed

                async def release_later() -> None:
                    await trio.testing.wait_all_tasks_blocked()
                    if not fd_is_open(fd) and in_flight:
                        errors.append("fd closed with a trip in flight")
                    gate.auto = True
                    gate.release(1000)

                nursery.start_soon(release_later)
                with trio.CancelScope() as cancelled:
                    cancelled.cancel()
                    with suppress(PositionalWriteError):
                        await writer.aclose()
                if not _file_matches(path, pieces[: done_pieces()]):
                    errors.append("after a cancelled aclose the file != model of done writes")
                if done_pieces() < done_before:
                    errors.append("done_seq went backwards")
                if writer.pending != 0:
                    errors.append(f"pending {writer.pending} after a cancelled aclose")
            if writer.state is not WriterState.CLOSED:
                errors.append(f"state {writer.state} after aclose")
            if fd_is_open(fd):
                errors.append("fd left open")
            for scope in scopes:
                scope.cancel()
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        gate.release(1000)
    event(f"trips: {min(len(gate.trips), 3)}+")
    event(f"broken: {gate.failures == [] and any(name == 'fail' for name, _, _ in ops)}")
    assert not errors, errors


@pytest.mark.parametrize("allow_failures", [False, True], ids=["no-failures", "failures"])
@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ops=st.lists(op_strategy, max_size=30),
    high_water=st.integers(0, 40),
    low_ratio=st.integers(0, 4),
    end=st.sampled_from(["graceful", "cancelled"]),
)
def test_random_interleavings_match_the_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    allow_failures: bool,
    ops: list[tuple[str, int, int]],
    high_water: int,
    low_ratio: int,
    end: str,
) -> None:
    with monkeypatch.context() as m:
        gate = CountingGate()
        m.setattr(_positional, "write_runs", gate)
        _run_with(gate, tmp_path, ops, high_water, low_ratio, end, allow_failures=allow_failures)
