"""Gathered sends: over a socket, large buffers held by reference and the small
writes around them leave in one writev, in order; what is held by reference."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from fault_testing import pattern, set_linger_zero, tcp_pair
from writer_testing import ControlledStream, running

from trio_bufwriter import BufferedWriter, WriterState

BIG = 100_000


@asynccontextmanager
async def roomy_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A loopback pair whose kernel buffers hold everything these tests send."""
    async with tcp_pair(small_buffers=False) as (client, server):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        yield client, server


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = await stream.receive_some()
        assert chunk
        received += chunk
    return bytes(received)


async def test_big_bytes_and_small_writes_arrive_in_order_in_fewer_sends_than_pieces() -> None:
    bigs = [pattern(i * BIG, BIG) for i in range(3)]
    pieces: list[bytes] = [b"first"]
    for i, big in enumerate(bigs):
        pieces += [b"head %d;" % i, big, b";tail %d" % i]
    expected = b"".join(pieces)
    with trio.fail_after(10):
        async with roomy_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                for piece in pieces:  # one task step: the first goes straight out
                    writer.write(piece)
                await writer.flush()
                stats = writer.statistics()
                received = await receive_exactly(server, len(expected))
                await writer.aclose()
    assert received == expected
    # The queue held: the 3 big bytes by reference, and the copied small
    # writes between them: 7 segments after the first, direct, write.
    assert stats.send_calls < 7
    assert stats.bytes_sent == len(expected)


async def test_writelines_holds_big_items_by_reference_and_sends_them_gathered() -> None:
    big = pattern(0, BIG)
    items = [b"HTTP/1.1 200 OK\r\n\r\n", big, b"--", bytearray(b"mutable"), big]
    expected = b"".join(items)
    with trio.fail_after(10):
        async with roomy_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                writer.write(b"x")  # straight out: the writer is busy after it
                writer.writelines(items)
                items[3][:] = b"changed"  # a bytearray is copied, not held
                await writer.flush()
                stats = writer.statistics()
                received = await receive_exactly(server, 1 + len(expected))
                await writer.aclose()
    assert received == b"x" + expected
    assert stats.write_calls == 2
    assert stats.send_calls <= 2  # the direct write, then one writev


async def test_a_read_only_view_of_bytes_is_held_and_a_writable_buffer_copied() -> None:
    source = pattern(0, BIG)
    mutable = bytearray(source)
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    view = memoryview(source)[10:]
    writer.write(view)
    view.release()  # the writer keeps a view of its own
    writer.write(mutable)
    mutable[:5] = b"XXXXX"  # copied: the change is not sent
    with trio.fail_after(10):
        async with running(writer):
            stream.unstall()
            await writer.flush()
    assert bytes(stream.accepted) == source[10:] + source


async def test_gathered_sends_respect_max_send_size_and_the_peer_gets_everything() -> None:
    bigs = [pattern(i, BIG) for i in range(5)]
    expected = b"".join(b"<%d>" % i + big for i, big in enumerate(bigs))
    with trio.fail_after(10):
        async with roomy_pair() as (client, server):
            writer = BufferedWriter(client, max_send_size=150_000)
            async with running(writer):
                writer.write(b"!")
                for i, big in enumerate(bigs):
                    writer.write(b"<%d>" % i)
                    writer.write(big)
                await writer.flush()
                stats = writer.statistics()
                received = await receive_exactly(server, 1 + len(expected))
                await writer.aclose()
    assert received == b"!" + expected
    # 500 KiB in writevs of at most 150,000 bytes: at least 4 of them.
    assert 1 + 4 <= stats.send_calls < 1 + 10


async def test_a_drain_over_high_water_pushes_segments_gathered() -> None:
    bigs = [pattern(i, BIG) for i in range(3)]
    expected = b"".join(b"[" + big + b"]" for big in bigs)
    with trio.fail_after(10):
        async with roomy_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                writer.write(b"(")
                for big in bigs:
                    writer.write(b"[")
                    writer.write(big)
                    writer.write(b"]")
                await writer.drain()  # over high water: sent from here
                stats = writer.statistics()
                received = await receive_exactly(server, 1 + len(expected))
                await writer.aclose()
    assert received == b"(" + expected
    assert stats.send_calls <= 3


async def test_gathered_sends_that_fill_the_socket_wait_and_resume_in_order() -> None:
    bigs = [pattern(i * BIG, BIG) for i in range(4)]
    expected = b"".join(b"<%d>" % i + big for i, big in enumerate(bigs))
    with trio.fail_after(10):
        async with tcp_pair(small_buffers=True) as (client, server):
            writer = BufferedWriter(client)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(b"!")
                for i, big in enumerate(bigs):
                    writer.write(b"<%d>" % i)
                    writer.write(big)
                nursery.start_soon(writer.flush)
                received = await receive_exactly(server, 1 + len(expected))
                await writer.aclose()
    assert received == b"!" + expected


async def test_a_drain_that_fills_the_socket_leaves_the_rest_queued_in_order() -> None:
    bigs = [pattern(i, BIG) for i in range(3)]
    expected = b"".join(b"[" + big + b"]" for big in bigs)
    with trio.fail_after(10):
        async with tcp_pair(small_buffers=True) as (client, server):
            writer = BufferedWriter(client)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(b"(")
                for big in bigs:
                    writer.write(b"[")
                    writer.write(big)
                    writer.write(b"]")
                nursery.start_soon(writer.drain)  # pushes what the socket takes, then waits
                received = await receive_exactly(server, 1 + len(expected))
                await writer.aclose()
    assert received == b"(" + expected


async def test_a_peer_reset_during_a_gathered_send_breaks_the_writer() -> None:
    with trio.fail_after(10):
        async with tcp_pair(small_buffers=True) as (client, server):
            writer = BufferedWriter(client)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(b"!")
                for i in range(4):
                    writer.write(b"<%d>" % i)
                    writer.write(pattern(i, BIG))
                await trio.testing.wait_all_tasks_blocked()  # the socket is full
                set_linger_zero(server)
                await server.aclose()
                with pytest.raises(trio.BrokenResourceError):
                    await writer.flush()
                await writer.aclose()  # the failure was reported: it does not raise
    assert writer.state is WriterState.CLOSED
