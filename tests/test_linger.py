"""aclose_lingering(): half-close, read and discard until the peer closes, then close."""

from __future__ import annotations

import math
import socket

import pytest
import trio
import trio.testing
from stream_testing import NoHalfClose

from trio_bufwriter import (
    DEFAULT_LINGER_SECONDS,
    BufferedStream,
    WriterState,
    aclose_lingering,
)

REQUEST = b"GET / HTTP/1.1\r\n\r\n"
# A pipelined request the server will never read: left in its receive queue.
UNREAD = b"GET /next HTTP/1.1\r\n\r\n"
# Far more than the client's small receive buffer can hold, so that part of
# it is still in the server's send queue when the server closes.
RESPONSE = b"r" * (64 * 1024)


async def _tcp_pair_with_a_small_client_buffer() -> tuple[trio.SocketStream, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        port = listeners[0].socket.getsockname()[1]
        sock = trio.socket.socket()
        # Set before connecting, so that the advertised window stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", port))
        client = trio.SocketStream(sock)
        server = await listeners[0].accept()
    finally:
        for listener in listeners:
            await listener.aclose()
    # Room for the whole response on the server's side: its close() finds
    # it queued, not waiting in our send.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024 * 1024)
    return client, server


async def _serve_one_request(server: trio.SocketStream, nursery: trio.Nursery) -> BufferedStream:
    """Read the request (not what follows it), write the response unsent."""
    conn = BufferedStream(server)
    await nursery.start(conn.run)
    assert await conn.receive_some(len(REQUEST)) == REQUEST
    conn.write(RESPONSE)
    return conn


async def _receive_until_eof_or_reset(stream: trio.abc.ReceiveStream) -> tuple[bytes, bool]:
    """What *stream* received, and whether it ended in a reset (not a clean EOF)."""
    received = bytearray()
    try:
        while data := await stream.receive_some():
            received += data
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
    else:
        return bytes(received), False
    assert isinstance(cause, ConnectionResetError), cause
    return bytes(received), True


async def test_closing_with_unread_input_resets_the_connection_and_loses_the_response() -> None:
    # The problem aclose_lingering solves, shown on a real TCP connection.
    with trio.fail_after(10):
        client, server = await _tcp_pair_with_a_small_client_buffer()
        async with client, trio.open_nursery() as nursery:
            # One send: both requests arrive together, the server reads one.
            await client.send_all(REQUEST + UNREAD)
            conn = await _serve_one_request(server, nursery)
            await conn.aclose()  # flushed into the kernel, then close(): RST
            received, reset = await _receive_until_eof_or_reset(client)
        assert reset
        assert len(received) < len(RESPONSE)


async def test_a_lingering_close_with_unread_input_delivers_the_whole_response() -> None:
    with trio.fail_after(10):
        client, server = await _tcp_pair_with_a_small_client_buffer()
        async with client, trio.open_nursery() as nursery:
            await client.send_all(REQUEST + UNREAD)
            conn = await _serve_one_request(server, nursery)
            nursery.start_soon(aclose_lingering, conn)
            received, reset = await _receive_until_eof_or_reset(client)
            assert (received, reset) == (RESPONSE, False)
            # The client's close is the EOF the server lingers for.
            await client.aclose()
        assert conn.state is WriterState.CLOSED


async def test_a_peer_that_resets_during_the_linger_is_no_error() -> None:
    with trio.fail_after(10):
        client, server = await _tcp_pair_with_a_small_client_buffer()
        async with trio.open_nursery() as nursery:
            await client.send_all(REQUEST)
            conn = await _serve_one_request(server, nursery)
            await conn.send_eof()
            # The client leaves without reading: its close resets.
            await client.aclose()
            await aclose_lingering(conn)
        assert conn.state is WriterState.CLOSED


async def test_lingering_discards_what_the_peer_sends_until_it_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(100):
        a, b = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(a)
            await nursery.start(conn.run)
            conn.write(b"bye")

            async def peer() -> None:
                assert await b.receive_some() == b"bye"
                assert await b.receive_some() == b""  # our EOF came first
                for _ in range(10):
                    await b.send_all(b"ignored")
                await b.aclose()

            nursery.start_soon(peer)
            start = trio.current_time()
            await aclose_lingering(conn, math.inf)
            assert trio.current_time() == start  # no timer ran out
        assert conn.state is WriterState.CLOSED
        with pytest.raises(trio.ClosedResourceError):
            await a.receive_some()


async def test_lingering_stops_after_linger_seconds_when_the_peer_never_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(100):
        a, b = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(a)
            await nursery.start(conn.run)
            conn.write(b"bye")
            start = trio.current_time()
            await aclose_lingering(conn, 2.5)
            assert trio.current_time() - start == 2.5
            assert conn.state is WriterState.CLOSED
            assert await b.receive_some() == b"bye"
            assert await b.receive_some() == b""
            await b.aclose()


async def test_the_default_linger_is_five_seconds(autojump_clock: trio.testing.MockClock) -> None:
    assert DEFAULT_LINGER_SECONDS == 5.0
    with trio.fail_after(100):
        a, b = trio.testing.memory_stream_pair()
        start = trio.current_time()
        await aclose_lingering(a)  # a plain trio stream: its own send_eof
        assert trio.current_time() - start == DEFAULT_LINGER_SECONDS
        assert await b.receive_some() == b""
        with pytest.raises(trio.ClosedResourceError):
            await a.send_all(b"x")
        await b.aclose()


async def test_cancelled_while_lingering_it_still_closes_and_the_response_is_sent() -> None:
    with trio.fail_after(10):
        a, b = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(a)
            await nursery.start(conn.run)
            conn.write(b"the response")
            with trio.CancelScope() as scope:
                nursery.start_soon(_cancel_when_blocked, scope)
                await aclose_lingering(conn, math.inf)
            assert scope.cancelled_caught
            assert conn.state is WriterState.CLOSED
            assert await b.receive_some() == b"the response"
            assert await b.receive_some() == b""
            await b.aclose()


async def test_cancelled_while_flushing_it_closes_at_once_and_discards_the_rest() -> None:
    with trio.fail_after(10):
        # A peer that takes nothing until it reads, and never reads.
        a, b = trio.testing.lockstep_stream_pair()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(a)
            await nursery.start(conn.run)
            conn.write(b"never taken")
            with trio.CancelScope() as scope:
                nursery.start_soon(_cancel_when_blocked, scope)
                await aclose_lingering(conn, math.inf)
            assert scope.cancelled_caught
            assert conn.state is WriterState.CLOSED
            assert conn.statistics().bytes_sent == 0
            await b.aclose()


async def _cancel_when_blocked(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()


async def test_over_a_stream_that_cannot_half_close_it_flushes_then_lingers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No end-of-file can be sent: the response is flushed, and the peer,
    # which knows from the protocol that the response is complete, closes.
    with trio.fail_after(100):
        a, b = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(NoHalfClose(a))
            await nursery.start(conn.run)
            conn.write(b"Content-Length: 5\r\n\r\nhello")

            async def peer() -> None:
                received = b""
                while not received.endswith(b"hello"):
                    received += await b.receive_some()
                await b.send_all(b"a pipelined request, never answered")
                await b.aclose()

            nursery.start_soon(peer)
            start = trio.current_time()
            await aclose_lingering(conn)
            assert trio.current_time() == start
            assert conn.state is WriterState.CLOSED


async def test_over_a_stream_that_cannot_half_close_a_silent_peer_costs_the_whole_linger(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(100):
        a, b = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(NoHalfClose(a))
            await nursery.start(conn.run)
            conn.write(b"hello")
            start = trio.current_time()
            await aclose_lingering(conn, 1)
            assert trio.current_time() - start == 1
            assert await b.receive_some() == b"hello"
            assert await b.receive_some() == b""  # closed, not half-closed
            await b.aclose()


async def test_a_failed_flush_raises_and_the_stream_is_closed_all_the_same() -> None:
    with trio.fail_after(10):
        a, b = trio.testing.memory_stream_pair()
        await b.aclose()  # the peer is gone
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(a)
            await nursery.start(conn.run)
            conn.write(b"lost")
            with pytest.raises(trio.BrokenResourceError):
                await aclose_lingering(conn)
            assert conn.state is WriterState.CLOSED


async def test_a_closed_stream_is_no_error() -> None:
    with trio.fail_after(10):
        a, b = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(a)
            await nursery.start(conn.run)
            await conn.aclose()
            await aclose_lingering(conn)
            assert conn.state is WriterState.CLOSED
        await b.aclose()


@pytest.mark.parametrize("linger", [-1, math.nan, "5"])
async def test_a_bad_linger_is_refused_before_anything_is_done(linger: object) -> None:
    a, b = trio.testing.memory_stream_pair()
    with pytest.raises(ValueError, match="linger must be a number of seconds >= 0"):
        await aclose_lingering(a, linger)  # type: ignore[arg-type]
    await a.send_all(b"still open")
    assert await b.receive_some() == b"still open"
    await a.aclose()
    await b.aclose()
