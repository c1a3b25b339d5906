"""Large immutable writes are held by reference; everything else is copied."""

from __future__ import annotations

import array
import socket

import trio
import trio.testing
from test_socket_fast_path import receive_exactly, tcp_pair
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import BufferedWriter
from trio_bufwriter._writer import BY_REFERENCE_MIN


class IdentityRecorder(ControlledStream):
    """Records the very objects handed to send_all."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: list[object] = []
        self.sizes: list[int] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.objects.append(data)
        self.sizes.append(len(data))
        await super().send_all(data)


async def test_a_large_bytes_write_reaches_send_all_as_the_same_object() -> None:
    big = bytes(BY_REFERENCE_MIN)
    stream = IdentityRecorder()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(big)
            await writer.flush()
    assert any(obj is big for obj in stream.objects)
    assert bytes(stream.accepted) == big


async def test_a_large_bytearray_is_copied_so_the_caller_may_reuse_it() -> None:
    data = bytearray(b"a" * BY_REFERENCE_MIN)
    stream = IdentityRecorder()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await settle()
            writer.write(b"-")  # the sender is busy from here on: a queued write
            writer.write(data)
            data[:] = b"b" * BY_REFERENCE_MIN
            await writer.flush()
    assert all(obj is not data for obj in stream.objects)
    assert bytes(stream.accepted) == b"-" + b"a" * BY_REFERENCE_MIN


async def test_small_large_small_writes_keep_their_order_and_split_at_max_send() -> None:
    big = bytes(range(256)) * (BY_REFERENCE_MIN // 256 + 3)
    stream = IdentityRecorder()
    writer = BufferedWriter(stream, max_send_size=10_000)
    with trio.fail_after(5):
        async with running(writer):
            await settle()
            writer.write(b"head")
            writer.write(b"more")
            writer.write(big)
            writer.write(b"tail")
            assert writer.buffered == 4 + 4 + len(big) + 4
            await writer.flush()
            assert writer.buffered == 0
    assert bytes(stream.accepted) == b"headmore" + big + b"tail"
    assert max(stream.sizes) <= 10_000


async def test_a_corked_large_write_waits_for_the_uncork() -> None:
    big = bytes(BY_REFERENCE_MIN)
    stream = IdentityRecorder()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await settle()
            with writer.corked():
                writer.write(b"x")
                writer.write(big)
                await settle()
                assert stream.calls == []
            await writer.flush()
    assert bytes(stream.accepted) == b"x" + big


async def test_a_failure_counts_held_segments_as_lost() -> None:
    big = bytes(BY_REFERENCE_MIN)
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await settle()
            writer.write(b"first")  # taken by the sender, stalled
            await settle()
            writer.write(big)  # held by reference behind it
            stream.fail_with = OSError("gone")
            stream.release()
            await settle()
            stats = writer.statistics()
            assert stats.bytes_written == 5 + len(big)
            assert stats.bytes_sent == 0
            assert stats.buffered == 0


async def test_a_direct_send_counts_bytes_not_items_of_a_typed_buffer() -> None:
    ints = array.array("i", range(10))
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            writer = BufferedWriter(client)
            async with running(writer):
                await settle()
                writer.write(ints)  # goes out directly
                assert writer.statistics().bytes_sent == ints.itemsize * 10
                assert await receive_exactly(server, ints.itemsize * 10) == ints.tobytes()


async def test_what_the_socket_does_not_take_at_once_is_queued_in_order() -> None:
    # A tiny send buffer makes the direct send partial.
    size = 1024 * 1024
    payload = bytes(range(256)) * (size // 256)
    copy_payload = bytearray(payload)
    with trio.fail_after(20):
        async with tcp_pair() as (client, server):
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            writer = BufferedWriter(client, notsent_lowat="leave")
            received = bytearray()

            async def receive_all() -> None:
                while len(received) < 2 * size:
                    chunk = await server.receive_some(1 << 20)
                    assert chunk
                    received.extend(chunk)

            async with running(writer), trio.open_nursery() as nursery:
                await settle()
                nursery.start_soon(receive_all)
                await settle()
                writer.write(payload)  # bytes: the rest is held by reference
                assert 0 < writer.statistics().bytes_sent < size
                await writer.flush()
                await settle()
                writer.write(copy_payload)  # bytearray: the rest is copied
                copy_payload[:] = bytes(size)
                await writer.flush()
    assert received == payload * 2
