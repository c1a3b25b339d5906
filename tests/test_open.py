"""open_buffered_writer(), open_buffered_stream() and BufferedStream."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
import trio.testing
from stream_testing import receive_all
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import (
    BufferedStream,
    BufferedWriter,
    WriterState,
    open_buffered_stream,
    open_buffered_writer,
)
from trio_bufwriter._open import _raise_single
from trio_bufwriter._open import running as running_context

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


# ----------------------------------------------------------------------
# open_buffered_writer / open_buffered_stream: normal use


async def test_open_buffered_writer_runs_the_sender_and_closes_gracefully_on_exit() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with open_buffered_writer(send, high_water=100) as writer:
            assert isinstance(writer, BufferedWriter)
            assert writer.high_water == 100
            for i in range(100):
                writer.write(b"line %d\n" % i)
                await writer.drain()
            await writer.flush()  # the sender is running
            assert writer.statistics().bytes_sent == writer.statistics().bytes_written
            writer.write(b"tail")
        assert writer.state is WriterState.CLOSED
        assert await receive_all(receive) == b"".join(b"line %d\n" % i for i in range(100)) + (
            b"tail"
        )


async def test_open_buffered_writer_waits_for_a_slow_peer_on_graceful_exit() -> None:
    send, receive = trio.testing.lockstep_stream_one_way_pair()
    received: list[bytes] = []

    async def reader() -> None:
        received.append(await receive_all(receive))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            async with open_buffered_writer(send) as writer:
                writer.write(b"a" * 5000)
    assert received == [b"a" * 5000]


async def test_open_buffered_stream_wraps_a_two_way_stream() -> None:
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with open_buffered_stream(left, max_send_size=3) as stream:
            assert isinstance(stream, BufferedStream)
            assert stream.max_send_size == 3
            stream.write(b"ping")
            await stream.flush()
            assert await right.receive_some() == b"ping"
            await right.send_all(b"pong")
            assert await stream.receive_some() == b"pong"
            stream.write(b"bye")
        assert await receive_all(right) == b"bye"


async def test_nursery_start_usage_from_the_docs_works() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            writer = BufferedWriter(send)
            await nursery.start(writer.run)
            writer.write(b"hello")
            await writer.drain()
            await writer.aclose()
        # The sender returned after aclose, so the nursery could finish.
        assert await receive_all(receive) == b"hello"


# ----------------------------------------------------------------------
# open_buffered_writer: exceptions


class UserError(Exception):
    pass


async def test_a_user_exception_comes_out_as_itself_with_its_context_preserved() -> None:
    send, _receive = trio.testing.memory_stream_one_way_pair()

    async def body() -> None:
        async with open_buffered_writer(send) as writer:
            writer.write(b"unsent")
            try:
                raise KeyError("original context")
            except KeyError:
                raise UserError("from the block") from None

    async def body_with_context() -> None:
        async with open_buffered_writer(send) as writer:
            writer.write(b"unsent")
            try:
                raise KeyError("original context")
            except KeyError:
                raise UserError("from the block")  # noqa: B904

    with trio.fail_after(5):
        with pytest.raises(UserError, match="from the block") as info:
            await body()
        assert info.value.__suppress_context__
        send, _receive = trio.testing.memory_stream_one_way_pair()
        with pytest.raises(UserError, match="from the block") as info:
            await body_with_context()
    assert type(info.value) is UserError
    assert isinstance(info.value.__context__, KeyError)
    assert info.value.__context__.args == ("original context",)


async def test_a_user_exception_does_not_wait_for_a_peer_that_never_reads() -> None:
    send, _receive = trio.testing.lockstep_stream_one_way_pair()
    writers: list[BufferedWriter] = []

    async def body() -> None:
        async with open_buffered_writer(send) as writer:
            writers.append(writer)
            writer.write(b"x" * 100)
            await settle()  # the send is stuck: nobody reads
            raise UserError("give up")

    with trio.fail_after(5):
        with pytest.raises(UserError, match="give up"):
            await body()
    assert writers[0].state is WriterState.CLOSED
    with pytest.raises(trio.ClosedResourceError):
        await send.send_all(b"more")  # the wrapped stream was closed


async def test_a_user_exception_is_not_replaced_by_a_failure_of_the_stream() -> None:
    stream = ControlledStream()
    stream.fail_with = OSError("stream failed too")

    async def body() -> None:
        async with open_buffered_writer(stream) as writer:
            writer.write(b"x")
            await settle()
            assert writer.state is WriterState.BROKEN
            raise UserError("mine")

    with trio.fail_after(5):
        with pytest.raises(UserError, match="mine"):
            await body()
    assert stream.closed


async def test_broken_resource_error_from_the_exit_flush_can_be_caught_around_async_with() -> None:
    error = OSError("peer gone")
    stream = ControlledStream()
    stream.fail_with = error
    caught: list[trio.BrokenResourceError] = []
    with trio.fail_after(5):
        try:
            async with open_buffered_writer(stream) as writer:
                writer.write(b"flushed at exit")
        except trio.BrokenResourceError as exc:
            caught.append(exc)
    assert len(caught) == 1
    assert caught[0].__cause__ is error
    assert stream.closed


async def test_a_failure_before_exit_that_nobody_saw_is_raised_at_exit() -> None:
    error = OSError("peer gone early")
    stream = ControlledStream()
    stream.fail_with = error

    async def body() -> None:
        async with open_buffered_writer(stream) as writer:
            writer.write(b"lost")
            await settle()  # the send fails here; nobody calls the writer again

    with trio.fail_after(5):
        with pytest.raises(trio.BrokenResourceError) as info:
            await body()
    assert info.value.__cause__ is error


async def test_a_failure_already_reported_inside_the_block_is_not_raised_again_at_exit() -> None:
    stream = ControlledStream()
    stream.fail_with = OSError("peer gone")
    with trio.fail_after(5):
        async with open_buffered_writer(stream) as writer:
            writer.write(b"x")
            with pytest.raises(trio.BrokenResourceError):
                await writer.flush()
    assert stream.closed


async def test_cancelling_the_block_is_absorbed_by_the_enclosing_scope() -> None:
    stream = ControlledStream(stalled=True)
    reached = False
    with trio.fail_after(5):
        with trio.CancelScope() as scope:
            async with open_buffered_writer(stream) as writer:
                writer.write(b"never sent")
                scope.cancel()
                await trio.lowlevel.checkpoint()
                reached = True
        assert scope.cancelled_caught
    assert not reached
    assert stream.closed
    assert writer.state is WriterState.CLOSED


async def test_an_exception_group_raised_by_the_block_comes_out_as_that_group() -> None:
    send, _receive = trio.testing.memory_stream_one_way_pair()
    first, second = UserError("a"), UserError("b")

    async def body() -> None:
        async with open_buffered_writer(send):
            raise ExceptionGroup("user group", [first, second])

    with trio.fail_after(5):
        with pytest.raises(ExceptionGroup) as info:
            await body()
    # Not wrapped in the nursery's group.  (trio's cancel scope may hand back
    # a derived copy of the group, so compare its content, not its identity.)
    assert info.value.message == "user group"
    assert info.value.exceptions == (first, second)


async def test_several_errors_come_out_as_a_group() -> None:
    # The block raises; closing then makes the sender's stuck send_all end
    # in KeyboardInterrupt: two errors at once.
    class InterruptedWhenClosed(ControlledStream):
        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            try:
                await super().send_all(data)
            except trio.ClosedResourceError:
                raise KeyboardInterrupt from None

    async def body() -> None:
        async with open_buffered_writer(InterruptedWhenClosed(stalled=True)) as writer:
            writer.write(b"x")
            await settle()
            raise UserError("and this")

    with trio.fail_after(5):
        with pytest.RaisesGroup(KeyboardInterrupt, UserError):
            await body()


# ----------------------------------------------------------------------
# Constructor arguments are checked at call time


@pytest.mark.parametrize("opener", [open_buffered_writer, open_buffered_stream])
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"high_water": -1}, ValueError, "high_water must be >= 0"),
        ({"high_water": 10, "low_water": 20}, ValueError, "must not be above"),
        ({"max_send_size": 0}, ValueError, "max_send_size must be >= 1"),
        ({"high_water": "big"}, TypeError, None),
    ],
)
def test_openers_check_their_arguments_when_called_not_when_entered(
    opener: object, kwargs: dict[str, object], error: type[Exception], message: str | None
) -> None:
    left, _right = trio.testing.memory_stream_pair()
    with pytest.raises(error, match=message):
        opener(left, **kwargs)  # type: ignore[operator]


def test_open_buffered_writer_rejects_a_non_stream_when_called() -> None:
    with pytest.raises(TypeError, match="SendStream"):
        open_buffered_writer(object())  # type: ignore[arg-type]


def test_open_buffered_stream_rejects_a_one_way_stream_when_called() -> None:
    with pytest.raises(TypeError, match="wrap a one-way SendStream with BufferedWriter"):
        open_buffered_stream(trio.testing.MemorySendStream())  # type: ignore[arg-type]


async def test_wrapping_a_socket_says_to_make_a_socket_stream_of_it() -> None:
    with socket.socket() as sock:
        for wrap in (BufferedStream, BufferedWriter, open_buffered_stream, open_buffered_writer):
            with pytest.raises(TypeError) as info:
                wrap(sock)  # type: ignore[operator]
            assert "trio.SocketStream(trio.socket.from_stdlib_socket(sock))" in str(info.value)
            assert "SendStream with BufferedWriter" not in str(info.value)
        trio_sock = trio.socket.from_stdlib_socket(sock.dup())
        with trio_sock, pytest.raises(TypeError, match=r"wrap trio\.SocketStream\(sock\)$"):
            BufferedStream(trio_sock)  # type: ignore[arg-type]


# ----------------------------------------------------------------------
# BufferedStream


def test_buffered_stream_requires_a_two_way_stream() -> None:
    with pytest.raises(TypeError, match=r"expected a trio\.abc\.Stream to wrap"):
        BufferedStream(trio.testing.MemorySendStream())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"expected a trio\.abc\.Stream"):
        BufferedStream(object())  # type: ignore[arg-type]


def test_buffered_stream_is_a_half_closeable_stream_exposing_its_transport() -> None:
    left, _right = trio.testing.memory_stream_pair()
    stream = BufferedStream(left, high_water=8)
    assert isinstance(stream, trio.abc.HalfCloseableStream)
    assert stream.transport_stream is left
    assert stream.high_water == 8
    assert stream.low_water == 2


async def test_buffered_stream_receive_some_passes_straight_through() -> None:
    left, right = trio.testing.memory_stream_pair()
    stream = BufferedStream(left)
    with trio.fail_after(5):
        await right.send_all(b"hello")
        assert await stream.receive_some(2) == b"he"
        assert await stream.receive_some() == b"llo"
        with pytest.raises(ValueError, match="max_bytes must be >= 1"):
            await stream.receive_some(0)
        await right.aclose()
        assert await stream.receive_some() == b""


async def test_buffered_stream_send_all_returns_once_queued_not_once_sent() -> None:
    transport = trio.StapledStream(ControlledStream(stalled=True), ControlledStream())
    inner = transport.send_stream
    assert isinstance(inner, ControlledStream)
    stream = BufferedStream(transport, high_water=100)
    with trio.fail_after(5):
        async with running(stream):
            with trio.testing.assert_checkpoints():
                await stream.send_all(b"queued")
            await settle()
            assert inner.calls == [b"queued"]
            assert inner.accepted == b""  # still stuck in the transport
            assert stream.buffered == len(b"queued")
            inner.unstall()
            await stream.flush()
            assert inner.accepted == b"queued"


async def test_buffered_stream_send_all_over_high_water_waits_for_low_water() -> None:
    transport = trio.StapledStream(ControlledStream(stalled=True), ControlledStream())
    inner = transport.send_stream
    assert isinstance(inner, ControlledStream)
    stream = BufferedStream(transport, high_water=4, low_water=0)
    done = trio.Event()

    async def send() -> None:
        await stream.send_all(b"0123456789")
        done.set()

    with trio.fail_after(5):
        async with running(stream) as nursery:
            nursery.start_soon(send)
            await settle()
            assert not done.is_set()
            inner.unstall()
            await settle()
            assert done.is_set()
            assert inner.accepted == b"0123456789"


async def test_buffered_stream_send_all_cancelled_before_queueing_queues_nothing() -> None:
    left, right = trio.testing.memory_stream_pair()
    stream = BufferedStream(left)
    with trio.fail_after(5):
        async with running(stream):
            with trio.CancelScope() as scope:
                scope.cancel()
                await stream.send_all(b"never")
            assert scope.cancelled_caught
            assert stream.buffered == 0
            assert stream.statistics().write_calls == 0
            await stream.send_all(b"ok")
            await stream.aclose()
        assert await receive_all(right) == b"ok"


async def test_buffered_stream_send_all_cancelled_while_waiting_still_sends_and_stays_usable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport = trio.StapledStream(ControlledStream(stalled=True), ControlledStream())
    inner = transport.send_stream
    assert isinstance(inner, ControlledStream)
    stream = BufferedStream(transport, high_water=0)
    with trio.fail_after(5):
        async with running(stream):
            with trio.move_on_after(1) as scope:
                await stream.send_all(b"queued anyway")
            assert scope.cancelled_caught
            assert stream.state is WriterState.OPEN
            inner.unstall()
            await stream.send_all(b"; more")
            await stream.flush()
    assert inner.accepted == b"queued anyway; more"


async def test_send_all_conflicts_with_a_concurrent_send_all_and_write_does_not() -> None:
    transport = trio.StapledStream(ControlledStream(stalled=True), ControlledStream())
    stream = BufferedStream(transport, high_water=0)
    with trio.fail_after(5):
        async with running(stream) as nursery:
            nursery.start_soon(stream.send_all, b"first")
            await settle()  # holds send_all: waiting for low water
            with pytest.raises(trio.BusyResourceError, match="already using"):
                await stream.send_all(b"second")
            with pytest.raises(trio.BusyResourceError):
                await stream.wait_send_all_might_not_block()
            with pytest.raises(trio.BusyResourceError):
                await stream.send_eof()
            stream.write(b"write is fine")  # write() is for many tasks
            inner = transport.send_stream
            assert isinstance(inner, ControlledStream)
            inner.unstall()
            await stream.flush()
            assert inner.accepted == b"firstwrite is fine"


async def test_two_send_alls_started_together_conflict_even_below_high_water() -> None:
    left, _right = trio.testing.memory_stream_pair()
    stream = BufferedStream(left)
    outcomes: list[str] = []

    async def send(data: bytes) -> None:
        try:
            await stream.send_all(data)
            outcomes.append("ok")
        except trio.BusyResourceError:
            outcomes.append("busy")

    with trio.fail_after(5):
        async with running(stream) as nursery:
            nursery.start_soon(send, b"a")
            nursery.start_soon(send, b"b")
            await settle()
    assert sorted(outcomes) == ["busy", "ok"]


async def test_an_outer_cancellation_comes_out_as_one_cancelled_not_a_group() -> None:
    # The block and the sender are both cancelled: two Cancelled in the
    # nursery's group, of which one comes out, as a checkpoint raises it.
    left: list[BaseException] = []
    left_stream, _ = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        with trio.CancelScope() as scope:
            try:
                async with open_buffered_stream(left_stream):
                    scope.cancel()
                    await trio.sleep_forever()
            except BaseException as exc:
                left.append(exc)
                raise
        assert scope.cancelled_caught
    assert len(left) == 1
    assert type(left[0]) is trio.Cancelled, repr(left[0])


# ----------------------------------------------------------------------
# The stream is the writer's from construction: every way out closes it


@pytest.mark.parametrize("opener", [open_buffered_writer, open_buffered_stream])
async def test_entering_in_a_cancelled_scope_closes_the_stream(
    opener: Callable[[trio.abc.Stream], AbstractAsyncContextManager[object]],
) -> None:
    transport = trio.StapledStream(ControlledStream(), ControlledStream())
    inner = transport.send_stream
    assert isinstance(inner, ControlledStream)
    with trio.fail_after(5):
        with trio.CancelScope() as scope:
            scope.cancel()
            async with opener(transport):
                raise AssertionError("the block must not run")  # pragma: no cover
        assert scope.cancelled_caught
    assert inner.closed


async def test_a_failed_start_closes_the_stream_and_raises_its_error() -> None:
    inner = ControlledStream()
    writer = BufferedWriter(inner)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with pytest.raises(RuntimeError, match="already started"):
                async with running_context(writer):
                    raise AssertionError("the block must not run")  # pragma: no cover
    assert inner.closed
    assert writer.state is WriterState.CLOSED


# ----------------------------------------------------------------------
# Hostile use (#21)


class CloseFails(ControlledStream):
    """A stream whose ``aclose`` fails (after closing), without a checkpoint
    (a cancelled one would raise Cancelled first)."""

    async def aclose(self) -> None:
        self.close_calls += 1
        raise OSError("close failed")


@pytest.mark.parametrize("opener", [open_buffered_writer, open_buffered_stream])
async def test_the_blocks_exception_is_not_masked_by_a_failing_close(
    opener: Callable[[trio.abc.Stream], AbstractAsyncContextManager[BufferedWriter]],
) -> None:
    stream = CloseFails()

    async def body() -> None:
        async with opener(stream) as writer:
            writer.write(b"x")
            raise KeyError("from the block")

    with trio.fail_after(5):
        with pytest.raises(KeyError, match="from the block") as info:
            await body()
    assert stream.closed
    assert info.value.__context__ is None  # the close failure is dropped


@pytest.mark.parametrize("opener", [open_buffered_writer, open_buffered_stream])
async def test_a_failing_close_on_a_normal_exit_comes_out(
    opener: Callable[[trio.abc.Stream], AbstractAsyncContextManager[BufferedWriter]],
) -> None:
    stream = CloseFails()
    with trio.fail_after(5):
        with pytest.raises(OSError, match="close failed"):
            async with opener(stream) as writer:
                writer.write(b"x")
    assert stream.accepted == b"x"


@pytest.mark.parametrize("opener", [open_buffered_writer, open_buffered_stream])
async def test_entering_an_opener_twice_is_a_clear_runtime_error(
    opener: Callable[[trio.abc.Stream], AbstractAsyncContextManager[BufferedWriter]],
) -> None:
    stream = ControlledStream()
    manager = opener(stream)
    with trio.fail_after(5):
        async with manager as writer:
            writer.write(b"x")
        with pytest.raises(RuntimeError, match=rf"only be entered once.*{opener.__name__}\("):
            async with manager:
                raise AssertionError("the block must not run")  # pragma: no cover
    assert stream.accepted == b"x"


async def test_entering_an_opener_while_it_is_entered_is_a_clear_runtime_error() -> None:
    stream = ControlledStream()
    manager = open_buffered_writer(stream)
    with trio.fail_after(5):
        async with manager as writer:
            with pytest.raises(RuntimeError, match="only be entered once"):
                async with manager:
                    raise AssertionError("the block must not run")  # pragma: no cover
            writer.write(b"x")
    assert stream.accepted == b"x"


class InterruptedSend(ControlledStream):
    """A stream whose ``send_all`` raises *interrupt* (a BaseException)."""

    def __init__(self, interrupt: BaseException) -> None:
        super().__init__()
        self.interrupt = interrupt

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        raise self.interrupt


@pytest.mark.parametrize("opener", [open_buffered_writer, open_buffered_stream])
@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
async def test_an_interrupt_in_the_sender_comes_out_as_itself_not_in_a_group(
    opener: Callable[[trio.abc.Stream], AbstractAsyncContextManager[BufferedWriter]],
    interrupt: type[BaseException],
) -> None:
    stream = InterruptedSend(interrupt("stop"))
    caught: BaseException | None = None
    with trio.fail_after(5):
        try:
            async with opener(stream) as writer:
                writer.write(b"x")
                await writer.flush()  # the sender dies in send_all meanwhile
        except BaseException as exc:  # (caught here: pytest must not see it)
            caught = exc
    assert type(caught) is interrupt, repr(caught)
    assert stream.closed


def _raised_by_raise_single(exceptions: list[BaseException]) -> BaseException:
    try:
        _raise_single(BaseExceptionGroup("nursery", exceptions))
    except BaseException as exc:  # (a KeyboardInterrupt too: caught here)
        return exc


def test_a_root_error_comes_out_without_the_broken_resource_errors_it_caused() -> None:
    root = MemoryError("root")
    caused = trio.BrokenResourceError("broke")
    caused.__cause__ = root
    indirect = trio.BrokenResourceError("broke later")
    indirect.__context__ = trio.BrokenResourceError("broke")
    indirect.__context__.__context__ = root
    assert _raised_by_raise_single([root, caused, indirect]) is root
    interrupted = trio.BrokenResourceError("the writer's sender task was interrupted")
    interrupt = KeyboardInterrupt()
    assert _raised_by_raise_single([interrupted, interrupt]) is interrupt


def test_errors_that_do_not_follow_from_one_root_stay_a_group() -> None:
    root = MemoryError("root")
    unrelated = trio.BrokenResourceError("peer gone")
    unrelated.__context__ = OSError("reset")
    assert isinstance(_raised_by_raise_single([root, unrelated]), ExceptionGroup)
    two_roots: list[BaseException] = [KeyboardInterrupt(), ValueError()]
    assert isinstance(_raised_by_raise_single(two_roots), BaseExceptionGroup)
    only_broken: list[BaseException] = [
        trio.BrokenResourceError("a"),
        trio.BrokenResourceError("b"),
    ]
    assert isinstance(_raised_by_raise_single(only_broken), ExceptionGroup)
