"""write_file(): a region of a file queued in order with the writes around it,
over a socket (sendfile) and over other streams (chunked reads), with its
backpressure, its errors, cancellation, closing and descriptors."""

from __future__ import annotations

import io
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme
from fault_testing import Peer, pattern, set_linger_zero, tcp_pair
from writer_testing import ControlledStream, running, settle

import trio_bufwriter
from trio_bufwriter import BufferedStream, BufferedWriter, BufferLimitError, WriterState

SIZE = 300_000
HOSTNAME = "trio-bufwriter-test.example.org"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(pattern(0, SIZE))
    return path


def big_buffers(*streams: trio.SocketStream) -> None:
    for stream in streams:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)


@asynccontextmanager
async def socket_writer(
    *, small_buffers: bool = False, **options: object
) -> AsyncIterator[tuple[BufferedWriter, trio.SocketStream]]:
    async with tcp_pair(small_buffers=small_buffers) as (client, server):
        writer = BufferedWriter(client, **options)  # type: ignore[arg-type]
        yield writer, server


@asynccontextmanager
async def memory_writer(**options: object) -> AsyncIterator[tuple[BufferedWriter, Peer]]:
    send, receive = trio.testing.memory_stream_pair()
    writer = BufferedWriter(send, **options)  # type: ignore[arg-type]
    yield writer, Peer(receive)


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = await stream.receive_some()
        assert chunk, f"end-of-file after {len(received)} of {size} bytes"
        received += chunk
    return bytes(received)


# ----------------------------------------------------------------------
# Order, over each kind of stream


@pytest.mark.parametrize("thread", [False, True], ids=["loop", "thread"])
async def test_a_region_goes_out_between_the_writes_around_it_over_a_socket(
    data_file: Path, thread: bool
) -> None:
    expected = b"head" + pattern(1000, 50_000) + b"middle" + pattern(0, SIZE) + b"tail"
    with trio.fail_after(10):
        async with socket_writer() as (writer, server):
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write(b"head")
                with data_file.open("rb") as file:
                    writer.write_file(file, 1000, 50_000, thread=thread)
                    writer.write(b"middle")
                    writer.write_file(file, thread=thread)
                writer.write(b"tail")
                received = await receive_exactly(server, len(expected))
                await writer.flush()
                stats = writer.statistics()
                await writer.aclose()
            assert received == expected
            assert stats.bytes_sent == stats.bytes_written == len(expected)
            assert stats.buffered == 0


@pytest.mark.parametrize("thread", [False, True], ids=["loop", "thread"])
async def test_the_fallback_reads_bounded_chunks_in_order(data_file: Path, thread: bool) -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(10):
        async with running(writer):
            writer.write(b"<")
            with data_file.open("rb") as file:
                writer.write_file(file, thread=thread)
            writer.write(b">")
            await writer.flush()
    assert bytes(stream.accepted) == b"<" + pattern(0, SIZE) + b">"
    assert max(len(call) for call in stream.calls) <= 256 * 1024
    assert writer.statistics().send_calls == len(stream.calls)


async def test_the_fallback_chunk_is_at_most_max_send_size(data_file: Path) -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, max_send_size=10_000)
    with trio.fail_after(10):
        async with running(writer):
            with data_file.open("rb") as file:
                writer.write_file(file)
            await writer.flush()
    assert bytes(stream.accepted) == pattern(0, SIZE)
    assert max(len(call) for call in stream.calls) == 10_000


async def test_a_region_over_a_memory_stream(data_file: Path) -> None:
    with trio.fail_after(10):
        async with memory_writer() as (writer, peer), trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            nursery.start_soon(peer.read_until_eof)
            with data_file.open("rb") as file:
                writer.write_file(file, 10, 20)
            writer.write(b"!")
            await writer.aclose()
    assert peer.received == pattern(10, 20) + b"!"


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOSTNAME).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return client_ctx, server_ctx


async def test_a_region_over_tls_is_read_and_encrypted(
    data_file: Path, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    client_ctx, server_ctx = tls_contexts
    with trio.fail_after(10):
        async with tcp_pair(small_buffers=False) as (client, server):
            tls_client = trio.SSLStream(client, client_ctx, server_hostname=HOSTNAME)
            tls_server = trio.SSLStream(server, server_ctx, server_side=True)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(tls_server.do_handshake)
                await tls_client.do_handshake()
            stream = BufferedStream(tls_client)
            async with trio.open_nursery() as nursery:
                await nursery.start(stream.run)
                stream.write(b"GET\n")
                with data_file.open("rb") as file:
                    stream.write_file(file)
                stream.write(b"END\n")
                received = await receive_exactly(tls_server, SIZE + 8)
                await stream.flush()
                nursery.cancel_scope.cancel()
    assert received == b"GET\n" + pattern(0, SIZE) + b"END\n"


async def test_a_buffered_stream_forwards_write_file(data_file: Path) -> None:
    with trio.fail_after(10):
        async with tcp_pair(small_buffers=False) as (client, server):
            stream = BufferedStream(client)
            async with trio.open_nursery() as nursery:
                await nursery.start(stream.run)
                with data_file.open("rb") as file:
                    stream.write_file(file, 5, 100)
                assert stream.buffered == 100
                await stream.flush()
                assert await receive_exactly(server, 100) == pattern(5, 100)
                await stream.aclose()


# ----------------------------------------------------------------------
# The file's descriptor


async def test_the_file_may_be_closed_as_soon_as_write_file_returns(data_file: Path) -> None:
    before = open_fds()
    with trio.fail_after(10):
        async with socket_writer() as (writer, server):
            with data_file.open("rb") as file:
                writer.write_file(file)
            assert file.closed
            # The region holds a descriptor of its own until it is sent.
            assert open_fds() == before + 2 + 1  # the two sockets, the region
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                received = await receive_exactly(server, SIZE)
                await writer.flush()
                assert open_fds() == before + 2
                await writer.aclose()
    assert received == pattern(0, SIZE)
    assert open_fds() == before


async def test_count_zero_queues_nothing_and_keeps_no_descriptor(data_file: Path) -> None:
    before = open_fds()
    writer = BufferedWriter(ControlledStream())
    with data_file.open("rb") as file:
        writer.write_file(file, SIZE, None)
        writer.write_file(file, 7, 0)
    assert writer.buffered == 0
    assert open_fds() == before
    await writer.aclose()


# ----------------------------------------------------------------------
# Backpressure and limits


async def test_region_bytes_count_in_buffered_and_drain_waits_for_them(data_file: Path) -> None:
    with trio.fail_after(10):
        async with (
            socket_writer(small_buffers=True) as (writer, server),
            trio.open_nursery() as nursery,
        ):
            await nursery.start(writer.run)
            with data_file.open("rb") as file:
                writer.write_file(file)
            assert writer.buffered == SIZE
            assert writer.need_drain
            drained = trio.Event()

            async def drain() -> None:
                await writer.drain()
                drained.set()

            nursery.start_soon(drain)
            await settle()
            # The peer reads nothing: the socket is full, the drain waits.
            assert not drained.is_set()
            assert writer.buffered > writer.low_water
            received = await receive_exactly(server, SIZE)
            await drained.wait()
            assert writer.buffered <= writer.low_water
            await writer.flush()
            await writer.aclose()
    assert received == pattern(0, SIZE)


async def test_what_the_socket_took_is_counted_before_the_sender_waits(data_file: Path) -> None:
    # sendfile(2) runs call after call until the socket is full; the bytes
    # are counted once, before the sender waits, where drain() can see them.
    with trio.fail_after(10):
        async with (
            socket_writer(small_buffers=True) as (writer, server),
            trio.open_nursery() as nursery,
        ):
            await nursery.start(writer.run)
            with data_file.open("rb") as file:
                writer.write_file(file)
            await settle()
            taken = SIZE - writer.buffered
            assert 0 < taken < SIZE
            assert writer.statistics().send_calls >= 1
            received = await receive_exactly(server, SIZE)
            await writer.flush()
            await writer.aclose()
    assert received == pattern(0, SIZE)


async def test_region_bytes_do_not_count_against_max_buffer(data_file: Path) -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_buffer=2000, high_water=1000)
    with data_file.open("rb") as file:
        writer.write_file(file)
    writer.write(b"x" * 1500)  # memory: 1500 of 2000
    assert writer.buffered == SIZE + 1500
    with pytest.raises(BufferLimitError):
        writer.write(b"y" * 501)
    assert writer.buffered == SIZE + 1500
    with trio.fail_after(10):
        async with running(writer):
            stream.unstall()
            await writer.flush()
    assert bytes(stream.accepted) == pattern(0, SIZE) + b"x" * 1500


# ----------------------------------------------------------------------
# Arguments


class NoFileno:
    pass


@pytest.mark.parametrize(
    ("make_file", "kwargs", "error", "match"),
    [
        (lambda path: io.BytesIO(b"abc"), {}, TypeError, "descriptor"),
        (lambda path: NoFileno(), {}, TypeError, "fileno"),
        (lambda path: str(path), {}, TypeError, "fileno"),
        (lambda path: path.open("r"), {}, TypeError, "binary mode"),
        (lambda path: path.open("rb"), {"offset": 1.5}, TypeError, "offset"),
        (lambda path: path.open("rb"), {"offset": True}, TypeError, "offset"),
        (lambda path: path.open("rb"), {"count": "7"}, TypeError, "count"),
        (lambda path: path.open("rb"), {"thread": 1}, TypeError, "thread"),
        (lambda path: path.open("rb"), {"offset": -1}, ValueError, "offset"),
        (lambda path: path.open("rb"), {"count": -1}, ValueError, "count"),
        (lambda path: path.open("rb"), {"offset": SIZE + 1}, ValueError, "beyond the end"),
        (lambda path: path.open("rb"), {"offset": 10, "count": SIZE}, ValueError, "past"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_changes(
    data_file: Path,
    make_file: Callable[[Path], object],
    kwargs: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    writer = BufferedWriter(ControlledStream())
    before = open_fds()
    file = make_file(data_file)
    try:
        with pytest.raises(error, match=match):
            writer.write_file(file, **kwargs)  # type: ignore[arg-type]
    finally:
        if isinstance(file, io.IOBase):
            file.close()
    assert open_fds() == before
    stats = writer.statistics()
    assert (stats.buffered, stats.write_calls, writer.state) == (0, 0, WriterState.OPEN)
    await writer.aclose()


async def test_a_closed_file_and_a_pipe_are_refused(data_file: Path) -> None:
    writer = BufferedWriter(ControlledStream())
    file = data_file.open("rb")
    file.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write_file(file)
    read_end, write_end = os.pipe()
    with (
        os.fdopen(read_end, "rb") as pipe,
        os.fdopen(write_end, "wb"),
        pytest.raises(ValueError, match="regular files"),
    ):
        writer.write_file(pipe)
    assert writer.statistics().write_calls == 0
    await writer.aclose()


async def test_a_write_only_file_is_refused_before_anything_changes(tmp_path: Path) -> None:
    # pread and sendfile would fail only when the region is sent, breaking
    # the writer; the call refuses it instead.
    writer = BufferedWriter(ControlledStream())
    before = open_fds()
    with (tmp_path / "out.bin").open("wb") as file:
        file.write(b"abc")
        file.flush()
        with pytest.raises(ValueError, match="write-only"):
            writer.write_file(file)
    assert open_fds() == before
    stats = writer.statistics()
    assert (stats.buffered, stats.write_calls, writer.state) == (0, 0, WriterState.OPEN)
    await writer.aclose()


async def test_write_file_on_a_closed_writer_raises(data_file: Path) -> None:
    writer = BufferedWriter(ControlledStream())
    await writer.aclose()
    with data_file.open("rb") as file, pytest.raises(trio.ClosedResourceError):
        writer.write_file(file)


# ----------------------------------------------------------------------
# Failures, cancellation, closing


@pytest.mark.parametrize("thread", [False, True], ids=["loop", "thread"])
@pytest.mark.parametrize("transport", ["socket", "memory"])
async def test_a_truncated_file_breaks_the_writer_saying_how_much_was_sent(
    data_file: Path, transport: str, thread: bool
) -> None:
    before = open_fds()
    with trio.fail_after(10):
        context = socket_writer() if transport == "socket" else memory_writer()
        async with context as (writer, peer):  # type: ignore[attr-defined]
            with data_file.open("rb") as file:
                writer.write_file(file, thread=thread)
            os.truncate(data_file, 100_000)
            async with trio.open_nursery() as nursery:
                if isinstance(peer, Peer):
                    nursery.start_soon(peer.read_until_eof)
                else:
                    nursery.start_soon(Peer(peer).read_until_eof)
                await nursery.start(writer.run)
                with pytest.raises(trio.BrokenResourceError) as caught:
                    await writer.flush()
                await writer.aclose()
    assert "after 100000 of the region's 300000 bytes were sent" in str(caught.value)
    assert "truncated" in str(caught.value)
    assert writer.state is WriterState.CLOSED
    assert open_fds() == before


async def test_cancelling_the_sender_mid_region_breaks_the_writer_and_closes_the_file(
    data_file: Path,
) -> None:
    before = open_fds()
    with trio.fail_after(10):
        async with socket_writer(small_buffers=True) as (writer, _):
            with data_file.open("rb") as file:
                writer.write_file(file)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await settle()  # the sender fills the socket and waits
                assert 0 < writer.statistics().bytes_sent < SIZE
                nursery.cancel_scope.cancel()
            assert writer.state is WriterState.BROKEN
            assert "cancelled" in str(writer.failure)
            assert open_fds() == before + 2  # the region's descriptor is closed
            with pytest.raises(trio.BrokenResourceError):
                await writer.aclose()
    assert open_fds() == before


async def test_aclose_forcefully_discards_a_queued_region_and_closes_its_file(
    data_file: Path,
) -> None:
    before = open_fds()
    with trio.fail_after(10):
        async with socket_writer(small_buffers=True) as (writer, _):
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                with data_file.open("rb") as file:
                    writer.write_file(file)
                    writer.write_file(file)
                await settle()
                await trio.aclose_forcefully(writer)
            stats = writer.statistics()
    assert stats.state is WriterState.CLOSED
    assert stats.bytes_sent < stats.bytes_written == 2 * SIZE
    assert stats.buffered == 0
    assert open_fds() == before


async def test_a_writer_never_run_closes_its_regions_on_aclose(data_file: Path) -> None:
    before = open_fds()
    writer = BufferedWriter(ControlledStream())
    with data_file.open("rb") as file:
        writer.write_file(file)
    assert open_fds() == before + 1
    with pytest.raises(RuntimeError, match="never sent"):
        await writer.aclose()
    assert open_fds() == before


async def test_write_file_from_another_thread_is_refused_before_anything_changes(
    data_file: Path,
) -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(10):
        async with running(writer):
            await settle()  # the sender is parked, waiting for data
            with (
                data_file.open("rb") as file,
                pytest.raises(RuntimeError, match="outside the trio thread"),
            ):
                await trio.to_thread.run_sync(writer.write_file, file)
            assert writer.statistics().write_calls == 0
            await writer.aclose()


async def test_a_region_the_peer_never_takes_trips_stall_timeout(
    data_file: Path, autojump_clock: trio.testing.MockClock
) -> None:
    before = open_fds()
    async with socket_writer(small_buffers=True, stall_timeout=30) as (writer, _):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with data_file.open("rb") as file:
                writer.write_file(file)
            with pytest.raises(trio.BrokenResourceError, match="stall_timeout"):
                await writer.flush()
        assert isinstance(writer.failure.__cause__, trio_bufwriter.StallTimeoutError)  # type: ignore[union-attr]
    assert open_fds() == before


@pytest.mark.parametrize("thread", [False, True], ids=["loop", "thread"])
async def test_a_region_larger_than_the_socket_buffer_waits_and_resumes(
    data_file: Path, thread: bool
) -> None:
    with trio.fail_after(10):
        async with (
            socket_writer(small_buffers=True, max_send_size=65536) as (writer, server),
            trio.open_nursery() as nursery,
        ):
            await nursery.start(writer.run)
            with data_file.open("rb") as file:
                writer.write_file(file, thread=thread)
            nursery.start_soon(writer.flush)
            received = await receive_exactly(server, SIZE)
            await writer.aclose()
    assert received == pattern(0, SIZE)
    assert writer.statistics().send_calls >= SIZE // 65536


async def test_a_peer_reset_during_a_region_breaks_the_writer_and_closes_the_file(
    data_file: Path,
) -> None:
    before = open_fds()
    with trio.fail_after(10):
        async with (
            socket_writer(small_buffers=True) as (writer, server),
            trio.open_nursery() as nursery,
        ):
            await nursery.start(writer.run)
            with data_file.open("rb") as file:
                writer.write_file(file)
            await settle()  # the socket is full
            set_linger_zero(server)
            await server.aclose()
            with pytest.raises(trio.BrokenResourceError) as caught:
                await writer.flush()
            await writer.aclose()
    assert isinstance(caught.value.__cause__, trio.BrokenResourceError | OSError)
    assert open_fds() == before
