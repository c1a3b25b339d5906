"""What the writer does differently over a trio.SocketStream (see _socket.py)."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from internals_testing import needs_internals
from writer_testing import running, settle

from trio_bufwriter import DEFAULT_NOTSENT_LOWAT, BufferedStream, BufferedWriter, WriterState

NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", None)


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
    finally:
        for listener in listeners:
            await listener.aclose()
    assert isinstance(server, trio.SocketStream)
    async with client, server:
        yield client, server


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        chunk = await stream.receive_some(size - len(got))
        assert chunk
        got += chunk
    return bytes(got)


async def test_a_lone_write_to_an_idle_writer_reaches_the_socket_before_write_returns() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                await settle()  # the sender is parked, waiting for data
                writer.write(b"ping")
                # Sent synchronously: no task has run since.
                assert writer.statistics().bytes_sent == 4
                assert writer.buffered == 0
                assert await receive_exactly(server, 4) == b"ping"


async def test_only_the_first_write_of_a_burst_goes_direct_the_rest_coalesce() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                await settle()
                for i in range(100):
                    writer.write(b"%03d" % i)
                stats = writer.statistics()
                assert stats.bytes_sent == 3  # the first write
                assert stats.buffered == 297  # queued for the sender
                await writer.flush()
                assert writer.statistics().send_calls == 2  # direct + one coalesced send
                expected = b"".join(b"%03d" % i for i in range(100))
                assert await receive_exactly(server, 300) == expected


@needs_internals
async def test_a_read_on_a_buffered_stream_lets_the_next_reply_go_direct() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            stream = BufferedStream(client)
            async with running(stream):
                await settle()
                for turn in range(3):
                    stream.write(b"req%d" % turn)
                    assert stream.buffered == 0  # went straight out
                    assert await receive_exactly(server, 4) == b"req%d" % turn
                    await server.send_all(b"ok")
                    assert await receive_exactly(stream, 2) == b"ok"
                assert stream.statistics().send_calls == 3


async def test_a_direct_send_on_a_reset_connection_breaks_the_writer_with_the_cause() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                await settle()
                server.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                await server.aclose()

                async def keep_writing() -> None:
                    # Between writes the RST arrives and the sender parks
                    # again, so the failing send may be a direct one.
                    for _ in range(1000):
                        writer.write(b"x" * 1024)
                        await writer.flush()
                        await settle()

                with pytest.raises(trio.BrokenResourceError) as info:
                    await keep_writing()
                cause = info.value.__cause__
                assert isinstance(cause, trio.BrokenResourceError)
                assert isinstance(cause.__cause__, OSError)
                assert writer.state is WriterState.BROKEN
                with pytest.raises(trio.BrokenResourceError):
                    writer.write(b"more")


async def test_a_socket_closed_behind_the_writers_back_is_never_written_to() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, _server):
            writer = BufferedWriter(client)
            async with running(writer):
                await settle()
                client.socket.close()  # not through the writer: its fd is gone
                with pytest.raises(trio.BrokenResourceError) as info:
                    writer.write(b"x")
                assert isinstance(info.value.__cause__, trio.ClosedResourceError)
                assert writer.statistics().bytes_sent == 0


@pytest.mark.skipif(NOTSENT_LOWAT is None, reason="no TCP_NOTSENT_LOWAT here")
async def test_notsent_lowat_is_raised_to_one_maximum_send_by_default() -> None:
    assert NOTSENT_LOWAT is not None
    async with tcp_pair() as (client, _server):
        assert client.getsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT) == 2**14  # trio's
        BufferedWriter(client)
        assert client.getsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT) == DEFAULT_NOTSENT_LOWAT


@pytest.mark.skipif(NOTSENT_LOWAT is None, reason="no TCP_NOTSENT_LOWAT here")
async def test_notsent_lowat_leave_leaves_the_socket_alone_and_an_int_sets_it() -> None:
    assert NOTSENT_LOWAT is not None
    async with tcp_pair() as (client, server):
        BufferedWriter(client, notsent_lowat="leave")
        assert client.getsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT) == 2**14
        BufferedStream(server, notsent_lowat=256 * 1024)
        assert server.getsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT) == 256 * 1024


async def test_notsent_lowat_none_means_the_default_not_trios_16_kib() -> None:
    assert NOTSENT_LOWAT is not None
    async with tcp_pair() as (client, _server):
        BufferedWriter(client, notsent_lowat=None)
        assert client.getsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT) == DEFAULT_NOTSENT_LOWAT


def test_notsent_lowat_is_validated() -> None:
    stream = trio.testing.MemorySendStream()
    with pytest.raises(ValueError, match="notsent_lowat"):
        BufferedWriter(stream, notsent_lowat=-1)
    with pytest.raises(TypeError, match="notsent_lowat"):
        BufferedWriter(stream, notsent_lowat=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="notsent_lowat must be an int, None or 'leave'"):
        BufferedWriter(stream, notsent_lowat="keep")  # type: ignore[arg-type]


BAD_INPUTS = ["text", 5, None, memoryview(b"abcdef")[::2]]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=["str", "int", "None", "non-contiguous"])
async def test_bad_input_to_an_idle_socket_writer_is_a_type_error_and_queues_nothing(
    bad: object,
) -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                await settle()  # idle: the next write would go straight out
                with pytest.raises(TypeError, match="write"):
                    writer.write(bad)  # type: ignore[arg-type]
                assert writer.statistics().bytes_written == 0
                writer.write(b"ok")
                assert await receive_exactly(server, 2) == b"ok"


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=["str", "int", "None", "non-contiguous"])
async def test_bad_input_to_an_idle_writer_is_a_type_error_and_queues_nothing(
    bad: object,
) -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    with trio.fail_after(5):
        async with running(writer):
            await settle()
            with pytest.raises(TypeError, match="write"):
                writer.write(bad)  # type: ignore[arg-type]
            writer.write(b"ok")
            await writer.flush()
            assert await receive.receive_some() == b"ok"


async def test_an_ebadf_from_the_socket_reads_as_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import trio_bufwriter._socket as socket_module

    def closed_write(fd: int, data: object) -> int:
        raise OSError(errno.EBADF, "Bad file descriptor")

    with trio.fail_after(5):
        async with tcp_pair() as (client, _server):
            writer = BufferedWriter(client)
            async with running(writer):
                await settle()
                monkeypatch.setattr(socket_module.os, "write", closed_write)
                with pytest.raises(trio.BrokenResourceError) as info:
                    writer.write(b"x")
                monkeypatch.undo()
                assert isinstance(info.value.__cause__, trio.ClosedResourceError)


async def test_drain_over_high_water_hands_the_batch_to_the_socket_without_switching_tasks() -> (
    None
):
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client, high_water=1000)
            ran: list[int] = []
            async with running(writer) as nursery:
                await settle()

                async def other() -> None:
                    ran.append(1)

                nursery.start_soon(other)
                for _ in range(100):
                    writer.write(b"x" * 100)
                    await writer.drain()  # 10 batches pushed by drain itself
                assert ran == []  # no task switch happened
                assert writer.buffered <= 1000
                await writer.flush()
                assert await receive_exactly(server, 10_000) == b"x" * 10_000


async def test_drain_pushes_held_segments_before_the_buffer_in_order() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client, high_water=1000)
            async with running(writer):
                await settle()
                writer.write(b"a")  # direct
                writer.write(b"b" * 10)  # queued
                big = bytes(range(256)) * 400  # held by reference
                writer.write(big)
                writer.write(b"c" * 10)
                await writer.drain()
                assert writer.buffered == 0  # all pushed by drain
                expected = b"a" + b"b" * 10 + big + b"c" * 10
                assert await receive_exactly(server, len(expected)) == expected


async def test_statistics_count_each_write_2_once_and_batches_never_outnumber_writes() -> None:
    # A write sent in pieces (a direct send the socket takes part of, the
    # rest by the sender, in max_send_size chunks) is one batch; every
    # write(2) that took bytes is one send, whoever made it.
    with trio.fail_after(10):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client, max_send_size=1 << 20, high_water=1 << 30)
            async with running(writer):
                await settle()
                big = b"x" * (16 << 20)  # more than the socket takes at once
                writer.write(big)
                first = writer.statistics()
                assert first.batches == 1
                assert 0 < first.bytes_sent < len(big)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(writer.flush)
                    assert await receive_exactly(server, len(big)) == big
                stats = writer.statistics()
                assert stats.write_calls == 1
                assert stats.batches == 1
                assert stats.send_calls >= len(big) // (1 << 20)
                for i in range(10):  # a burst: one direct send, then one batch
                    writer.write(b"%d" % i)
                await writer.flush()
                stats = writer.statistics()
                assert (stats.write_calls, stats.batches) == (11, 3)
                assert stats.send_calls >= stats.batches
