"""PositionalWriter: ordering, coalescing, backpressure, flush, close and cancellation."""

from __future__ import annotations

import array
import os
import random
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from positional_testing import fd_is_open, gated_trips, open_for_writing, owned_writer

from trio_bufwriter import (
    DEFAULT_POSITIONAL_HIGH_WATER,
    PositionalWriteError,
    PositionalWriter,
    WriterState,
    _open_file,
    open_positional_writer,
)

PIECE = 16 * 1024


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "out.bin"


# ----------------------------------------------------------------------
# What lands in the file


async def test_pieces_in_random_order_from_many_tasks_assemble_the_file(path: Path) -> None:
    source = random.Random(1).randbytes(256 * PIECE)
    offsets = list(range(0, len(source), PIECE))
    random.Random(2).shuffle(offsets)
    with trio.fail_after(10):
        async with open_positional_writer(path) as writer:

            async def worker(mine: list[int]) -> None:
                for offset in mine:
                    writer.write_at(offset, source[offset : offset + PIECE])
                    await writer.drain()

            async with trio.open_nursery() as nursery:
                for i in range(8):
                    nursery.start_soon(worker, offsets[i::8])
    assert path.read_bytes() == source
    stats = writer.statistics()
    assert stats.write_at_calls == 256
    assert stats.bytes_accepted == stats.bytes_written == len(source)
    assert stats.pending == 0
    assert stats.state is WriterState.CLOSED


async def test_writes_made_in_one_tick_go_out_in_one_trip_and_one_syscall(path: Path) -> None:
    with trio.fail_after(5):
        async with open_positional_writer(path) as writer:
            for offset in reversed(range(0, 1000 * 100, 100)):
                writer.write_at(offset, bytes([offset // 100 % 256]) * 100)
            await writer.flush()
            stats = writer.statistics()
    assert stats.thread_hops == 1
    assert stats.batches == 1
    assert stats.runs == 1
    assert stats.syscalls == 1
    assert path.read_bytes() == b"".join(bytes([i % 256]) * 100 for i in range(1000))


async def test_gaps_between_pieces_make_separate_runs(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(10, b"b")
        writer.write_at(0, b"a")
        writer.write_at(11, b"c")
        await writer.flush()
        assert writer.statistics().runs == 2
    assert path.read_bytes() == b"a" + bytes(9) + b"bc"


async def test_a_later_write_wins_where_it_overlaps_an_earlier_one_in_the_same_batch(
    path: Path,
) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(0, b"aaaaaaaaaa")
        writer.write_at(2, b"BBB")
        writer.write_at(4, b"cc")
        writer.write_at(0, b"d")
        await writer.flush()
        stats = writer.statistics()
    assert path.read_bytes() == b"daBBccaaaa"
    # Of the a's, those at 0 and 2-5; of the B's, the one at 4.
    assert stats.bytes_superseded == 6
    assert stats.bytes_written == 10


async def test_a_later_write_wins_across_batches(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(0, b"xxxx")
        await writer.flush()
        writer.write_at(1, b"yy")
    assert path.read_bytes() == b"xyyx"


async def test_mutable_data_is_copied_and_bytes_are_not(path: Path) -> None:
    data = bytearray(b"before")
    view_source = bytearray(b"12345")
    async with open_positional_writer(path) as writer:
        writer.write_at(0, data)
        writer.write_at(6, memoryview(view_source)[1:4])
        writer.write_at(9, array.array("B", [65, 66]))
        data[:] = b"AFTER!"
        view_source[:] = b"zzzzz"
    assert path.read_bytes() == b"before234AB"


async def test_a_non_contiguous_buffer_is_refused_as_write_refuses_it(path: Path) -> None:
    strided = memoryview(b"abcdef")[::2]
    with trio.fail_after(10):
        async with open_positional_writer(path) as writer:
            with pytest.raises(TypeError, match="C-contiguous"):
                writer.write_at(0, strided)
            writer.write_at(0, strided.tobytes())  # what the message says to do
    assert path.read_bytes() == b"ace"


async def test_a_write_past_the_end_leaves_zeros_before_it(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(1000, b"end")
    assert path.read_bytes() == bytes(1000) + b"end"


async def test_an_empty_write_counts_but_writes_nothing(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(5, b"")
        await writer.flush()
        stats = writer.statistics()
    assert stats.write_at_calls == 1
    assert stats.thread_hops == 0
    assert path.read_bytes() == b""


async def test_an_existing_file_keeps_its_other_bytes_unless_truncated(path: Path) -> None:
    path.write_bytes(b"0123456789")
    async with open_positional_writer(path) as writer:
        writer.write_at(3, b"abc")
    assert path.read_bytes() == b"012abc6789"
    async with open_positional_writer(path, truncate=True) as writer:
        writer.write_at(1, b"z")
    assert path.read_bytes() == b"\0z"


async def test_create_false_refuses_a_missing_file(path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        async with open_positional_writer(path, create=False):
            pass  # pragma: no cover


async def test_preallocate_reserves_the_size(path: Path) -> None:
    async with open_positional_writer(path, preallocate=1 << 20) as writer:
        assert os.fstat(writer.fd).st_size == 1 << 20
        writer.write_at(0, b"x")
    assert path.stat().st_size == 1 << 20


async def test_preallocating_more_than_the_disk_holds_raises_and_opens_nothing(path: Path) -> None:
    with pytest.raises(OSError, match=r"Errno") as caught:
        async with open_positional_writer(path, preallocate=1 << 62):
            pass  # pragma: no cover
    assert isinstance(caught.value, OSError)


# ----------------------------------------------------------------------
# Bad input


async def test_bad_arguments_raise_clear_errors_and_queue_nothing(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(0, b"kept")
        for offset, data, error in [
            ("0", b"x", TypeError),
            (1.0, b"x", TypeError),
            (True, b"x", TypeError),
            (-1, b"x", ValueError),
            (0, "text", TypeError),
            (0, 5, TypeError),
            ((1 << 63) - 2, b"xyz", ValueError),
        ]:
            with pytest.raises(error):
                writer.write_at(offset, data)  # type: ignore[arg-type]
        stats = writer.statistics()
        assert stats.write_at_calls == 1
        assert stats.pending == 4
    assert path.read_bytes() == b"kept"


def test_water_marks_are_checked() -> None:
    with pytest.raises(ValueError, match="must not be above"):
        PositionalWriter(0, high_water=10, low_water=11)
    with pytest.raises(ValueError, match=">= 0"):
        PositionalWriter(0, high_water=-1)
    with pytest.raises(TypeError, match="high_water must be an int"):
        PositionalWriter(0, high_water=1.5)  # type: ignore[arg-type]
    writer = PositionalWriter(0)
    assert writer.high_water == DEFAULT_POSITIONAL_HIGH_WATER
    assert writer.low_water == DEFAULT_POSITIONAL_HIGH_WATER // 4


def test_open_positional_writer_checks_its_arguments_before_opening(path: Path) -> None:
    with pytest.raises(ValueError, match="must not be above"):
        open_positional_writer(path, high_water=1, low_water=2)
    with pytest.raises(ValueError, match="preallocate"):
        open_positional_writer(path, preallocate=-1)
    with pytest.raises(TypeError, match="bool"):
        open_positional_writer(True)
    assert not path.exists()


# ----------------------------------------------------------------------
# Backpressure


async def test_drain_below_high_water_does_not_yield_but_is_a_cancellation_point(
    path: Path,
) -> None:
    async with open_positional_writer(path) as writer:
        ran = False

        async def other() -> None:
            nonlocal ran
            ran = True

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            writer.write_at(0, b"x")
            await writer.drain()
            assert not ran
        with trio.CancelScope() as scope:
            scope.cancel()
            await writer.drain()
            pytest.fail("drain() did not raise Cancelled")  # pragma: no cover
        assert scope.cancelled_caught


async def test_a_waiting_drain_returns_once_the_queue_is_at_low_water(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # high 100, low 20; the owner takes at most 50 bytes (half of high) a trip.
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        async with open_positional_writer(path, high_water=100, low_water=20) as writer:
            writer.write_at(0, bytes(30))
            await gate.wait_entered()  # trip 1: [0, 30)
            for offset in (30, 60, 90):
                writer.write_at(offset, bytes(30))
            drained = False

            async def drainer() -> None:
                nonlocal drained
                await writer.drain()
                drained = True

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drainer)
                await trio.testing.wait_all_tasks_blocked()
                assert not drained  # 120 pending > 100
                for queued_after_taking in (60, 30):
                    gate.release()
                    await gate.wait_entered()  # the next trip took one 30-byte piece
                    await trio.testing.wait_all_tasks_blocked()
                    assert writer.pending == queued_after_taking + 30
                    assert not drained  # more than 20 bytes still queued
                gate.release()
                await gate.wait_entered()  # the last piece is in a trip: queue empty
                await trio.testing.wait_all_tasks_blocked()
                # Returned while that batch is still being written: producers
                # refill the queue meanwhile instead of taking turns with trips.
                assert drained
                assert writer.pending == 30
                gate.release()
            assert [len(trip) for trip in gate.trips] == [1, 1, 1, 1]


async def test_pending_stays_within_the_budget_plus_one_piece(path: Path) -> None:
    high = 64 * PIECE
    offsets = list(range(0, 1024 * PIECE, PIECE))
    random.Random(3).shuffle(offsets)
    piece = bytes(PIECE)
    with trio.fail_after(20):
        async with open_positional_writer(path, high_water=high) as writer:

            async def worker(mine: list[int]) -> None:
                for offset in mine:
                    # drain() first: no task then holds a piece in the writer
                    # while it waits, so the budget is passed by one piece at most.
                    await writer.drain()
                    writer.write_at(offset, piece)
                    await trio.lowlevel.checkpoint()  # a producer that yields

            async with trio.open_nursery() as nursery:
                for i in range(8):
                    nursery.start_soon(worker, offsets[i::8])
    stats = writer.statistics()
    assert stats.peak_pending <= high + PIECE
    assert stats.batches < len(offsets)


# ----------------------------------------------------------------------
# flush


async def test_flush_returns_once_earlier_writes_are_readable(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(4, b"tail")
        writer.write_at(0, b"head")
        await writer.flush()
        assert os.pread(os.open(path, os.O_RDONLY | os.O_CLOEXEC), 8, 0) == b"headtail"


async def test_flush_waits_for_a_write_made_while_a_trip_was_in_flight(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        async with open_positional_writer(path) as writer:
            writer.write_at(0, b"a")
            await gate.wait_entered()
            writer.write_at(1, b"b")  # not in the trip under way
            flushed = False

            async def flusher() -> None:
                nonlocal flushed
                await writer.flush()
                flushed = True

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flusher)
                gate.release()
                await gate.wait_entered()  # the second trip, with b
                await trio.testing.wait_all_tasks_blocked()
                assert not flushed
                gate.release()
            assert path.read_bytes() == b"ab"


async def test_flush_with_fsync_syncs_after_the_writes(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        await writer.flush(fsync=True)  # nothing written yet: nothing to sync
        assert writer.statistics().fsyncs == 0
        writer.write_at(0, b"x")
        await writer.flush(fsync=True)
        assert writer.statistics().fsyncs == 1
        await writer.flush()  # already written: returns without a trip
        await writer.flush(fsync=True)  # already synced
        assert writer.statistics().thread_hops == 1


async def test_fsync_is_a_trip_of_its_own_when_the_writes_went_without_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        async with open_positional_writer(path) as writer:
            writer.write_at(0, b"x")
            await gate.wait_entered()  # writing, without fsync
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(writer.flush, fsync=True))
                await trio.testing.wait_all_tasks_blocked()
                gate.release()
                await gate.wait_entered()  # the fsync trip
                gate.release()
            assert writer.statistics().fsyncs == 1
            assert gate.trips[1] == []


async def test_fdatasync_replaces_fsync_when_asked(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync"))
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("fdatasync"))
    async with open_positional_writer(path, fdatasync=True, fsync_on_close=True) as writer:
        writer.write_at(0, b"x")
        await writer.flush(fsync=True)
        writer.write_at(1, b"y")
    assert calls == ["fdatasync", "fdatasync"]
    assert writer.statistics().fsyncs == 2


async def test_fsync_on_close_syncs_once(path: Path) -> None:
    async with open_positional_writer(path, fsync_on_close=True) as writer:
        writer.write_at(0, b"durable")
    assert writer.statistics().fsyncs == 1
    assert path.read_bytes() == b"durable"


async def test_a_cancelled_flush_still_leaves_the_write_done(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        async with open_positional_writer(path) as writer:
            writer.write_at(0, b"abc")
            with trio.move_on_after(0.01) as scope:
                await writer.flush()
            assert scope.cancelled_caught
            gate.release()
            await writer.flush()
    assert path.read_bytes() == b"abc"


async def test_many_tasks_can_flush_at_once(path: Path) -> None:
    async with open_positional_writer(path) as writer, trio.open_nursery() as nursery:
        for i in range(10):
            writer.write_at(i, b"x")
            nursery.start_soon(writer.flush)
    assert path.read_bytes() == b"x" * 10


# ----------------------------------------------------------------------
# Closing


async def test_aclose_writes_everything_then_closes_an_owned_descriptor(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        writer.write_at(0, b"last words")
        fd = writer.fd
    assert not fd_is_open(fd)
    assert path.read_bytes() == b"last words"


async def test_a_borrowed_descriptor_is_left_open(path: Path) -> None:
    fd = open_for_writing(path)
    try:
        async with open_positional_writer(fd) as writer:
            writer.write_at(0, b"borrowed")
        assert fd_is_open(fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"borrowed"


async def test_entering_in_a_cancelled_scope_closes_the_descriptor_it_opened(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cancelled while the file is being opened: the descriptor exists, and
    # the writer's start is what the cancellation hits.
    opened: list[int] = []
    real_open = _open_file._open
    scope = trio.CancelScope()

    def open_then_cancel(*args: Any) -> int:
        opened.append(real_open(*args))
        trio.from_thread.run_sync(scope.cancel)
        return opened[-1]

    monkeypatch.setattr(_open_file, "_open", open_then_cancel)
    with trio.fail_after(5):
        with scope:
            async with open_positional_writer(path):
                raise AssertionError("the block must not run")  # pragma: no cover
        assert scope.cancelled_caught
    assert len(opened) == 1
    assert not fd_is_open(opened[0])


async def test_entering_in_a_cancelled_scope_leaves_a_borrowed_descriptor_open(
    path: Path,
) -> None:
    fd = open_for_writing(path)
    try:
        with trio.fail_after(5):
            with trio.CancelScope() as scope:
                scope.cancel()
                async with open_positional_writer(fd):
                    raise AssertionError("the block must not run")  # pragma: no cover
        assert fd_is_open(fd)
    finally:
        os.close(fd)


async def test_after_aclose_everything_but_aclose_raises_closed(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        pass
    with pytest.raises(trio.ClosedResourceError):
        writer.write_at(0, b"x")
    with pytest.raises(trio.ClosedResourceError):
        await writer.drain()
    with pytest.raises(trio.ClosedResourceError):
        await writer.flush()
    await writer.aclose()
    assert writer.state is WriterState.CLOSED


async def test_aclose_without_an_owner_task_writes_the_pieces_itself(path: Path) -> None:
    writer = owned_writer(path)
    fd = writer.fd
    writer.write_at(1, b"b")
    writer.write_at(0, b"a")
    await writer.aclose()
    assert not fd_is_open(fd)
    assert path.read_bytes() == b"ab"
    with pytest.raises(RuntimeError, match="already started"):
        await writer.run()


async def test_a_flush_waiting_when_aclose_starts_completes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        async with open_positional_writer(path) as writer:
            writer.write_at(0, b"a")
            await gate.wait_entered()
            writer.write_at(1, b"b")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer.flush)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(writer.aclose)
                await trio.testing.wait_all_tasks_blocked()
                assert writer.state is WriterState.CLOSING
                gate.release(2)
    assert path.read_bytes() == b"ab"


async def test_the_owner_task_runs_once(path: Path) -> None:
    async with open_positional_writer(path) as writer:
        with pytest.raises(RuntimeError, match="already started"):
            await writer.run()


# ----------------------------------------------------------------------
# Cancellation


async def test_cancelled_aclose_lets_the_trip_in_flight_finish_before_closing(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        writer = owned_writer(path)
        fd = writer.fd
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(0, b"in flight")
            await gate.wait_entered()
            writer.write_at(100, b"queued")

            async def close_then_release() -> None:
                await trio.testing.wait_all_tasks_blocked()
                # aclose is cancelled now, yet must wait for the trip.
                assert fd_is_open(fd)
                gate.release()

            nursery.start_soon(close_then_release)
            with trio.CancelScope() as scope:
                scope.cancel()
                await writer.aclose()
            assert scope.cancelled_caught
        assert not fd_is_open(fd)
        assert path.read_bytes() == b"in flight"  # the queued piece was discarded
        stats = writer.statistics()
        assert stats.bytes_written == 9
        assert stats.pending == 0
        assert stats.state is WriterState.CLOSED


async def test_a_block_that_raises_propagates_its_error_as_itself(path: Path) -> None:
    class Boom(Exception):
        pass

    fds: list[int] = []

    async def block_that_raises() -> None:
        async with open_positional_writer(path) as writer:
            fds.append(writer.fd)
            raise Boom

    with pytest.raises(Boom):
        await block_that_raises()
    assert not fd_is_open(fds[0])


async def test_a_cancelled_owner_breaks_the_writer(path: Path) -> None:
    writer = owned_writer(path)
    fd = writer.fd
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(5, b"abc")  # queued; the owner is cancelled before its trip
            nursery.cancel_scope.cancel()
    assert writer.state is WriterState.BROKEN
    with pytest.raises(
        PositionalWriteError, match="the PositionalWriter's owner task was cancelled; 3 bytes"
    ) as caught:
        writer.write_at(0, b"x")
    # No system call failed: there is no OSError to chain (as the stream
    # writer's "sender task was cancelled").
    assert caught.value.__cause__ is None
    assert caught.value.unwritten == [(5, 8)]
    failure = writer.failure
    assert failure is not None
    assert failure.__cause__ is None
    assert writer.statistics().error == str(failure)
    await writer.aclose()  # reported already: closes quietly
    assert not fd_is_open(fd)


async def test_cancelling_the_owner_mid_trip_records_the_trip_then_breaks(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(10), gated_trips(monkeypatch) as gate:
        writer = owned_writer(path)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(0, b"done")
            await gate.wait_entered()
            writer.write_at(10, b"lost")
            nursery.cancel_scope.cancel()
            gate.release()
        stats = writer.statistics()
        assert stats.bytes_written == 4
        with pytest.raises(PositionalWriteError) as caught:
            await writer.aclose()
        assert caught.value.unwritten == [(10, 14)]
        assert path.read_bytes() == b"done"
