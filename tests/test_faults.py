"""Fault injection against real loopback TCP connections.

Each case runs a writer over a real socket pair (kernel buffers shrunk so a
peer that stops reading blocks the writer after a few kilobytes), breaks
something, and checks the whole outcome:

* the documented exception, with the cause chained, raised to every waiter
  and then to every later call (the same message, the very same cause);
* no hang: every case runs under ``trio.fail_after``, and the nursery that
  runs ``writer.run`` is never cancelled by the test (unless that is the
  fault): it exits because the sender returned by itself;
* no leaked task: every task spawned during the case has exited at its end;
* nothing reordered or repeated: what the peer received is a prefix of the
  bytes written (and exactly the bytes a completed send handed over where
  that is known).

test_writer_failures.py covers the same failures on a scripted stream; these
are the real-socket versions, with waiters parked while the fault happens.
"""

from __future__ import annotations

import errno

import pytest
import trio
from fault_testing import (
    Fault,
    FaultyStream,
    Peer,
    Waiters,
    assert_every_call_raises,
    assert_prefix,
    make_error,
    no_leaked_tasks,
    pattern,
    set_linger_zero,
    settle,
    tcp_pair,
)

from trio_bufwriter import BufferedStream, BufferedWriter, WriterState

HIGH = 16 * 1024
LOW = 4 * 1024
#: Far more than the shrunken kernel buffers hold (about 10 KiB here).
BIG = 1 << 20
TIMEOUT = 10

SEND_FAILED = "the wrapped stream's send_all failed"


ERROR_KINDS = ["OSError", "BrokenResourceError", "ClosedResourceError", "arbitrary"]


def assert_connection_broken(exc: BaseException | None) -> None:
    """trio's error for a connection the peer broke: BrokenResourceError from
    an OSError with ECONNRESET or EPIPE."""
    assert isinstance(exc, trio.BrokenResourceError), repr(exc)
    assert isinstance(exc.__cause__, OSError), repr(exc.__cause__)
    assert exc.__cause__.errno in (errno.ECONNRESET, errno.EPIPE), exc.__cause__


def same_failure(waiters: Waiters, names: set[str]) -> tuple[BaseException | None, str]:
    """Every one of *names* raised BrokenResourceError, all with the same
    message and the very same cause; return those."""
    assert set(waiters.results) >= names
    errors = [waiters.results[name] for name in sorted(names)]
    for error in errors:
        assert isinstance(error, trio.BrokenResourceError), repr(error)
    causes = {id(error.__cause__) for error in errors if error is not None}
    messages = {str(error) for error in errors}
    assert len(causes) == 1, "waiters got different causes"
    assert len(messages) == 1, messages
    first = errors[0]
    assert first is not None
    return first.__cause__, str(first)


def socket_closed(stream: trio.SocketStream) -> bool:
    return stream.socket.fileno() == -1


async def park(waiters: Waiters, writer: BufferedWriter, *names: str) -> None:
    """Start the writer's waiting methods *names* (``"drain"``, ``"flush"``...)
    as *waiters*, each under its own name, and let them run until they block."""
    for name in names:
        waiters.start(name, getattr(writer, name))
    await settle()


# ----------------------------------------------------------------------
# The peer breaks the connection


@pytest.mark.parametrize("how", ["reset", "close_with_unread_data"])
async def test_peer_breaking_the_connection_mid_transfer_wakes_every_waiter_with_the_chained_error(
    how: str,
) -> None:
    data = pattern(0, BIG)
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(data)
                await peer.read_at_least(200_000)  # then it stops reading
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    await park(waiters, writer, "drain", "flush", "send_eof")
                    assert waiters.pending() == {"drain", "flush", "send_eof"}
                    if how == "reset":
                        set_linger_zero(server)  # RST instead of FIN
                    # Else closing with unread bytes makes the kernel send RST.
                    await server.aclose()
                cause, message = same_failure(waiters, {"drain", "flush", "send_eof"})
                assert message.startswith(SEND_FAILED)
                assert_connection_broken(cause)
                assert writer.state is WriterState.BROKEN
                await assert_every_call_raises(writer, cause, message)
                await writer.aclose()  # already reported: does not raise again
            # The sender nursery exited by itself.
            assert writer.state is WriterState.CLOSED
            assert socket_closed(client)
            stats = writer.statistics()
            assert stats.bytes_written == BIG
            assert stats.buffered == 0
            assert_prefix(peer.received, data)
            assert len(peer.received) >= 200_000


async def test_peer_reset_while_aclose_is_flushing_makes_aclose_raise_and_still_close() -> None:
    data = pattern(0, BIG)
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(data)
                await peer.read_at_least(100_000)
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    await park(waiters, writer, "aclose")
                    assert waiters.pending() == {"aclose"}
                    assert writer.state is WriterState.CLOSING
                    with pytest.raises(trio.ClosedResourceError, match="closing"):
                        writer.write(b"too late")
                    set_linger_zero(server)
                    await server.aclose()
                error = waiters.results["aclose"]
                assert isinstance(error, trio.BrokenResourceError)
                assert str(error).startswith(SEND_FAILED)
                assert_connection_broken(error.__cause__)
                assert writer.state is WriterState.CLOSED
                assert socket_closed(client)
                await writer.aclose()  # a second call is a quiet checkpoint
            assert_prefix(peer.received, data)
            assert writer.statistics().buffered == 0


async def test_peer_closing_gracefully_breaks_a_writer_that_keeps_writing() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(b"hello")
                await writer.flush()
                assert await server.receive_some() == b"hello"
                await server.aclose()  # FIN; nothing unread
                written = 5

                async def keep_writing() -> None:
                    nonlocal written
                    for _ in range(1000):
                        writer.write(pattern(written, 65536))
                        written += 65536
                        await writer.flush()

                with pytest.raises(trio.BrokenResourceError) as info:
                    await keep_writing()
                assert str(info.value).startswith(SEND_FAILED)
                assert_connection_broken(info.value.__cause__)
                await assert_every_call_raises(writer, info.value.__cause__, str(info.value))
                assert writer.statistics().bytes_written == written
                await writer.aclose()
            assert socket_closed(client)


async def test_peer_half_close_leaves_the_writer_working() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            stream = BufferedStream(client, high_water=HIGH)
            peer = Peer(server)
            written = bytearray()
            async with trio.open_nursery() as nursery:
                await nursery.start(stream.run)
                await server.send_all(b"request")
                await server.send_eof()  # shutdown(SHUT_WR): only its sending side
                got = bytearray()
                while chunk := await stream.receive_some():
                    got += chunk
                assert got == b"request"
                assert stream.state is WriterState.OPEN
                nursery.start_soon(peer.read_until_eof)
                for i in range(40):
                    chunk = pattern(len(written), 10_000 + i)
                    stream.write(chunk)
                    written += chunk
                    await stream.drain()
                await stream.flush()
                assert stream.statistics().bytes_sent == len(written)
                await stream.send_eof()
                assert stream.state is WriterState.EOF_SENT
                # The peer reads to our end-of-file; the sender has returned.
            assert peer.eof
            assert peer.error is None
            assert peer.received == written
            await stream.aclose()
            assert stream.state is WriterState.CLOSED
            assert socket_closed(client)


# ----------------------------------------------------------------------
# The peer stops reading


async def test_drain_and_flush_wait_for_a_stalled_peer_and_return_once_it_reads() -> None:
    data = pattern(0, BIG)
    seen: dict[str, int] = {}
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH, low_water=LOW)

            async def drain_and_look() -> None:
                await writer.drain()
                seen["buffered"] = writer.buffered

            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(data)
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    waiters.start("drain", drain_and_look)
                    waiters.start("flush", writer.flush)
                    await settle()
                    assert waiters.pending() == {"drain", "flush"}
                    assert writer.need_drain
                    assert writer.statistics().bytes_sent < BIG
                    nursery.start_soon(peer.read_until_eof)
                assert waiters.results == {"drain": None, "flush": None}
                assert seen["buffered"] <= LOW
                assert writer.statistics().bytes_sent == BIG
                await writer.aclose()
            assert peer.eof
            assert peer.received == data


async def test_cancelled_drain_and_flush_on_a_stalled_peer_leave_the_writer_and_data_intact() -> (
    None
):
    head = pattern(0, BIG)
    tail = pattern(BIG, 5000)
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(head)
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    await park(waiters, writer, "drain", "flush")
                    assert waiters.pending() == {"drain", "flush"}
                    waiters.cancel("drain")
                    waiters.cancel("flush")
                assert waiters.cancelled == {"drain", "flush"}
                assert waiters.results == {"drain": None, "flush": None}
                assert writer.state is WriterState.OPEN
                writer.write(tail)
                nursery.start_soon(peer.read_until_eof)
                await writer.flush()
                assert writer.statistics().bytes_sent == BIG + len(tail)
                await writer.aclose()
            assert peer.received == head + tail


async def test_cancelled_send_eof_on_a_stalled_peer_still_sends_the_data_then_the_eof() -> None:
    data = pattern(0, BIG)
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(data)
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    await park(waiters, writer, "send_eof")
                    assert waiters.pending() == {"send_eof"}
                    waiters.cancel("send_eof")
                assert waiters.cancelled == {"send_eof"}
                assert writer.state is WriterState.EOF_PENDING
                with pytest.raises(trio.ClosedResourceError, match="EOF"):
                    writer.write(b"after eof")
                nursery.start_soon(peer.read_until_eof)
                # The sender sends the rest and the EOF, then returns.
            assert peer.eof
            assert peer.received == data
            assert writer.state is WriterState.EOF_SENT
            await writer.aclose()
            assert socket_closed(client)


# ----------------------------------------------------------------------
# The wrapped send_all raises


@pytest.mark.parametrize("size", [50_000, 150_000], ids=["copied", "by_reference"])
@pytest.mark.parametrize("mode", ["at_once", "in_flight", "unobserved"])
@pytest.mark.parametrize("kind", ERROR_KINDS)
async def test_wrapped_send_all_raising_breaks_the_writer_with_that_error_as_the_cause(
    kind: str, mode: str, size: int
) -> None:
    """The wrapped stream (a real socket behind a FaultyStream) raises *kind*:

    * at_once: on the next send, before waiters park or as they do;
    * in_flight: after drain/flush/send_eof parked, having passed 1000 of the
      call's bytes on to the socket (trio #889: a failed send_all may have
      sent any part of its data);
    * unobserved: nobody waits, so aclose() reports it.

    The doomed write is small enough to be copied into the writer's buffer,
    or a large bytes object the writer holds by reference.
    """
    error = make_error(kind)
    head = pattern(0, 5000)
    doomed = pattern(5000, size)
    partial = 1000 if mode == "in_flight" else 0
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            tap = FaultyStream(client)
            writer = BufferedWriter(tap, high_water=1000)
            peer = Peer(server)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                nursery.start_soon(peer.read_until_eof)  # always reading
                writer.write(head)
                await writer.flush()
                gate = trio.Event() if mode == "in_flight" else None
                tap.plan = Fault(error, partial=partial, gate=gate)
                writer.write(doomed)
                if mode == "unobserved":
                    await settle()
                    assert writer.state is WriterState.BROKEN
                    with pytest.raises(trio.BrokenResourceError) as info:
                        await writer.aclose()
                    assert info.value.__cause__ is error
                    assert str(info.value) == (
                        f"{SEND_FAILED}; {len(doomed)} written bytes were not sent"
                    )
                else:
                    async with trio.open_nursery() as inner:
                        waiters = Waiters(inner)
                        await park(waiters, writer, "drain", "flush", "send_eof")
                        if gate is not None:
                            assert waiters.pending() == {"drain", "flush", "send_eof"}
                            assert tap.sending
                            gate.set()
                    cause, message = same_failure(waiters, {"drain", "flush", "send_eof"})
                    assert cause is error
                    assert message == SEND_FAILED
                    await assert_every_call_raises(writer, error, message)
                    await writer.aclose()  # reported: quiet
                # The socket closed, the peer reads to end-of-file and the
                # sender has returned: the nursery exits by itself.
            assert writer.state is WriterState.CLOSED
            assert tap.calls_after_failure == 0  # never retried
            assert tap.raised == [(error, None)]
            assert peer.eof
            # Exactly what reached the socket: nothing repeated, nothing after.
            assert peer.received == head + doomed[:partial]
            stats = writer.statistics()
            assert stats.bytes_sent == len(head)
            assert stats.bytes_written == len(head) + len(doomed)


# ----------------------------------------------------------------------
# The sender is cancelled, or the stream is closed, while others wait


@pytest.mark.parametrize("through", ["socket", "wrapper"])
async def test_cancelling_the_sender_while_send_all_blocks_on_a_socket_breaks_every_waiter(
    through: str,
) -> None:
    """*through* "socket": the writer wraps the SocketStream itself (its own
    non-blocking send loop); "wrapper": a stream wrapping it (trio's
    send_all), which also shows the send in flight."""
    data = pattern(0, BIG)
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            tap = FaultyStream(client)
            writer = BufferedWriter(tap if through == "wrapper" else client, high_water=HIGH)
            peer = Peer(server)
            async with trio.open_nursery() as outer:
                waiters = Waiters(outer)
                async with trio.open_nursery() as sender_nursery:
                    await sender_nursery.start(writer.run)
                    writer.write(data)
                    await park(waiters, writer, "drain", "flush")
                    assert tap.sending or through == "socket"
                    assert waiters.pending() == {"drain", "flush"}
                    sent = writer.statistics().bytes_sent
                    assert sent < BIG
                    sender_nursery.cancel_scope.cancel()
            cause, message = same_failure(waiters, {"drain", "flush"})
            assert cause is None
            assert message == (
                "the writer's sender task was cancelled in the middle of a send: "
                f"an unknown part of its {BIG - sent} bytes reached the stream"
            )
            assert writer.state is WriterState.BROKEN
            await assert_every_call_raises(writer, None, message)
            await writer.aclose()  # reported: quiet
            assert socket_closed(client)
            await peer.read_until_eof()
            assert_prefix(peer.received, data)
            assert len(peer.received) < BIG
            assert tap.calls == (1 if through == "wrapper" else 0)


async def test_graceful_aclose_from_another_task_while_others_wait_in_flush() -> None:
    # (No drain() waits here: one would hit the known bug pinned by
    # test_known_bug_a_drain_satisfied_by_a_graceful_close_... in
    # test_stateful.py, at random.)
    data = pattern(0, BIG)
    half = BIG // 2
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    writer.write(data[:half])
                    waiters.start("flush first half", writer.flush)
                    await settle()
                    writer.write(data[half:])
                    waiters.start("flush all", writer.flush)
                    await settle()
                    waiters.start("aclose", writer.aclose)
                    await settle()
                    assert waiters.pending() == {"flush first half", "flush all", "aclose"}
                    assert writer.state is WriterState.CLOSING
                    with pytest.raises(trio.ClosedResourceError, match="closing"):
                        writer.write(b"too late")
                    with pytest.raises(trio.ClosedResourceError, match="closing"):
                        await writer.send_eof()
                    nursery.start_soon(peer.read_until_eof)
                # Everything was sent, so everyone returns normally.
                assert waiters.results == {
                    "flush first half": None,
                    "flush all": None,
                    "aclose": None,
                }
                assert writer.state is WriterState.CLOSED
            assert peer.eof
            assert peer.received == data
            assert socket_closed(client)


async def test_forced_close_from_another_task_wakes_drain_flush_and_send_eof_with_closed() -> None:
    data = pattern(0, BIG)
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(data)
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    await park(waiters, writer, "drain", "flush", "send_eof")
                    assert waiters.pending() == {"drain", "flush", "send_eof"}
                    waiters.start("close", lambda: trio.aclose_forcefully(writer))  # noqa: ASYNC105
                for name in ("drain", "flush", "send_eof"):
                    assert isinstance(waiters.results[name], trio.ClosedResourceError), name
                assert waiters.results["close"] is None
                assert writer.state is WriterState.CLOSED
                assert socket_closed(client)
                # The sender's blocked socket send was woken; it returns.
            await peer.read_until_eof()
            assert_prefix(peer.received, data)
            assert len(peer.received) < BIG
            for fn in (writer.drain, writer.flush, writer.send_eof):
                with pytest.raises(trio.ClosedResourceError):
                    await fn()
            await writer.aclose()


async def test_socket_closed_under_the_writer_by_another_task_breaks_it_with_that_cause() -> None:
    data = pattern(0, BIG)
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            peer = Peer(server)
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(data)
                async with trio.open_nursery() as inner:
                    waiters = Waiters(inner)
                    await park(waiters, writer, "drain", "flush")
                    assert waiters.pending() == {"drain", "flush"}
                    await client.aclose()  # behind the writer's back
                cause, message = same_failure(waiters, {"drain", "flush"})
                assert message == SEND_FAILED
                assert isinstance(cause, trio.ClosedResourceError)
                await assert_every_call_raises(writer, cause, message)
                await writer.aclose()
                assert writer.state is WriterState.CLOSED
            await peer.read_until_eof()
            assert_prefix(peer.received, data)


async def test_a_write_to_an_idle_writer_on_a_reset_connection_raises_at_once() -> None:
    # Over a SocketStream, a write to an idle writer goes straight to the
    # socket: the failure comes out of write() itself, and the refused bytes
    # are not counted as written.
    with trio.fail_after(TIMEOUT):
        async with tcp_pair() as (client, server), no_leaked_tasks():
            writer = BufferedWriter(client, high_water=HIGH)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await settle()  # the sender parks: the writer is idle
                set_linger_zero(server)
                await server.aclose()
                with pytest.raises(trio.BrokenResourceError) as info:
                    writer.write(b"into the void")
                assert str(info.value).startswith(SEND_FAILED)
                assert_connection_broken(info.value.__cause__)
                assert writer.state is WriterState.BROKEN
                assert writer.statistics().bytes_written == 0
                await assert_every_call_raises(writer, info.value.__cause__, str(info.value))
                await writer.aclose()  # reported: quiet
            assert socket_closed(client)
