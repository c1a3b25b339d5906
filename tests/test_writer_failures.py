"""BufferedWriter when things go wrong: the wrapped stream fails, the sender
task is cancelled, or the peer resets the connection."""

from __future__ import annotations

import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import BufferedWriter, WriterState

FAILURES = [
    OSError(104, "Connection reset by peer"),
    trio.BrokenResourceError("peer went away"),
    trio.ClosedResourceError("closed under us"),
    ValueError("bad value from the stream"),
]
FAILURE_IDS = ["OSError", "BrokenResourceError", "ClosedResourceError", "ValueError"]


def _calls(writer: BufferedWriter) -> list[tuple[str, Callable[[], Awaitable[object] | None]]]:
    """Every writer method that must report a broken writer."""
    return [
        ("write", lambda: writer.write(b"more")),
        ("writelines", lambda: writer.writelines([b"more"])),
        ("drain", writer.drain),
        ("flush", writer.flush),
        ("send_all", lambda: writer.send_all(b"more")),
        ("wait_send_all_might_not_block", writer.wait_send_all_might_not_block),
        ("send_eof", writer.send_eof),
    ]


async def _call(fn: Callable[[], Awaitable[object] | None]) -> None:
    result = fn()
    if result is not None:
        await result


# ----------------------------------------------------------------------
# The wrapped stream's send_all raises


@pytest.mark.parametrize("error", FAILURES, ids=FAILURE_IDS)
async def test_failed_send_all_breaks_the_writer_and_every_later_call_raises_it(
    error: Exception,
) -> None:
    stream = ControlledStream()
    stream.fail_with = error
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"doomed")
            await settle()
            # The sender did not crash the nursery; it returned.
        assert writer.state is WriterState.BROKEN
        for name, fn in _calls(writer):
            for _ in range(2):  # sticky: the same answer every time
                with pytest.raises(trio.BrokenResourceError, match="send_all failed") as info:
                    await _call(fn)
                assert info.value.__cause__ is error, name
    assert stream.calls == [b"doomed"]  # never retried


@pytest.mark.parametrize("error", FAILURES, ids=FAILURE_IDS)
async def test_parked_drain_and_flush_wake_with_broken_resource_error_chained_to_the_failure(
    error: Exception,
) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=0)
    caught: dict[str, BaseException] = {}

    async def wait_in(name: str, fn: Callable[[], Awaitable[None]]) -> None:
        with pytest.raises(trio.BrokenResourceError) as info:
            await fn()
        caught[name] = info.value

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"data")
            nursery.start_soon(wait_in, "drain", writer.drain)
            nursery.start_soon(wait_in, "flush", writer.flush)
            await settle()
            assert caught == {}
            stream.fail_with = error
            stream.release()
        # The nursery exits normally: the failure went to the waiters only.
    assert set(caught) == {"drain", "flush"}
    assert all(exc.__cause__ is error for exc in caught.values())
    assert writer.state is WriterState.BROKEN


async def test_a_failure_between_split_sends_counts_the_rest_as_lost_and_sends_no_more() -> None:
    error = OSError("second chunk failed")
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_send_size=4)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"0123456789")
            stream.release()  # first chunk goes through
            await settle()
            stream.fail_with = error
            stream.release()
            with pytest.raises(trio.BrokenResourceError) as info:
                await writer.flush()
            assert info.value.__cause__ is error
            stats = writer.statistics()
    assert stream.calls == [b"0123", b"4567"]
    assert bytes(stream.accepted) == b"0123"
    assert stats.bytes_sent == 4
    assert stats.bytes_written == 10
    assert stats.buffered == 0
    assert stats.state is WriterState.BROKEN


async def test_failed_send_eof_breaks_the_writer_and_send_eof_raises_chained() -> None:
    error = OSError("shutdown failed")
    stream = ControlledStream()
    stream.eof_fail_with = error
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"data")
            with pytest.raises(trio.BrokenResourceError, match="send_eof failed") as info:
                await writer.send_eof()
            assert info.value.__cause__ is error
    assert writer.state is WriterState.BROKEN
    assert bytes(stream.accepted) == b"data"
    with pytest.raises(trio.BrokenResourceError):
        await writer.send_eof()


async def test_aclose_of_a_broken_writer_still_closes_the_wrapped_stream() -> None:
    stream = ControlledStream()
    stream.fail_with = OSError("boom")
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"x")
            with pytest.raises(trio.BrokenResourceError):
                await writer.flush()
            await writer.aclose()  # the failure was already reported: no raise
            assert stream.closed
            assert writer.state is WriterState.CLOSED


async def test_aclose_raises_a_failure_that_left_bytes_unsent_and_was_never_reported() -> None:
    error = OSError("nobody saw this")
    stream = ControlledStream()
    stream.fail_with = error
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"lost bytes")
            await settle()
            assert writer.state is WriterState.BROKEN
            with pytest.raises(trio.BrokenResourceError) as info:
                await writer.aclose()
            assert info.value.__cause__ is error
            assert stream.closed


async def test_aclose_raises_when_the_wrapped_stream_fails_during_its_flush() -> None:
    error = OSError("failed while closing")
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer) as nursery:
            writer.write(b"last words")
            await settle()
            stream.fail_with = error

            async def unstall() -> None:
                stream.unstall()

            nursery.start_soon(unstall)
            with pytest.raises(trio.BrokenResourceError) as info:
                await writer.aclose()
            assert info.value.__cause__ is error
            assert stream.closed
            assert writer.state is WriterState.CLOSED
            await writer.aclose()  # and only once


async def test_aclose_does_not_raise_for_an_unobserved_failure_that_lost_no_bytes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A failing send_eof leaves nothing unsent; its caller gave up waiting,
    # so nobody saw the failure, and closing afterwards is still quiet.
    stream = ControlledStream()
    stream.eof_stalled = True
    stream.eof_fail_with = OSError("eof failed")
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"data")
            with trio.move_on_after(1):
                await writer.send_eof()
            stream.release_eof()
            await settle()
            assert writer.state is WriterState.BROKEN
            assert writer.statistics().bytes_sent == 4
            await writer.aclose()
            assert stream.closed


# ----------------------------------------------------------------------
# The sender task is cancelled


async def test_cancelling_the_sender_mid_send_breaks_the_writer_and_never_retries() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"half sent")
            await settle()
            assert stream.sending
            nursery.cancel_scope.cancel()
        assert writer.state is WriterState.BROKEN
        with pytest.raises(trio.BrokenResourceError, match="in the middle of a send") as info:
            writer.write(b"more")
        assert info.value.__cause__ is None
        with pytest.raises(trio.BrokenResourceError, match="cancelled"):
            await writer.flush()
        stream.unstall()
        await settle()
    assert stream.calls == [b"half sent"]
    assert writer.statistics().bytes_sent == 0


async def test_cancelling_an_idle_sender_makes_later_writes_raise_broken() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write(b"sent")
            await writer.flush()
            nursery.cancel_scope.cancel()
    assert writer.state is WriterState.BROKEN
    for _ in range(2):
        with pytest.raises(trio.BrokenResourceError, match=r"sender task was cancelled$"):
            writer.write(b"x")
    assert stream.calls == [b"sent"]


async def test_cancelling_the_sender_wakes_a_waiting_flush_with_broken() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    result: list[BaseException] = []

    async def flusher() -> None:
        try:
            await writer.flush()
        except trio.BrokenResourceError as exc:
            result.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as outer, trio.open_nursery() as sender_nursery:
            await sender_nursery.start(writer.run)
            writer.write(b"x")
            outer.start_soon(flusher)
            await settle()
            assert result == []
            sender_nursery.cancel_scope.cancel()
    assert len(result) == 1


async def test_keyboard_interrupt_in_the_sender_breaks_the_writer_and_propagates() -> None:
    class Interrupting(ControlledStream):
        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            raise KeyboardInterrupt

    writer = BufferedWriter(Interrupting())
    writer.write(b"x")
    with pytest.raises(KeyboardInterrupt):
        await writer.run()
    assert writer.state is WriterState.BROKEN
    with pytest.raises(trio.BrokenResourceError, match="interrupted in the middle of a send"):
        writer.write(b"y")


async def test_run_twice_raises_runtime_error() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer):
            with pytest.raises(RuntimeError, match="already started"):
                await writer.run()
            assert writer.state is WriterState.OPEN
            writer.write(b"still works")
            await writer.flush()


async def test_bytes_written_before_the_sender_starts_are_sent_when_it_starts() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    writer.write(b"early")
    with trio.fail_after(5):
        async with running(writer):
            await writer.flush()
    assert stream.calls == [b"early"]


# ----------------------------------------------------------------------
# Real loopback TCP


async def test_peer_reset_mid_stream_raises_broken_resource_error_without_hanging() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(5):
        try:
            client = await trio.open_tcp_stream("127.0.0.1", port)
            server = await listeners[0].accept()
        finally:
            for listener in listeners:
                await listener.aclose()
        writer = BufferedWriter(client, high_water=16 * 1024)
        async with running(writer):
            writer.write(b"hello")
            await writer.flush()
            assert await server.receive_some() == b"hello"
            # Close with SO_LINGER 0: the kernel sends RST instead of FIN.
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await server.aclose()
            chunk = b"z" * 64 * 1024

            async def keep_writing() -> None:
                for _ in range(1000):
                    writer.write(chunk)
                    await writer.flush()

            with pytest.raises(trio.BrokenResourceError) as info:
                await keep_writing()
            assert isinstance(info.value.__cause__, trio.BrokenResourceError)
            assert isinstance(info.value.__cause__.__cause__, OSError)
            assert writer.state is WriterState.BROKEN
            await writer.aclose()
        assert writer.state is WriterState.CLOSED


async def test_a_writer_used_only_as_a_trio_stream_closes_quietly_after_a_failure() -> None:
    # trio's stream semantics, which SSLStream relies on: aclose() does not
    # report a failure that send_all did not get to report.
    stream = ControlledStream()
    stream.fail_with = OSError("peer gone")
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await writer.send_all(b"close_notify")
            await settle()
            assert writer.state is WriterState.BROKEN
            await writer.aclose()  # does not raise
    assert writer.state is WriterState.CLOSED


async def test_a_write_call_makes_aclose_report_a_failure_nobody_saw() -> None:
    stream = ControlledStream()
    stream.fail_with = OSError("peer gone")
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await writer.send_all(b"header")
            writer.write(b"body")
            await settle()
            with pytest.raises(trio.BrokenResourceError) as info:
                await writer.aclose()
            assert isinstance(info.value.__cause__, OSError)


# ----------------------------------------------------------------------
# The failure property, and statistics().error


async def test_failure_is_none_while_healthy_and_after_a_normal_close() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer):
            assert writer.failure is None
            writer.write(b"fine")
            await writer.flush()
            assert writer.failure is None
            await writer.aclose()
    assert writer.state is WriterState.CLOSED
    assert writer.failure is None
    assert writer.statistics().error is None


@pytest.mark.parametrize("error", FAILURES, ids=FAILURE_IDS)
async def test_failure_is_what_write_raises_and_reading_it_does_not_report_it(
    error: Exception,
) -> None:
    stream = ControlledStream()
    stream.fail_with = error
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"lost bytes")
            await settle()
            failure = writer.failure
            assert isinstance(failure, trio.BrokenResourceError)
            assert failure.__cause__ is error
            assert writer.statistics().error == (
                f"the wrapped stream's send_all failed: {type(error).__name__}: {error}"
            )
            # Reading it reported nothing: aclose still raises the failure.
            with pytest.raises(trio.BrokenResourceError) as info:
                await writer.aclose()
            assert info.value.__cause__ is error
            assert str(failure) in str(info.value)
            # Kept after the close; write() now says closed.
            assert writer.failure is not None
            assert writer.failure.__cause__ is error
            with pytest.raises(trio.ClosedResourceError):
                writer.write(b"x")


async def test_failure_of_a_cancelled_sender_has_no_cause() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer) as nursery:
            nursery.cancel_scope.cancel()
        assert writer.state is WriterState.BROKEN
        failure = writer.failure
        assert failure is not None
        assert failure.__cause__ is None
        assert "cancelled" in str(failure)
        with pytest.raises(trio.BrokenResourceError) as info:
            writer.write(b"x")
        assert str(info.value) == str(failure)
        assert writer.statistics().error == str(failure)
        await writer.aclose()
