"""Turns of a request/response exchange over a socket (see _stream.py and
_socket_fast_path.py): one direct send per task step, what a receive does
at the end of a turn, and batched turns."""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import trio
import trio.lowlevel
import trio.testing
from internals_testing import needs_internals
from test_socket_fast_path import receive_exactly, tcp_pair
from writer_testing import running, settle

from trio_bufwriter import BufferedStream, BufferedWriter, WriterState
from trio_bufwriter._run_context import current_step
from trio_bufwriter._socket import SocketSource

W = TypeVar("W", BufferedStream, BufferedWriter)


def peer_has(server: trio.SocketStream) -> bytes:
    """What the peer's socket holds right now, read without blocking or yielding."""
    try:
        return os.read(server.socket.fileno(), 1 << 20)
    except BlockingIOError:
        return b""


def peer_sends(server: trio.SocketStream, data: bytes) -> None:
    """Send from the peer's socket, without yielding."""
    assert os.write(server.socket.fileno(), data) == len(data)


@asynccontextmanager
async def over_tcp(cls: type[W], **options: Any) -> AsyncIterator[tuple[W, trio.SocketStream]]:
    """A *cls* writer over one end of a TCP connection, its sender running and
    parked, and the other end."""
    async with tcp_pair() as (client, server):
        writer = cls(client, **options)
        async with running(writer):
            await settle()
            yield writer, server


class CountingWaits:
    """Counts the receives that found nothing and had to wait for the socket."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = trio.lowlevel.wait_readable

        async def counting(sock: object) -> None:
            self.count += 1
            await real(sock)  # type: ignore[arg-type]

        monkeypatch.setattr(trio.lowlevel, "wait_readable", counting)


# ----------------------------------------------------------------------
# One direct send per task step


@needs_internals
async def test_the_one_way_writer_sends_each_reply_of_a_ping_pong_directly() -> None:
    # The one-way writer beside raw reads: the sender never parks between a
    # reply and the next, yet every reply leaves before write() returns.
    with trio.fail_after(5):
        async with over_tcp(BufferedWriter) as (writer, server):
            client = writer.transport_stream
            assert isinstance(client, trio.SocketStream)
            for turn in range(20):
                writer.write(b"reply %02d" % turn)
                assert peer_has(server) == b"reply %02d" % turn
                await server.send_all(b"next")
                assert await receive_exactly(client, 4) == b"next"
            assert writer.statistics().send_calls == 20


async def test_a_burst_in_one_step_sends_its_first_write_and_coalesces_the_rest() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedWriter) as (writer, server):
            for burst in range(3):
                for i in range(10):
                    writer.write(b"%d%d" % (burst, i))
                # Nothing yielded since the first write of the burst.
                assert peer_has(server) == b"%d0" % burst
                await writer.flush()
                assert peer_has(server) == b"".join(b"%d%d" % (burst, i) for i in range(1, 10))
                await settle()
            assert writer.statistics().send_calls == 6


async def test_a_corked_block_leaves_in_one_direct_send_as_the_cork_is_released() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedWriter) as (writer, server):
            with writer.corked():
                writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
                writer.write(b"body")
                assert peer_has(server) == b""
            assert peer_has(server) == b"HTTP/1.1 200 OK\r\n\r\nbody"
            assert writer.statistics().send_calls == 1
            assert writer.buffered == 0
            # The sender was left asleep, and still takes the next write.
            with writer.corked():
                pass
            writer.write(b"more")
            await writer.flush()
            assert await receive_exactly(server, 4) == b"more"


async def test_a_second_corked_block_in_the_same_step_is_left_to_the_sender() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedWriter) as (writer, server):
            with writer.corked():
                writer.write(b"one")
            with writer.corked():
                writer.write(b"two")
            assert peer_has(server) == b"one"
            assert writer.buffered == 3
            await writer.flush()
            assert await receive_exactly(server, 3) == b"two"


async def test_a_corked_block_that_the_socket_cannot_take_goes_to_the_sender() -> None:
    with trio.fail_after(10):
        async with over_tcp(BufferedWriter, high_water=1 << 30) as (writer, server):
            big = b"x" * (32 << 20)  # more than loopback's socket buffers hold
            with writer.corked():
                writer.write(big)
            assert 0 < writer.statistics().bytes_sent < len(big)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer.flush)
                assert await receive_exactly(server, len(big)) == big


async def test_a_failed_direct_send_at_the_cork_breaks_the_writer_without_raising_there() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedWriter) as (writer, server):
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await server.aclose()
            for _ in range(100):
                with writer.corked():  # never raises: the next call does
                    writer.write(b"x" * 4096)
                if writer.state is not WriterState.OPEN:
                    break
                await settle()
            assert writer.state is WriterState.BROKEN
            with pytest.raises(trio.BrokenResourceError) as info:
                writer.write(b"more")
            assert isinstance(info.value.__cause__, trio.BrokenResourceError)


# ----------------------------------------------------------------------
# The end of a turn: a BufferedStream's receive


class RecordingLooks:
    """Records, for every look at the socket, whether the task had yielded
    since its receive_some started; and for every receive_some that returned
    data, whether it returned in a later task step than its last look."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.after_yield: list[bool] = []
        self.yielded_after: list[bool] = []
        self.start: tuple[object, int] | None = None
        self.look: tuple[object, int] | None = None
        real_receive = BufferedStream.receive_some
        real_look = SocketSource.try_receive

        async def receive_some(stream: BufferedStream, max_bytes: int | None = None) -> bytes:
            self.start = current_step()
            data = bytes(await real_receive(stream, max_bytes))
            self.yielded_after.append(current_step() != self.look)
            return data

        def try_receive(source: SocketSource, max_bytes: int) -> bytes | None:
            self.look = current_step()
            self.after_yield.append(self.look != self.start)
            return real_look(source, max_bytes)

        monkeypatch.setattr(BufferedStream, "receive_some", receive_some)
        monkeypatch.setattr(SocketSource, "try_receive", try_receive)


@needs_internals
async def test_a_receive_after_a_reply_yields_before_it_looks_at_the_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks = RecordingLooks(monkeypatch)
    waits = CountingWaits(monkeypatch)
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            peer_sends(server, b"request")
            assert await stream.receive_some() == b"request"
            assert looks.after_yield == [False]  # nothing sent: looked at once
            stream.write(b"reply")
            peer_sends(server, b"answer")
            assert await stream.receive_some() == b"answer"
            assert looks.after_yield == [False, True]  # sent: yielded, then looked
            assert waits.count == 0
            assert peer_has(server) == b"reply"


@needs_internals
async def test_a_receive_that_finds_data_yields_before_returning_it_reply_or_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A request is served in a task step of its own, as after trio's own
    # receive_some: serving it in the step that found it, right after the
    # turn's yield, gave the HTTP example a p99 3x plain trio's under wrk.
    looks = RecordingLooks(monkeypatch)
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            peer_sends(server, b"request")
            assert await stream.receive_some() == b"request"
            stream.write(b"reply")
            peer_sends(server, b"answer")
            assert await stream.receive_some() == b"answer"
            assert looks.yielded_after == [True, True]
            assert peer_has(server) == b"reply"


async def test_a_receive_with_nothing_sent_looks_first_then_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits = CountingWaits(monkeypatch)
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            await server.send_all(b"there already")
            with trio.testing.assert_checkpoints():
                assert await stream.receive_some() == b"there already"
            assert waits.count == 0
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stream.receive_some)
                await settle()
                assert waits.count == 1
                await server.send_all(b"!")


async def test_a_receive_hands_what_the_turn_queued_to_the_socket_before_yielding() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            seen: list[bytes] = []

            async def peer() -> None:
                seen.append(peer_has(server))
                peer_sends(server, b"ok")

            stream.write(b"first ")  # direct
            stream.write(b"second")  # queued for the sender, which is woken
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                assert await receive_exactly(stream, 2) == b"ok"
            # Whichever of the peer and the sender ran first, both
            # writes had left before the receive yielded.
            assert seen == [b"first second"]
            assert stream.statistics().send_calls == 2


async def test_after_a_turn_of_several_replies_the_next_turn_leaves_in_one_send() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            # Turn 1: pipelined requests, a reply each.
            await server.send_all(b"abc")
            assert await stream.receive_some() == b"abc"
            for letter in b"abc":
                stream.write(b"+%c " % letter)
            await server.send_all(b"def")
            assert await stream.receive_some() == b"def"
            assert await receive_exactly(server, 9) == b"+a +b +c "
            calls = stream.statistics().send_calls
            # Turn 2: batched, so its first write waits for the end of the turn.
            for letter in b"def":
                stream.write(b"+%c " % letter)
            assert peer_has(server) == b""
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stream.receive_some)
                assert await receive_exactly(server, 9) == b"+d +e +f "
                assert stream.statistics().send_calls == calls + 1
                await server.send_all(b"g")
            # Turn 3 wrote one piece after turn 2's three: direct again
            # once turn 3 ends with a receive of one piece.
            stream.write(b"+g ")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stream.receive_some)
                await server.send_all(b"h")
            assert await receive_exactly(server, 3) == b"+g "
            stream.write(b"+h ")
            assert peer_has(server) == b"+h "


async def test_a_batched_turn_that_never_receives_still_sends_through_the_sender() -> None:
    # A batched turn's writes wait for the end of the turn, but the sender is
    # woken all the same: a task that goes off to do something else does not
    # hold its bytes back.
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            stream.write(b"1")
            stream.write(b"2")
            await server.send_all(b"x")
            assert await stream.receive_some() == b"x"
            stream.write(b"3")
            assert peer_has(server) == b"12"
            await trio.lowlevel.checkpoint()  # anything but a receive
            await settle()
            assert peer_has(server) == b"3"


@needs_internals
async def test_a_corked_block_counts_as_one_piece_of_its_turn() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            for turn in range(3):
                with stream.corked():
                    stream.write(b"head%d " % turn)
                    stream.write(b"body%d " % turn)
                # Not batched: each response leaves as its cork is released.
                assert peer_has(server) == b"head%d body%d " % (turn, turn)
                await server.send_all(b"next")
                assert await stream.receive_some() == b"next"
            assert stream.statistics().send_calls == 3


# ----------------------------------------------------------------------
# The receive itself


async def test_receive_some_takes_trios_defaults_and_rejects_a_size_below_one() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            await server.send_all(b"x" * 100_000)
            got = await stream.receive_some()
            assert 0 < len(got) <= 65536
            assert len(await stream.receive_some(10)) <= 10
            with pytest.raises(ValueError, match="max_bytes must be >= 1"):
                await stream.receive_some(0)


async def test_two_tasks_receiving_at_once_is_a_busy_error() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, _server):
            stream = BufferedStream(client)
            async with running(stream), trio.open_nursery() as nursery:
                nursery.start_soon(stream.receive_some)
                await settle()
                with pytest.raises(trio.BusyResourceError, match="already receiving"):
                    await stream.receive_some()
                nursery.cancel_scope.cancel()


async def test_a_cancelled_receive_loses_no_bytes() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            with trio.move_on_after(0.01) as scope:
                await stream.receive_some()
            assert scope.cancelled_caught
            await server.send_all(b"kept")
            with trio.CancelScope() as scope:
                scope.cancel()
                await stream.receive_some()  # pragma: no cover
            assert scope.cancelled_caught
            assert await stream.receive_some() == b"kept"


async def test_receive_errors_are_trios_stream_errors() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, server):
            client = stream.transport_stream
            assert isinstance(client, trio.SocketStream)
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await server.aclose()

            async def receive_to_the_end() -> None:
                while await stream.receive_some():
                    pass  # pragma: no cover

            with pytest.raises(trio.BrokenResourceError) as info:
                await receive_to_the_end()
            assert isinstance(info.value.__cause__, OSError)
            assert info.value.__cause__.errno == errno.ECONNRESET
            client.socket.close()
            with pytest.raises(trio.ClosedResourceError):
                await stream.receive_some()


async def test_a_receive_waiting_when_the_stream_is_closed_raises_closed() -> None:
    with trio.fail_after(5):
        async with over_tcp(BufferedStream) as (stream, _server):
            errors: list[BaseException] = []

            async def receive() -> None:
                try:
                    await stream.receive_some()
                except trio.ClosedResourceError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                await settle()
                await stream.aclose()
            assert len(errors) == 1
