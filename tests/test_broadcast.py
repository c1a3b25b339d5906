"""Broadcaster: one synchronous call, many writers, slow ones dropped."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from test_by_reference import IdentityRecorder
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import Broadcaster, BufferedStream, BufferedWriter, BufferLimitError


async def test_every_subscriber_gets_every_message_in_order() -> None:
    streams = [ControlledStream() for _ in range(5)]
    writers = [BufferedWriter(s) for s in streams]
    hub = Broadcaster()
    for w in writers:
        hub.add(w)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for w in writers:
                await nursery.start(w.run)
            for i in range(100):
                assert hub.broadcast(b"msg %d\n" % i) == []
            for w in writers:
                await w.aclose()
    expected = b"".join(b"msg %d\n" % i for i in range(100))
    assert all(bytes(s.accepted) == expected for s in streams)
    stats = hub.statistics()
    assert (stats.subscribers, stats.messages, stats.dropped) == (5, 100, 0)


async def test_a_subscriber_at_its_limit_is_dropped_and_reported_the_rest_carry_on() -> None:
    fast = ControlledStream()
    slow = ControlledStream(stalled=True)
    fast_writer = BufferedWriter(fast, max_buffer=1000, high_water=500)
    slow_writer = BufferedWriter(slow, max_buffer=1000, high_water=500)
    hub = Broadcaster()
    hub.add(fast_writer)
    hub.add(slow_writer)
    with trio.fail_after(5):
        async with running(fast_writer), running(slow_writer):
            dropped: list[tuple[object, Exception]] = []
            for _ in range(30):
                dropped += hub.broadcast(b"x" * 100)
                await settle()
            assert [w for w, _ in dropped] == [slow_writer]
            assert isinstance(dropped[0][1], BufferLimitError)
            assert slow_writer not in hub
            assert fast_writer in hub
            assert len(hub) == 1
            await fast_writer.flush()
            assert len(fast.accepted) == 3000
            # With the "raise" policy the dropped writer itself is still usable.
            slow.unstall()
            await slow_writer.flush()
            assert len(slow.accepted) == 1000
    assert hub.statistics().dropped == 1


async def test_an_abort_policy_subscriber_is_cut_off_when_dropped() -> None:
    slow = ControlledStream(stalled=True)
    slow_writer = BufferedWriter(slow, max_buffer=150, high_water=75, overflow="abort")
    hub = Broadcaster()
    hub.add(slow_writer)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(slow_writer.run)
            assert hub.broadcast(b"x" * 100) == []
            await settle()
            [(writer, error)] = hub.broadcast(b"y" * 100)
            assert writer is slow_writer
            assert isinstance(error, trio.BrokenResourceError)
            assert isinstance(error.__cause__, BufferLimitError)
    assert slow.closed
    assert len(hub) == 0


async def test_closed_subscribers_are_dropped() -> None:
    writer = BufferedWriter(ControlledStream())
    hub = Broadcaster()
    hub.add(writer)
    with trio.fail_after(5):
        async with running(writer):
            await writer.aclose()
            [(gone, error)] = hub.broadcast(b"x")
    assert gone is writer
    assert isinstance(error, trio.ClosedResourceError)


async def test_broadcast_never_yields() -> None:
    writers = [BufferedWriter(ControlledStream(stalled=True)) for _ in range(3)]
    hub = Broadcaster()
    for w in writers:
        hub.add(w)
    with trio.fail_after(5):
        async with running(writers[0]), running(writers[1]), running(writers[2]):
            with trio.testing.assert_no_checkpoints():
                for _ in range(50):
                    hub.broadcast(b"tick")


async def test_a_large_message_is_shared_not_copied_per_subscriber() -> None:
    big = bytearray(b"z" * 100_000)  # mutable: converted to bytes once
    streams = [IdentityRecorder() for _ in range(3)]
    writers = [BufferedWriter(s) for s in streams]
    hub = Broadcaster()
    for w in writers:
        hub.add(w)
    with trio.fail_after(5):
        async with running(writers[0]), running(writers[1]), running(writers[2]):
            await settle()
            hub.broadcast(big)
            big[:] = b"!" * len(big)
            for w in writers:
                await w.flush()
    sent = [next(o for o in s.objects if len(o) == 100_000) for s in streams]  # type: ignore[arg-type]
    assert sent[0] is sent[1] is sent[2]
    assert all(bytes(s.accepted) == b"z" * 100_000 for s in streams)


async def test_statistics_show_who_is_over_high_water() -> None:
    stuck = BufferedWriter(ControlledStream(stalled=True), high_water=10)
    fine = BufferedWriter(ControlledStream(), high_water=10)
    hub = Broadcaster()
    hub.add(stuck)
    hub.add(fine)
    with trio.fail_after(5):
        async with running(stuck), running(fine):
            await settle()
            hub.broadcast(b"x" * 50)
            await settle()
            stats = hub.statistics()
            assert stats.subscribers == 2
            assert stats.over_high_water == 1
            assert stats.longest_stall == 0.0  # no stall clock without stall_timeout


def test_only_writers_can_subscribe_and_only_bytes_can_be_broadcast() -> None:
    hub = Broadcaster()
    with pytest.raises(TypeError, match="BufferedWriter"):
        hub.add(object())  # type: ignore[arg-type]
    hub.add(BufferedStream(trio.testing.memory_stream_pair()[0]))
    with pytest.raises(TypeError, match="broadcast"):
        hub.broadcast("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="broadcast"):
        hub.broadcast(5)  # type: ignore[arg-type]
    assert hub.statistics().messages == 0
    [writer] = list(hub)
    hub.discard(writer)
    hub.discard(writer)
    assert len(hub) == 0


async def test_broadcast_exclude_skips_one_subscriber_which_stays_subscribed() -> None:
    streams = [ControlledStream() for _ in range(3)]
    writers = [BufferedWriter(s) for s in streams]
    hub = Broadcaster()
    for w in writers:
        hub.add(w)
    sender = writers[1]
    with trio.fail_after(5):
        async with running(writers[0]), running(writers[1]), running(writers[2]):
            assert hub.broadcast(b"from 1\n", exclude=sender) == []
            assert hub.broadcast(b"to all\n") == []
            # Excluding a writer that is not subscribed changes nothing.
            assert hub.broadcast(b"again\n", exclude=BufferedWriter(ControlledStream())) == []
            for w in writers:
                await w.flush()
    assert sender in hub
    assert len(hub) == 3
    assert bytes(streams[0].accepted) == b"from 1\nto all\nagain\n"
    assert bytes(streams[1].accepted) == b"to all\nagain\n"
    assert bytes(streams[2].accepted) == b"from 1\nto all\nagain\n"
    assert hub.statistics().messages == 3
