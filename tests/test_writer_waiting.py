"""BufferedWriter's waiting methods: drain(), flush(), send_eof() and aclose()."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import BufferedStream, BufferedWriter, WriterState


def start_waiting(nursery: trio.Nursery, wait: Callable[[], Awaitable[object]]) -> trio.Event:
    """Start ``wait()`` in *nursery*; return an event that is set once it returns."""
    returned = trio.Event()

    async def waiter() -> None:
        await wait()
        returned.set()

    nursery.start_soon(waiter)
    return returned


# ----------------------------------------------------------------------
# drain()


async def test_drain_at_or_below_high_water_returns_without_letting_another_task_run() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, high_water=10)
    other_ran = False

    async def other() -> None:
        nonlocal other_ran
        other_ran = True

    with trio.fail_after(5):
        async with running(writer) as nursery:
            nursery.start_soon(other)
            writer.write(b"x" * 10)  # exactly high water: no wait
            await writer.drain()
            await writer.drain()
            assert not other_ran
            assert stream.calls == []  # the sender did not run either
            await settle()
            assert other_ran
            assert stream.calls == [b"x" * 10]


async def test_drain_is_a_cancellation_point_even_when_it_would_not_wait() -> None:
    writer = BufferedWriter(ControlledStream())
    reached = False
    with trio.CancelScope() as scope:
        scope.cancel()
        await writer.drain()
        reached = True
    assert scope.cancelled_caught
    assert not reached


async def test_drain_over_high_water_waits_until_buffered_is_down_to_low_water() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=10, low_water=5)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"a" * 20)
            await settle()  # 20 bytes in flight
            writer.write(b"b" * 8)  # 28 buffered
            drained = start_waiting(nursery, writer.drain)
            await settle()
            assert not drained.is_set()
            stream.release()  # 20 sent; 8 left (over low water 5)
            await settle()
            assert writer.buffered == 8
            assert not drained.is_set()  # below high water is not enough
            stream.release()
            await settle()
            assert drained.is_set()
            assert writer.buffered == 0


async def test_drain_wakes_once_a_lockstep_receiver_takes_the_bytes() -> None:
    send, receive = trio.testing.lockstep_stream_one_way_pair()
    writer = BufferedWriter(send, high_water=4, low_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"0123456789")
            drained = start_waiting(nursery, writer.drain)
            await settle()
            assert not drained.is_set()
            assert await receive.receive_some() == b"0123456789"
            await settle()
            assert drained.is_set()


async def test_every_concurrent_drain_waiter_wakes() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    woken: list[int] = []

    async def drainer(i: int) -> None:
        await writer.drain()
        woken.append(i)

    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x")
            for i in range(10):
                nursery.start_soon(drainer, i)
            await settle()
            assert woken == []
            stream.unstall()
            await settle()
            assert sorted(woken) == list(range(10))


async def test_raising_low_water_wakes_waiting_drainers() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=10, low_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x" * 12)
            drained = start_waiting(nursery, writer.drain)
            await settle()
            assert not drained.is_set()
            writer.set_water_marks(high=20, low=11)  # 12 > 11: still waits
            await settle()
            assert not drained.is_set()
            writer.set_water_marks(high=20, low=12)
            await settle()
            assert drained.is_set()
            assert stream.accepted == b""  # nothing was sent: only the marks moved


async def test_drain_after_every_write_keeps_buffered_within_high_water_plus_one_write() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, high_water=100, low_water=25)
    chunk = b"m" * 30
    with trio.fail_after(5):
        async with running(writer):
            for _ in range(200):
                writer.write(chunk)
                await writer.drain()
                assert writer.buffered <= 100 + len(chunk)
            await writer.flush()
            stats = writer.statistics()
    assert 100 < stats.peak_buffered <= 100 + len(chunk)
    assert bytes(stream.accepted) == chunk * 200
    # Coalescing still works under drain: each send carries more than high water.
    assert stats.send_calls <= len(chunk) * 200 // 100 + 1


async def test_cancelling_a_waiting_drain_leaves_the_data_to_be_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"payload")
            with trio.CancelScope() as scope:
                scope.cancel()
                await writer.drain()
            assert scope.cancelled_caught
            with trio.move_on_after(1) as scope:  # virtual time: cancels it while it waits
                await writer.drain()
            assert scope.cancelled_caught
            assert writer.state is WriterState.OPEN
            assert writer.buffered == len(b"payload")
            stream.unstall()
            await writer.drain()
            assert bytes(stream.accepted) == b"payload"


async def test_drain_after_aclose_raises_closed_resource_error() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer):
            await writer.aclose()
            with pytest.raises(trio.ClosedResourceError, match="closed"):
                await writer.drain()


# ----------------------------------------------------------------------
# flush()


async def test_flush_returns_once_every_earlier_byte_was_accepted_but_not_later_ones() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"before")
            await settle()
            assert stream.calls == [b"before"]
            flushed = start_waiting(nursery, writer.flush)
            await settle()
            writer.write(b"after")
            await settle()
            assert not flushed.is_set()
            stream.release()  # "before" accepted; "after" now in flight, stalled
            await settle()
            assert flushed.is_set()
            assert bytes(stream.accepted) == b"before"
            assert stream.calls == [b"before", b"after"]
            assert writer.buffered == len(b"after")


async def test_flush_waits_for_bytes_still_queued_behind_a_send_in_flight() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"one")
            await settle()
            writer.write(b"two")  # queued, not in flight
            flushed = start_waiting(nursery, writer.flush)
            await settle()
            stream.release()
            await settle()
            assert bytes(stream.accepted) == b"one"
            assert not flushed.is_set()
            stream.release()
            await settle()
            assert flushed.is_set()
            assert bytes(stream.accepted) == b"onetwo"


async def test_concurrent_flushers_with_different_targets_each_wake_when_theirs_is_sent() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    order: list[str] = []

    async def flusher(name: str) -> None:
        await writer.flush()
        order.append(name)

    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"A")
            await settle()  # "A" in flight
            nursery.start_soon(flusher, "first")
            nursery.start_soon(flusher, "first-too")  # same target as "first"
            await settle()
            writer.write(b"B")
            nursery.start_soon(flusher, "second")
            await settle()
            assert order == []
            stream.release()
            await settle()
            assert sorted(order) == ["first", "first-too"]
            stream.release()
            await settle()
            assert sorted(order[:2]) == ["first", "first-too"]
            assert order[2:] == ["second"]
    assert stream.calls == [b"A", b"B"]


async def test_flush_is_a_checkpoint_even_with_nothing_buffered() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer):
            with trio.testing.assert_checkpoints():
                await writer.flush()
            writer.write(b"x")
            with trio.testing.assert_checkpoints():
                await writer.flush()
            with trio.CancelScope() as scope:
                scope.cancel()
                await writer.flush()
            assert scope.cancelled_caught


async def test_cancelling_a_waiting_flush_leaves_the_data_to_be_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"payload")
            with trio.move_on_after(1) as scope:
                await writer.flush()
            assert scope.cancelled_caught
            assert writer.state is WriterState.OPEN
            stream.unstall()
            await writer.flush()
    assert bytes(stream.accepted) == b"payload"


async def test_flush_after_aclose_raises_closed_resource_error() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer):
            await writer.aclose()
            with pytest.raises(trio.ClosedResourceError, match="closed"):
                await writer.flush()


# ----------------------------------------------------------------------
# send_eof()


async def test_send_eof_flushes_then_half_closes_and_the_receiver_sees_data_then_eof() -> None:
    left, right = trio.testing.memory_stream_pair()
    stream = BufferedStream(left)
    with trio.fail_after(5):
        async with running(stream):
            stream.write(b"hello ")
            stream.write(b"world")
            await stream.send_eof()
            assert stream.state is WriterState.EOF_SENT
            assert await right.receive_some() == b"hello world"
            assert await right.receive_some() == b""
            # The other direction still works after our half-close.
            await right.send_all(b"reply")
            assert await stream.receive_some() == b"reply"
            await stream.aclose()


async def test_send_eof_reaches_the_wrapped_stream_after_all_data_and_the_sender_returns() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with writer.corked():  # send_eof overrides the cork
                writer.write(b"data")
                await writer.send_eof()
            assert stream.events == ["send 4", "eof"]
            # The sender returned by itself: the nursery can finish.
        assert stream.eof_calls == 1
        await writer.aclose()
    assert stream.events == ["send 4", "eof", "close"]


async def test_send_eof_on_a_writer_over_a_stream_that_cannot_half_close_raises_type_error() -> (
    None
):
    send, receive = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"abc")
            with pytest.raises(TypeError, match=r"not a trio\.abc\.HalfCloseableStream"):
                await writer.send_eof()
            assert writer.state is WriterState.OPEN
            writer.write(b"def")  # still writable
            await writer.flush()
            assert await receive.receive_some() == b"abcdef"


async def test_a_second_send_eof_is_a_no_op_checkpoint() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await writer.send_eof()
            with trio.testing.assert_checkpoints():
                await writer.send_eof()
            assert stream.eof_calls == 1
            assert writer.state is WriterState.EOF_SENT


async def test_write_after_send_eof_raises_closed_resource_error() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x")
            nursery.start_soon(writer.send_eof)
            await settle()
            assert writer.state is WriterState.EOF_PENDING
            with pytest.raises(trio.ClosedResourceError, match="sent EOF"):
                writer.write(b"y")
            with pytest.raises(trio.ClosedResourceError, match="sent EOF"):
                writer.writelines([b"y"])
            stream.unstall()
            await settle()
            assert writer.state is WriterState.EOF_SENT
            with pytest.raises(trio.ClosedResourceError):
                writer.write(b"y")
            await writer.flush()  # nothing pending: fine
            await writer.drain()
    assert bytes(stream.accepted) == b"x"


async def test_cancelled_send_eof_still_sends_the_data_and_the_eof(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"data")
            with trio.move_on_after(1) as scope:
                await writer.send_eof()
            assert scope.cancelled_caught
            assert not stream.eof_sent
            stream.unstall()
            await settle()
            assert bytes(stream.accepted) == b"data"
            assert stream.eof_sent
            assert writer.state is WriterState.EOF_SENT
            nursery.start_soon(writer.send_eof)  # and a retry is fine


async def test_send_eof_after_aclose_raises_closed_resource_error() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer):
            await writer.aclose()
            with pytest.raises(trio.ClosedResourceError, match="closed"):
                await writer.send_eof()


async def test_send_eof_while_aclose_is_flushing_raises_closed_resource_error() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x")
            nursery.start_soon(writer.aclose)
            await settle()
            assert writer.state is WriterState.CLOSING
            with pytest.raises(trio.ClosedResourceError, match="closing"):
                await writer.send_eof()
            with pytest.raises(trio.ClosedResourceError, match="closing"):
                writer.write(b"y")
            stream.unstall()


async def test_aclose_while_send_eof_waits_makes_send_eof_raise_closed() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x")
            result: list[BaseException] = []

            async def eof() -> None:
                try:
                    await writer.send_eof()
                except trio.ClosedResourceError as exc:
                    result.append(exc)

            nursery.start_soon(eof)
            await settle()
            await trio.aclose_forcefully(writer)
            await settle()
            assert len(result) == 1
            assert not stream.eof_sent


async def test_aclose_while_the_wrapped_send_eof_runs_closes_without_waiting_for_it() -> None:
    stream = ControlledStream()
    stream.eof_stalled = True
    writer = BufferedWriter(stream)
    errors: list[BaseException] = []

    async def eof() -> None:
        try:
            await writer.send_eof()
        except trio.ClosedResourceError as exc:
            errors.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"data")
            nursery.start_soon(eof)
            await settle()
            assert stream.eof_calls == 1  # the sender is inside the wrapped send_eof
            await writer.aclose()  # does not wait for that send_eof
            assert stream.closed
            assert writer.state is WriterState.CLOSED
        # Closing woke the wrapped send_eof (which failed) and the sender
        # returned; the caller of send_eof learns that the writer was closed.
    assert len(errors) == 1
    assert not stream.eof_sent
    assert bytes(stream.accepted) == b"data"
    assert writer.state is WriterState.CLOSED


async def test_a_wrapped_send_eof_that_completes_while_aclose_runs_still_ends_the_sender() -> None:
    stream = ControlledStream()
    stream.eof_stalled = True
    stream.complete_after_close = True
    writer = BufferedWriter(stream)
    outcome: list[str] = []

    async def eof() -> None:
        try:
            await writer.send_eof()
            outcome.append("returned")
        except trio.ClosedResourceError:
            outcome.append("closed")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"data")
            nursery.start_soon(eof)
            await settle()
            assert stream.eof_calls == 1
            stream.release_eof()  # the wrapped send_eof finishes during aclose
            await writer.aclose()
    assert stream.eof_sent
    assert stream.events == ["send 4", "eof", "close"] or stream.events == [
        "send 4",
        "close",
        "eof",
    ]
    assert writer.state is WriterState.CLOSED
    # Which of the two the caller sees depends on scheduling order; both are
    # documented outcomes of send_eof racing aclose.
    assert outcome in (["returned"], ["closed"])


async def test_busy_send_eof_conflicts_with_a_concurrent_send_eof() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x")
            nursery.start_soon(writer.send_eof)
            await settle()
            with pytest.raises(trio.BusyResourceError):
                await writer.send_eof()
            stream.unstall()


# ----------------------------------------------------------------------
# aclose()


async def test_aclose_flushes_then_closes_the_wrapped_stream_and_the_sender_returns() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with writer.corked():
                writer.write(b"abc")
                writer.write(b"def")
                await writer.aclose()
        # The nursery finished: the sender task returned.
    assert stream.events == ["send 6", "close"]
    assert writer.state is WriterState.CLOSED
    with pytest.raises(trio.ClosedResourceError, match="closed"):
        writer.write(b"x")


async def test_aclose_delivers_everything_to_a_memory_receiver_then_eof() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"x" * 1000)
            await writer.aclose()
        assert await receive.receive_some() == b"x" * 1000
        assert await receive.receive_some() == b""


async def test_aclose_is_idempotent_and_a_second_call_is_a_checkpoint() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await writer.aclose()
            with trio.testing.assert_checkpoints():
                await writer.aclose()
    assert stream.close_calls == 1


async def test_two_concurrent_acloses_both_return_after_the_flush() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    done: list[int] = []

    async def close(i: int) -> None:
        await writer.aclose()
        done.append(i)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"data")
            nursery.start_soon(close, 1)
            nursery.start_soon(close, 2)
            await settle()
            assert done == []
            stream.unstall()
    assert sorted(done) == [1, 2]
    assert bytes(stream.accepted) == b"data"
    assert stream.closed


async def test_forceful_close_discards_unsent_bytes_closes_the_stream_and_wakes_waiters() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    errors: dict[str, BaseException] = {}

    async def wait_in(name: str) -> None:
        try:
            if name == "drain":
                await writer.drain()
            else:
                await writer.flush()
        except trio.ClosedResourceError as exc:
            errors[name] = exc

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"in flight")
            await settle()
            writer.write(b"queued")
            nursery.start_soon(wait_in, "drain")
            nursery.start_soon(wait_in, "flush")
            await settle()
            await trio.aclose_forcefully(writer)
            assert stream.closed
            assert writer.state is WriterState.CLOSED
        # Both waiters got ClosedResourceError and the sender returned.
    assert set(errors) == {"drain", "flush"}
    stats = writer.statistics()
    assert stats.bytes_written == len(b"in flightqueued")
    assert stats.bytes_sent == 0
    assert stats.buffered == 0
    assert stream.calls == [b"in flight"]  # the queued bytes were never sent


async def test_cancelled_aclose_still_closes_the_stream_and_raises_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"stuck")
            with trio.move_on_after(1) as scope:
                await writer.aclose()
            assert scope.cancelled_caught
            assert stream.closed
            assert writer.state is WriterState.CLOSED


async def test_a_send_that_completes_after_a_forced_close_is_not_followed_by_another() -> None:
    stream = ControlledStream(stalled=True)
    stream.complete_after_close = True
    writer = BufferedWriter(stream, max_send_size=4)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"0123456789")
            await settle()
            assert stream.calls == [b"0123"]
            await trio.aclose_forcefully(writer)
            stream.unstall()  # the in-flight chunk now completes
        stats = writer.statistics()
    assert stream.calls == [b"0123"]
    assert stats.bytes_sent == 0  # settled at close: counted as lost
    assert stats.bytes_written == 10


async def test_a_single_send_that_completes_after_a_forced_close_ends_the_sender() -> None:
    stream = ControlledStream(stalled=True)
    stream.complete_after_close = True
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"abc")
            await settle()
            await trio.aclose_forcefully(writer)
            stream.unstall()
    assert stream.calls == [b"abc"]
    assert writer.state is WriterState.CLOSED


# ----------------------------------------------------------------------
# wait_send_all_might_not_block(): returns once a one-byte send_all would
# not wait, that is while buffered < high_water; with high_water 0 and
# nothing buffered, the wrapped stream decides.


@pytest.mark.parametrize("held", [3, 4, 5], ids=["below", "at", "above"])
async def test_wait_send_all_might_not_block_returns_at_once_only_below_high_water(
    held: int,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=4, low_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x" * held)
            await settle()  # the sender is stalled in send_all with the bytes
            assert writer.buffered == held
            returned = start_waiting(nursery, writer.wait_send_all_might_not_block)
            await settle()
            assert returned.is_set() == (held < 4)
            if held >= 4:
                # A one-byte send_all would wait here too: it queues, finds
                # buffered > high_water, and waits for low water.
                stream.release()
                await settle()
                assert writer.buffered == 0
                assert returned.is_set()
            assert stream.accepted == b"x" * held or held < 4


async def test_wait_send_all_might_not_block_is_a_checkpoint_below_high_water() -> None:
    writer = BufferedWriter(ControlledStream(stalled=True), high_water=4)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"123")
            with trio.testing.assert_checkpoints():
                await writer.wait_send_all_might_not_block()


async def test_with_high_water_0_and_nothing_buffered_the_wrapped_stream_decides() -> None:
    send, receive = trio.testing.lockstep_stream_one_way_pair()
    writer = BufferedWriter(send, high_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            returned = start_waiting(nursery, writer.wait_send_all_might_not_block)
            await settle()
            # The lockstep stream would block a send_all until its peer reads.
            assert not returned.is_set()
            nursery.start_soon(receive.receive_some)
            await settle()
            assert returned.is_set()


async def test_a_write_while_the_wrapped_stream_is_asked_takes_turns_with_it() -> None:
    # The lockstep stream raises BusyResourceError if its send_all and its
    # wait_send_all_might_not_block ever overlap: the sender must take the
    # stream back from the waiter before it sends.
    send, receive = trio.testing.lockstep_stream_one_way_pair()
    writer = BufferedWriter(send, high_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            returned = start_waiting(nursery, writer.wait_send_all_might_not_block)
            await settle()  # waiting in the lockstep stream's own method
            writer.write(b"abc")
            await settle()  # the sender is now in send_all, the waiter waits for it
            assert writer.state is WriterState.OPEN
            assert not returned.is_set()
            assert await receive.receive_some() == b"abc"
            await settle()
            # Accepted; nothing buffered: the waiter asks the stream again,
            # and the stream says no until its peer reads again.
            assert writer.statistics().bytes_sent == 3
            assert not returned.is_set()
            nursery.start_soon(receive.receive_some)
            await settle()
            assert returned.is_set()
            assert writer.state is WriterState.OPEN


@pytest.mark.parametrize("when", ["before the write", "with the write"])
async def test_cancelling_wait_send_all_might_not_block_while_it_asks_leaves_the_writer_usable(
    when: str,
) -> None:
    send, receive = trio.testing.lockstep_stream_one_way_pair()
    writer = BufferedWriter(send, high_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            scope = trio.CancelScope()

            async def waiter() -> None:
                with scope:
                    await writer.wait_send_all_might_not_block()

            nursery.start_soon(waiter)
            await settle()
            if when == "before the write":
                scope.cancel()
                await settle()
            writer.write(b"data")
            # In the same step: the sender is cancelling the waiter's call
            # to the stream while the waiter itself is cancelled.
            scope.cancel()
            received = await receive.receive_some()
            assert received == b"data"
            await writer.flush()
            assert writer.state is WriterState.OPEN
            assert scope.cancelled_caught
            writer.write(b"more")
            nursery.start_soon(receive.receive_some)
            await writer.flush()
            assert writer.statistics().bytes_sent == 8


async def test_wait_send_all_might_not_block_raises_the_failure_that_broke_the_writer() -> None:
    stream = ControlledStream(stalled=True)
    stream.fail_with = trio.BrokenResourceError("peer gone")
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"x")
            await settle()
            failures: list[BaseException] = []

            async def waiter() -> None:
                with pytest.raises(trio.BrokenResourceError) as info:
                    await writer.wait_send_all_might_not_block()
                failures.append(info.value)

            nursery.start_soon(waiter)
            await settle()
            stream.release()
            await settle()
            assert len(failures) == 1
            assert failures[0].__cause__ is stream.fail_with


async def test_wait_send_all_might_not_block_returns_at_once_after_send_eof() -> None:
    writer = BufferedWriter(ControlledStream(), high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            await writer.send_eof()
            with trio.testing.assert_checkpoints():
                await writer.wait_send_all_might_not_block()
            with pytest.raises(trio.ClosedResourceError):
                await writer.send_all(b"x")


class SlowToLeaveStream(trio.abc.SendStream):
    """A stream whose wait_send_all_might_not_block, once cancelled, takes
    until :attr:`gate` is set to return; it logs its calls in order."""

    def __init__(self) -> None:
        self.gate = trio.Event()
        self.events: list[str] = []
        self.fail_wait_with: BaseException | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append("send_all")
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        self.events.append("wait")
        if self.fail_wait_with is not None:
            await trio.lowlevel.checkpoint()
            raise self.fail_wait_with
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self.gate.wait()
            self.events.append("wait ended")

    async def aclose(self) -> None:
        self.events.append("close")
        await trio.lowlevel.checkpoint()


async def test_the_sender_sends_only_after_the_wrapped_streams_wait_has_ended() -> None:
    stream = SlowToLeaveStream()
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            returned = start_waiting(nursery, writer.wait_send_all_might_not_block)
            await settle()
            writer.write(b"x")
            await settle()
            assert stream.events == ["wait"]  # the sender waits for the call to end
            stream.gate.set()
            await settle()
            assert stream.events[:3] == ["wait", "wait ended", "send_all"]
            assert writer.statistics().bytes_sent == 1
            assert not returned.is_set()  # asking the stream again


async def test_a_writer_closed_while_the_sender_takes_the_stream_back_sends_nothing() -> None:
    stream = SlowToLeaveStream()
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            failures: list[BaseException] = []

            async def waiter() -> None:
                try:
                    await writer.wait_send_all_might_not_block()
                except trio.ClosedResourceError as exc:
                    failures.append(exc)

            nursery.start_soon(waiter)
            await settle()
            writer.write(b"x")
            await settle()
            await trio.aclose_forcefully(writer)
            stream.gate.set()
            await settle()
            assert "send_all" not in stream.events
            assert len(failures) == 1
            assert writer.state is WriterState.CLOSED


async def test_a_failure_of_the_wrapped_streams_wait_propagates_as_it_is() -> None:
    stream = SlowToLeaveStream()
    stream.fail_wait_with = trio.BrokenResourceError("no more")
    writer = BufferedWriter(stream, high_water=0)
    with trio.fail_after(5):
        async with running(writer):
            with pytest.raises(trio.BrokenResourceError, match="no more"):
                await writer.wait_send_all_might_not_block()
            assert writer.state is WriterState.OPEN


async def test_raising_high_water_lets_a_waiting_wait_send_all_might_not_block_go() -> None:
    writer = BufferedWriter(ControlledStream(stalled=True), high_water=4, low_water=0)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"1234")
            returned = start_waiting(nursery, writer.wait_send_all_might_not_block)
            await settle()
            assert not returned.is_set()
            writer.set_water_marks(high=5, low=0)
            await settle()
            assert returned.is_set()
