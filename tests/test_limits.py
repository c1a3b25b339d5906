"""Slow consumers: max_buffer with its two policies, and the stall timeout."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from test_socket_fast_path import tcp_pair
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import (
    BufferedWriter,
    BufferLimitError,
    StallTimeoutError,
    WriterState,
    open_buffered_writer,
)

# ----------------------------------------------------------------------
# max_buffer, policy "raise"


async def test_a_write_past_max_buffer_is_refused_and_the_writer_stays_usable() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_buffer=100, high_water=50)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"a" * 60)
            await settle()  # 60 bytes in flight, stalled
            writer.write(b"b" * 40)  # exactly at the limit: fine
            with pytest.raises(BufferLimitError, match="max_buffer=100"):
                writer.write(b"c")
            assert writer.buffered == 100
            assert writer.statistics().overflows == 1
            assert writer.state is WriterState.OPEN
            stream.unstall()
            await writer.flush()
            writer.write(b"d")
            await writer.flush()
    assert bytes(stream.accepted) == b"a" * 60 + b"b" * 40 + b"d"


async def test_tiny_writes_cannot_slip_past_the_limit() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_buffer=1000, high_water=500)
    with trio.fail_after(5):
        async with running(writer):
            accepted = 0

            def fill() -> None:
                nonlocal accepted
                while True:
                    writer.write(b"x")
                    accepted += 1

            with pytest.raises(BufferLimitError):
                fill()
            assert accepted == 1000
            assert writer.buffered == 1000


async def test_writelines_past_the_limit_queues_nothing_of_that_call() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_buffer=10, high_water=5)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"12345")
            with pytest.raises(BufferLimitError):
                writer.writelines([b"678", b"9ab"])
            assert writer.buffered == 5
            stream.unstall()
            await writer.flush()
    assert bytes(stream.accepted) == b"12345"


async def test_a_large_write_held_by_reference_is_checked_too() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_buffer=100_000, high_water=50_000)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"x" * 50_000)
            await settle()
            with pytest.raises(BufferLimitError):
                writer.write(bytes(70_000))
            assert writer.buffered == 50_000


async def test_a_write_bigger_than_the_limit_to_an_idle_writer_is_refused() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, max_buffer=10, high_water=5)
    with trio.fail_after(5):
        async with running(writer):
            await settle()
            with pytest.raises(BufferLimitError):
                writer.write(b"x" * 11)
            assert writer.buffered == 0
            writer.write(b"y" * 10)
            await writer.flush()
    assert bytes(stream.accepted) == b"y" * 10


async def test_a_write_bigger_than_the_limit_sends_nothing_on_an_idle_socket() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, _server):
            writer = BufferedWriter(client, max_buffer=10, high_water=5)
            async with running(writer):
                await settle()
                with pytest.raises(BufferLimitError):
                    writer.write(b"x" * 11)
                assert writer.statistics().bytes_sent == 0


# ----------------------------------------------------------------------
# max_buffer, policy "abort"


async def test_abort_breaks_the_writer_discards_the_buffer_and_closes_the_stream() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_buffer=100, high_water=50, overflow="abort")
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"a" * 80)
            await settle()  # in flight, stuck
            with pytest.raises(trio.BrokenResourceError) as info:
                writer.write(b"b" * 30)
            assert isinstance(info.value.__cause__, BufferLimitError)
            assert writer.buffered == 0
            with pytest.raises(trio.BrokenResourceError) as again:
                await writer.drain()
            assert isinstance(again.value.__cause__, BufferLimitError)
        # The stuck send was interrupted, the stream closed, the sender ended.
    assert stream.closed
    assert writer.state is WriterState.BROKEN
    await writer.aclose()  # already reported: quiet


async def test_abort_from_writelines_uses_the_same_policy() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_buffer=4, high_water=2, overflow="abort")
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with pytest.raises(trio.BrokenResourceError):
                writer.writelines([b"abc", b"de"])
    assert stream.closed


# ----------------------------------------------------------------------
# stall_timeout (virtual time)


async def test_a_peer_that_takes_nothing_for_stall_timeout_is_cut_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=10, stall_timeout=30)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"x" * 100)
            start = trio.current_time()
            with pytest.raises(trio.BrokenResourceError) as info:
                await writer.drain()
            assert isinstance(info.value.__cause__, StallTimeoutError)
            assert trio.current_time() - start == pytest.approx(30)
    assert stream.closed


async def test_bytes_that_get_through_restart_the_stall_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=10, low_water=0, max_send_size=10, stall_timeout=30)
    with trio.fail_after(1000):
        async with running(writer):
            writer.write(b"x" * 100)  # ten sends of 10 bytes
            await settle()

            async def trickle() -> None:
                for _ in range(10):
                    await trio.sleep(20)  # slower than nothing, faster than 30 s
                    stream.release()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trickle)
                await writer.drain()  # took 200 s in all, never 30 without progress
            assert writer.state is WriterState.OPEN
            assert bytes(stream.accepted) == b"x" * 100


async def test_stalled_for_counts_seconds_over_high_water_without_progress(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=10, stall_timeout=60)
    with trio.fail_after(100):
        async with running(writer):
            writer.write(b"x" * 100)
            await settle()
            assert writer.stalled_for == 0.0  # the clock has not moved yet
            await trio.sleep(12)
            assert writer.statistics().stalled_for == pytest.approx(12)
            stream.unstall()
            await writer.flush()
            assert writer.stalled_for == 0.0


async def test_a_slow_send_below_high_water_is_not_a_stall(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=1000, stall_timeout=5)
    with trio.fail_after(1000):
        async with running(writer):
            writer.write(b"x" * 10)
            await trio.sleep(500)
            assert writer.state is WriterState.OPEN
            assert writer.stalled_for == 0.0
            stream.unstall()
            await writer.flush()


async def test_a_stall_over_a_real_socket_cuts_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(1000):
        async with tcp_pair() as (client, _server):  # the server never reads
            writer = BufferedWriter(client, stall_timeout=10)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)

                async def push() -> None:
                    while True:
                        writer.write(b"x" * 65536)
                        await writer.drain()

                with pytest.raises(trio.BrokenResourceError) as info:
                    await push()
                assert isinstance(info.value.__cause__, StallTimeoutError)
            assert client.socket.fileno() == -1  # closed


# ----------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_buffer": -1}, ValueError),
        ({"max_buffer": 1.5}, TypeError),
        ({"overflow": "drop"}, ValueError),
        ({"stall_timeout": 0}, ValueError),
        ({"stall_timeout": -3}, ValueError),
        ({"stall_timeout": "soon"}, ValueError),
    ],
)
def test_limit_arguments_are_checked(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        BufferedWriter(trio.testing.MemorySendStream(), **kwargs)  # type: ignore[arg-type]


def test_max_buffer_is_readable() -> None:
    assert BufferedWriter(trio.testing.MemorySendStream()).max_buffer is None
    assert (
        BufferedWriter(trio.testing.MemorySendStream(), max_buffer=5, high_water=2).max_buffer == 5
    )


# ----------------------------------------------------------------------
# max_buffer must be above high_water, or drain() could never wait


def test_max_buffer_at_or_below_the_default_high_water_is_refused_saying_what_to_set() -> None:
    with pytest.raises(ValueError, match="max_buffer") as info:
        BufferedWriter(trio.testing.MemorySendStream(), max_buffer=1000)
    message = str(info.value)
    assert "max_buffer (1000) must be above high_water (65536, the default)" in message
    assert "high_water=500" in message


@pytest.mark.parametrize("high", [100, 101])
def test_max_buffer_at_or_below_an_explicit_high_water_is_refused(high: int) -> None:
    with pytest.raises(
        ValueError, match=rf"max_buffer \(100\) must be above high_water \({high}\)"
    ):
        BufferedWriter(trio.testing.MemorySendStream(), max_buffer=100, high_water=high)
    writer = BufferedWriter(trio.testing.MemorySendStream(), max_buffer=100, high_water=99)
    assert (writer.high_water, writer.max_buffer) == (99, 100)


def test_set_water_marks_refuses_a_high_water_at_max_buffer_and_keeps_the_marks() -> None:
    writer = BufferedWriter(trio.testing.MemorySendStream(), max_buffer=100, high_water=50)
    with pytest.raises(ValueError, match="must be above high_water"):
        writer.set_water_marks(100)
    assert (writer.high_water, writer.low_water) == (50, 12)
    writer.set_water_marks(99, 10)
    assert (writer.high_water, writer.low_water) == (99, 10)


async def test_open_buffered_writer_refuses_the_limit_at_the_call_leaving_the_stream_open() -> None:
    stream = trio.testing.MemorySendStream()
    with pytest.raises(ValueError, match="max_buffer"):
        open_buffered_writer(stream, max_buffer=10)
    await stream.send_all(b"still open")
    assert stream.get_data_nowait() == b"still open"
    await stream.aclose()
