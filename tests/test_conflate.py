"""ConflatingWriter: latest value wins per key, in front of a writer."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import (
    Broadcaster,
    BufferedWriter,
    BufferLimitError,
    ConflatingWriter,
    WriterState,
    open_buffered_writer,
    open_conflating_writer,
)


def frame(key: int, seq: int) -> bytes:
    return b"K%d:%04d\n" % (key, seq)


def frames_of(data: bytes | bytearray) -> list[bytes]:
    return bytes(data).splitlines(keepends=True)


async def test_a_consumer_that_keeps_up_gets_every_frame_in_order() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer), open_conflating_writer(writer) as latest:
            for seq in range(100):
                latest.write_latest(seq % 3, frame(seq % 3, seq))
                await settle()
        stats = latest.statistics()
    assert frames_of(stream.accepted) == [frame(i % 3, i) for i in range(100)]
    assert (stats.frames_written, stats.frames_sent, stats.frames_superseded) == (100, 100, 0)
    assert stats.state is WriterState.CLOSED
    assert stream.closed


async def test_a_slow_consumer_gets_the_newest_frame_of_each_key_in_place() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=4)
    with trio.fail_after(5):
        async with running(writer), open_conflating_writer(writer) as latest:
            latest.write_latest("a", frame(1, 0))  # handed at once: over high water now
            await settle()
            assert stream.calls == [frame(1, 0)]
            latest.write_latest("a", frame(1, 1))  # waits
            latest.write_latest("b", frame(2, 2))
            latest.write_latest("a", frame(1, 3))  # replaces a's, keeps its place
            latest.write_latest("b", frame(2, 4))
            assert latest.pending == 2
            stats = latest.statistics()
            assert (stats.frames_superseded, stats.pending_bytes) == (2, 2 * len(frame(1, 0)))
            stream.unstall()
            await latest.flush()
            assert frames_of(stream.accepted) == [frame(1, 0), frame(1, 3), frame(2, 4)]
            stats = latest.statistics()
    assert (stats.frames_written, stats.frames_sent, stats.frames_superseded) == (5, 3, 2)
    assert stats.peak_pending_bytes == 2 * len(frame(1, 0))


async def test_a_frame_handed_to_the_writer_is_never_replaced() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=12)
    with trio.fail_after(5):
        async with running(writer), open_conflating_writer(writer) as latest:
            latest.write_latest("a", frame(1, 0))
            latest.write_latest("a", frame(1, 1))  # still room: in the writer too
            latest.write_latest("a", frame(1, 2))  # over high water now: waits
            latest.write_latest("a", frame(1, 3))  # replaces only that one
            stream.unstall()
            await latest.flush()
    assert frames_of(stream.accepted) == [frame(1, 0), frame(1, 1), frame(1, 3)]


async def test_the_age_of_the_oldest_waiting_update_is_kept_across_replacements(
    mock_clock: trio.testing.MockClock,
) -> None:
    clock = mock_clock
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)

    async def body() -> None:
        with trio.fail_after(5):
            async with running(writer), open_conflating_writer(writer) as latest:
                latest.write_latest("a", frame(1, 0))
                assert latest.statistics().oldest_pending_age == 0.0
                latest.write_latest("a", frame(1, 1))
                clock.jump(2.0)
                latest.write_latest("b", frame(2, 2))
                clock.jump(1.0)
                latest.write_latest("a", frame(1, 3))
                assert latest.statistics().oldest_pending_age == 3.0
                stream.unstall()
                await latest.flush()
                assert latest.statistics().oldest_pending_age == 0.0

    await body()
    assert frames_of(stream.accepted) == [frame(1, 0), frame(1, 3), frame(2, 2)]


async def test_a_plain_write_is_a_barrier_after_every_earlier_frame() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer), open_conflating_writer(writer) as latest:
            latest.write_latest("a", frame(1, 0))
            latest.write_latest("a", frame(1, 1))
            latest.write_latest("b", frame(2, 2))
            latest.write(b"PLAIN\n")
            latest.write_latest("a", frame(1, 3))
            latest.write_latest("a", frame(1, 4))
            assert latest.pending == 1
            stream.unstall()
        stats = latest.statistics()
    assert frames_of(stream.accepted) == [
        frame(1, 0),
        frame(1, 1),
        frame(2, 2),
        b"PLAIN\n",
        frame(1, 4),
    ]
    assert (stats.plain_writes, stats.frames_superseded, stats.frames_sent) == (1, 1, 4)


async def test_max_keys_refuses_a_new_key_and_still_replaces_a_waiting_one() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer), open_conflating_writer(writer, max_keys=2) as latest:
            assert latest.max_keys == 2
            latest.write_latest("x", frame(0, 0))  # handed
            latest.write_latest("a", frame(1, 1))
            latest.write_latest("b", frame(2, 2))
            with pytest.raises(BufferLimitError, match="max_keys=2"):
                latest.write_latest("c", frame(3, 3))
            latest.write_latest("a", frame(1, 4))
            assert latest.statistics().refused == 1
            stream.unstall()
    assert frames_of(stream.accepted) == [frame(0, 0), frame(1, 4), frame(2, 2)]


async def test_a_broken_writer_breaks_it_with_the_cause_chained() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            latest = ConflatingWriter(writer)
            await nursery.start(latest.run)
            latest.write_latest("a", frame(1, 0))
            latest.write_latest("a", frame(1, 1))
            await settle()
            stream.fail_with = OSError("gone")
            stream.release()
            await settle()
            assert latest.state is WriterState.BROKEN
            failure = latest.failure
            assert failure is not None
            assert isinstance(failure.__cause__, trio.BrokenResourceError)
            assert latest.statistics().frames_lost == 1
            # Never reported by a call yet: aclose reports it.
            with pytest.raises(trio.BrokenResourceError, match="1 frames were not sent"):
                await latest.aclose()
            await latest.aclose()
    assert stream.closed


async def test_a_write_to_a_broken_writer_raises_and_breaks_it() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            stream.fail_with = OSError("gone")
            writer.write(b"x")
            await settle()
            with pytest.raises(trio.BrokenResourceError) as info:
                latest.write_latest("a", frame(1, 0))
            assert isinstance(info.value.__cause__, trio.BrokenResourceError)
            with pytest.raises(trio.BrokenResourceError):
                latest.write(b"x")
            with pytest.raises(trio.BrokenResourceError):
                await latest.drain()
            assert latest.statistics().frames_lost == 1
            await latest.aclose()  # reported already


async def test_a_plain_write_to_a_broken_writer_breaks_it() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            stream.fail_with = OSError("gone")
            writer.write(b"x")
            await settle()
            with pytest.raises(trio.BrokenResourceError):
                latest.write(b"plain")
            assert latest.state is WriterState.BROKEN
            await latest.aclose()


async def test_a_writer_closed_underneath_breaks_it() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            await writer.aclose()
            with pytest.raises(trio.BrokenResourceError) as info:
                latest.write_latest("a", b"x")
            assert isinstance(info.value.__cause__, trio.ClosedResourceError)


async def test_a_frame_too_big_for_max_buffer_breaks_it() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=8, max_buffer=16)
    with trio.fail_after(5):
        async with running(writer), open_conflating_writer(writer) as latest:
            with pytest.raises(trio.BrokenResourceError) as info:
                latest.write_latest("a", b"x" * 17)
            assert isinstance(info.value.__cause__, BufferLimitError)
            stream.unstall()


async def test_the_feeder_breaks_it_when_the_writer_refuses_a_waiting_frame() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=8, max_buffer=16)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            async with trio.open_nursery() as nursery:
                await nursery.start(latest.run)
                latest.write_latest("a", b"x" * 9)
                latest.write_latest("b", b"y" * 17)  # waits; too big for max_buffer
                stream.release()
                await settle()
                stream.release()
            assert latest.state is WriterState.BROKEN
            with pytest.raises(trio.BrokenResourceError) as info:
                latest.write_latest("a", b"z")
            assert isinstance(info.value.__cause__, BufferLimitError)
            await latest.aclose()


async def test_aclose_sends_the_waiting_frames_then_closes() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            async with trio.open_nursery() as nursery:
                await nursery.start(latest.run)
                latest.write_latest("a", frame(1, 0))
                latest.write_latest("b", frame(2, 1))
                latest.write_latest("c", frame(3, 2))
                nursery.start_soon(latest.aclose)
                await settle()
                assert latest.state is WriterState.CLOSING
                with pytest.raises(trio.ClosedResourceError, match="closing"):
                    latest.write_latest("a", b"")
                with pytest.raises(trio.ClosedResourceError):
                    latest.write(b"")
                stream.unstall()
            assert latest.state is WriterState.CLOSED
            with pytest.raises(trio.ClosedResourceError, match="closed"):
                latest.write_latest("a", b"")
            with pytest.raises(trio.ClosedResourceError):
                await latest.flush()
            await latest.aclose()  # again: a checkpoint
    assert frames_of(stream.accepted) == [frame(1, 0), frame(2, 1), frame(3, 2)]
    assert stream.closed


async def test_aclose_without_a_feeder_hands_the_frames_over_itself() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            latest.write_latest("a", frame(1, 0))
            latest.write_latest("b", frame(2, 1))
            stream.unstall()
            await latest.aclose()
    assert frames_of(stream.accepted) == [frame(1, 0), frame(2, 1)]


async def test_a_cancelled_aclose_discards_the_frames_and_closes_the_writer() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            async with trio.open_nursery() as nursery:
                await nursery.start(latest.run)
                latest.write_latest("a", frame(1, 0))
                latest.write_latest("b", frame(2, 1))
                await trio.aclose_forcefully(latest)
            stats = latest.statistics()
    assert stats.state is WriterState.CLOSED
    assert (stats.frames_sent, stats.frames_lost) == (1, 1)
    assert stream.closed


async def test_a_cancelled_feeder_breaks_it() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            async with trio.open_nursery() as nursery:
                await nursery.start(latest.run)
                latest.write_latest("a", frame(1, 0))
                latest.write_latest("b", frame(2, 1))
                await settle()
                nursery.cancel_scope.cancel()
            assert latest.state is WriterState.BROKEN
            with pytest.raises(trio.BrokenResourceError, match="cancelled"):
                await latest.flush()
            with pytest.raises(RuntimeError, match="already started"):
                await latest.run()
            stream.unstall()
            await latest.aclose()


async def test_a_flush_waiting_when_it_breaks_raises() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            async with trio.open_nursery() as nursery:
                await nursery.start(latest.run)
                latest.write_latest("a", frame(1, 0))
                latest.write_latest("b", frame(2, 1))

                async def flush() -> None:
                    with pytest.raises(trio.BrokenResourceError, match="failed"):
                        await latest.flush()

                nursery.start_soon(flush)
                await settle()
                stream.fail_with = OSError("gone")
                stream.release()
            await latest.aclose()


async def test_a_flush_waiting_when_it_is_closed_forcefully_raises() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            async with trio.open_nursery() as nursery:
                await nursery.start(latest.run)
                latest.write_latest("a", frame(1, 0))
                latest.write_latest("b", frame(2, 1))

                async def flush() -> None:
                    with pytest.raises(trio.ClosedResourceError):
                        await latest.flush()

                nursery.start_soon(flush)
                await settle()
                await trio.aclose_forcefully(latest)


async def test_bad_arguments_raise_and_queue_nothing() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with pytest.raises(TypeError, match="BufferedWriter or BufferedStream"):
        ConflatingWriter(stream)  # type: ignore[arg-type]
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_keys"):
            ConflatingWriter(writer, max_keys=bad)  # type: ignore[arg-type]
    latest = ConflatingWriter(writer)
    assert latest.writer is writer
    with pytest.raises(TypeError, match="write_latest"):
        latest.write_latest("a", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unhashable"):
        latest.write_latest([], b"x")  # type: ignore[arg-type]
    assert latest.statistics().frames_written == 0
    assert (latest.need_drain, latest.stalled_for) == (False, 0.0)
    # A mutable frame is copied.
    data = bytearray(b"abc")
    with trio.fail_after(5):
        async with running(writer):
            stream.stalled = True
            writer.set_water_marks(0)
            latest.write_latest("a", b"x")
            latest.write_latest("a", data)
            with pytest.raises(TypeError, match="unhashable"):
                latest.write_latest({}, b"x")  # type: ignore[arg-type]
            data[:] = b"zzz"
            stream.unstall()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(latest.run)
                await latest.drain()
                await latest.aclose()
    assert bytes(stream.accepted) == b"xabc"


async def test_broadcast_latest_conflates_for_the_slow_subscriber_only() -> None:
    fast, slow, plain = ControlledStream(), ControlledStream(stalled=True), ControlledStream()
    hub = Broadcaster()
    with trio.fail_after(5):
        async with (
            open_buffered_writer(fast, high_water=16) as fast_writer,
            open_buffered_writer(slow, high_water=16) as slow_writer,
            open_buffered_writer(plain, high_water=16) as plain_writer,
            open_conflating_writer(fast_writer) as fast_latest,
            open_conflating_writer(slow_writer, max_keys=3) as slow_latest,
        ):
            for sub in (fast_latest, slow_latest, plain_writer):
                hub.add(sub)
            for seq in range(60):
                assert hub.broadcast_latest(seq % 3, frame(seq % 3, seq)) == []
                await settle()
            assert slow_latest.pending == 3
            # A fourth key is one too many for the slow one: it is dropped.
            [(who, error)] = hub.broadcast_latest(9, frame(9, 99))
            assert who is slow_latest
            assert isinstance(error, BufferLimitError)
            assert hub.broadcast(b"END\n") == []
            assert hub.statistics().messages == 62
            slow.unstall()
    expected = [frame(i % 3, i) for i in range(60)] + [frame(9, 99), b"END\n"]
    assert frames_of(fast.accepted) == expected
    assert frames_of(plain.accepted) == expected
    keyed = frames_of(slow.accepted)
    assert len(keyed) < 60
    for key in range(3):
        mine = [f for f in keyed if f.startswith(b"K%d:" % key)]
        assert mine == sorted(mine)
        assert mine[-1] == frame(key, 57 + key)


async def test_broadcast_latest_exclude_skips_one_subscriber() -> None:
    one, two = ControlledStream(), ControlledStream()
    hub = Broadcaster()
    with trio.fail_after(5):
        async with (
            open_buffered_writer(one) as one_writer,
            open_buffered_writer(two) as two_writer,
            open_conflating_writer(one_writer) as one_latest,
            open_conflating_writer(two_writer) as two_latest,
        ):
            hub.add(one_latest)
            hub.add(two_latest)
            assert hub.broadcast_latest(1, frame(1, 0), exclude=two_latest) == []
            assert hub.broadcast_latest(1, frame(1, 1)) == []
            assert two_latest in hub
    assert frames_of(one.accepted) == [frame(1, 0), frame(1, 1)]
    assert frames_of(two.accepted) == [frame(1, 1)]


async def test_broadcast_latest_refuses_bad_arguments_before_anyone_gets_anything() -> None:
    hub = Broadcaster()
    with pytest.raises(TypeError, match="broadcast_latest"):
        hub.broadcast_latest("a", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unhashable"):
        hub.broadcast_latest([], b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ConflatingWriter"):
        hub.add(object())  # type: ignore[arg-type]
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    hub.add(ConflatingWriter(writer))
    assert hub.statistics().over_high_water == 0


async def test_a_frame_the_writer_refuses_on_the_fast_path_counts_as_written_and_lost() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, high_water=4, max_buffer=10)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer)
            with pytest.raises(trio.BrokenResourceError) as caught:
                latest.write_latest("a", b"x" * 11)  # the writer has room, but not that much
            assert isinstance(caught.value.__cause__, BufferLimitError)
            stats = latest.statistics()
            assert (stats.frames_written, stats.frames_lost) == (1, 1)
            assert stats.frames_written == (
                stats.frames_sent
                + stats.frames_superseded
                + stats.pending_frames
                + stats.frames_lost
            )
            await latest.aclose()


async def test_max_keys_lets_a_new_key_in_once_the_writer_has_room_for_the_waiting_ones() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=12)
    with trio.fail_after(5):
        async with running(writer):
            latest = ConflatingWriter(writer, max_keys=1)  # no feeder: only writes move frames
            latest.write_latest("x", frame(0, 0))  # handed
            latest.write_latest("a", frame(1, 1))  # handed: over high water now
            latest.write_latest("b", frame(2, 2))  # waits: max_keys reached
            stream.unstall()
            await writer.flush()  # the writer has room again; b still waits
            assert latest.pending == 1
            latest.write_latest("c", frame(3, 3))  # b moves first, so c fits
            stats = latest.statistics()
            assert stats.refused == 0
            await latest.aclose()
    assert frames_of(stream.accepted) == [frame(0, 0), frame(1, 1), frame(2, 2), frame(3, 3)]


async def test_entering_open_conflating_writer_twice_is_a_clear_runtime_error() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            manager = open_conflating_writer(writer)
            async with manager as latest:
                latest.write_latest(1, b"x")
            with pytest.raises(
                RuntimeError, match=r"only be entered once.*open_conflating_writer\("
            ):
                async with manager:
                    raise AssertionError("the block must not run")  # pragma: no cover
    assert stream.accepted == b"x"
