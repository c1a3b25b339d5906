"""Writing to a writer from threads that are not running Trio.

The supported pattern: **call the writer's methods through** ``trio.from_thread``::

    # in a thread started with trio.to_thread.run_sync(...)
    trio.from_thread.run_sync(writer.write, data)  # queue bytes; returns at once
    trio.from_thread.run(writer.drain)  # backpressure: blocks this thread
    trio.from_thread.run(writer.flush)  # barrier: blocks this thread

    # in any other thread, with token = trio.lowlevel.current_trio_token()
    # captured in Trio beforehand
    trio.from_thread.run_sync(writer.write, data, trio_token=token)

``write()`` is synchronous and never blocks, but it is **not thread-safe on
its own**: it appends to a buffer that Trio's thread swaps out under the
sender task, and wakes that task through Trio's (single-threaded) parking
lot.  Calling it directly from another thread can lose or tear bytes and
corrupt the writer's counters.  ``trio.from_thread.run_sync`` runs the call
inside Trio's thread instead, so every guarantee holds as for a task: each
write's bytes go out contiguously (writes from any number of threads never
interleave) and in the order the calls reached Trio, and errors
(``TypeError``, ``ClosedResourceError``, ``BrokenResourceError``) are raised
in the calling thread.  Each call is a round trip to the Trio thread, so
batch small messages (``writelines``) when a thread writes many.
"""

from __future__ import annotations

import random
import struct
import threading

import pytest
import trio
import trio.testing

from trio_bufwriter import BufferedWriter, open_buffered_writer

_RECORD_HEADER = struct.Struct("!III")


def make_records(source: int, count: int, rng: random.Random) -> list[bytes]:
    """*count* records (source, seq, length, payload) of 1 B .. 64 KiB, mostly small."""
    records = []
    for seq in range(count):
        length = min(int(2 ** rng.uniform(0, 16)), 65536)
        records.append(_RECORD_HEADER.pack(source, seq, length) + rng.randbytes(length))
    return records


def check_records(data: bytes | bytearray, expected: dict[int, list[bytes]]) -> None:
    """*data* must be exactly the records of *expected*, each source's in order,
    each record contiguous (writes never interleave)."""
    next_seq = dict.fromkeys(expected, 0)
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        source, seq, length = _RECORD_HEADER.unpack_from(view, pos)
        assert source in expected, f"garbage at offset {pos}"
        assert seq == next_seq[source], f"source {source}: got record {seq}"
        end = pos + _RECORD_HEADER.size + length
        assert view[pos:end] == expected[source][seq], f"source {source} record {seq} corrupted"
        next_seq[source] += 1
        pos = end
    assert next_seq == {source: len(records) for source, records in expected.items()}


async def receive_to_eof(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    while data := await stream.receive_some(65536):
        into += data


async def socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def test_writes_from_worker_threads_arrive_whole_and_in_order() -> None:
    rng = random.Random(7)
    expected = {source: make_records(source, 150, rng) for source in range(8)}
    received = bytearray()

    def thread_main(writer: BufferedWriter, records: list[bytes], seed: int) -> None:
        thread_rng = random.Random(seed)
        for record in records:
            trio.from_thread.run_sync(writer.write, record)
            roll = thread_rng.random()
            if roll < 0.2:
                trio.from_thread.run(writer.drain)
            elif roll < 0.25:
                trio.from_thread.run(writer.flush)

    with trio.fail_after(20):
        sender, receiver = await socket_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_to_eof, receiver, received)
            async with open_buffered_writer(sender, high_water=16384) as writer:
                async with trio.open_nursery() as threads:
                    for source, records in expected.items():
                        threads.start_soon(
                            trio.to_thread.run_sync, thread_main, writer, records, source
                        )
                stats = writer.statistics()
                assert stats.write_calls == sum(map(len, expected.values()))
            # Closed: the receiver reads to EOF.
        await receiver.aclose()
    check_records(received, expected)


async def test_drain_from_a_thread_waits_for_low_water() -> None:
    received = bytearray()
    over_high_water = 0

    def thread_main(writer: BufferedWriter) -> None:
        nonlocal over_high_water

        def write() -> bool:
            # Written and looked at in one trip into Trio: the sender cannot
            # have sent anything in between.
            writer.write(b"d" * 50_000)
            return writer.need_drain

        for _ in range(20):
            over_high_water += trio.from_thread.run_sync(write)
            trio.from_thread.run(writer.drain)
            # Only this thread writes, and the sender only ever lowers it.
            assert trio.from_thread.run_sync(lambda: writer.buffered) <= writer.low_water

    async def read_slowly(stream: trio.abc.ReceiveStream) -> None:
        while data := await stream.receive_some(256):
            received.extend(data)

    with trio.fail_after(10):
        # Lockstep: a send completes only once the receiver has read all of
        # it, 256 bytes at a time, so the buffer stays over high water for
        # a few hundred scheduler rounds after each write.
        send_stream, receive_stream = trio.testing.lockstep_stream_one_way_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_slowly, receive_stream)
            async with open_buffered_writer(send_stream, high_water=4096) as writer:
                await trio.to_thread.run_sync(thread_main, writer)
    assert received == b"d" * 1_000_000
    # Not a timing assertion on the result above, just that the case was
    # exercised: drain() had something to wait for at least once.
    assert over_high_water >= 1


async def test_flush_from_a_thread_is_a_barrier_for_that_threads_writes() -> None:
    received = bytearray()

    def thread_main(writer: BufferedWriter, tag: bytes) -> None:
        for _ in range(30):
            trio.from_thread.run_sync(writer.write, tag * 3000)
            written = trio.from_thread.run_sync(lambda: writer.statistics().bytes_written)
            trio.from_thread.run(writer.flush)
            # Everything written before the flush (this thread's and any
            # other's) has been accepted by the wrapped stream.
            assert trio.from_thread.run_sync(lambda: writer.statistics().bytes_sent) >= written

    with trio.fail_after(10):
        send_stream, receive_stream = trio.testing.lockstep_stream_one_way_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_to_eof, receive_stream, received)
            async with open_buffered_writer(send_stream) as writer, trio.open_nursery() as threads:
                for tag in b"abc":
                    threads.start_soon(trio.to_thread.run_sync, thread_main, writer, bytes([tag]))
    assert len(received) == 3 * 30 * 3000
    # Every write arrived in one piece.
    for start in range(0, len(received), 3000):
        assert len(set(received[start : start + 3000])) == 1


async def test_a_thread_trio_did_not_start_writes_with_a_trio_token() -> None:
    received = bytearray()
    failures: list[BaseException] = []
    records = make_records(0, 200, random.Random(8))

    def thread_main(
        writer: BufferedWriter, token: trio.lowlevel.TrioToken, done: trio.Event
    ) -> None:
        try:
            for record in records:
                trio.from_thread.run_sync(writer.write, record, trio_token=token)
            trio.from_thread.run(writer.flush, trio_token=token)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            trio.from_thread.run_sync(done.set, trio_token=token)

    with trio.fail_after(10):
        sender, receiver = await socket_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_to_eof, receiver, received)
            async with open_buffered_writer(sender) as writer:
                done = trio.Event()
                thread = threading.Thread(
                    target=thread_main,
                    args=(writer, trio.lowlevel.current_trio_token(), done),
                )
                thread.start()
                try:
                    await done.wait()
                finally:
                    # done is set just before the thread returns.
                    await trio.to_thread.run_sync(thread.join)
                assert not failures
                stats = writer.statistics()
                assert stats.bytes_sent == stats.bytes_written == sum(map(len, records))
        await receiver.aclose()
    check_records(received, {0: records})


async def test_errors_are_raised_in_the_calling_thread() -> None:
    def bad_write(writer: BufferedWriter) -> None:
        with pytest.raises(TypeError, match="not str"):
            trio.from_thread.run_sync(writer.write, "text")  # type: ignore[arg-type]
        trio.from_thread.run_sync(writer.write, b"ok")

    def late_write(writer: BufferedWriter) -> None:
        with pytest.raises(trio.ClosedResourceError):
            trio.from_thread.run_sync(writer.write, b"late")
        with pytest.raises(trio.ClosedResourceError):
            trio.from_thread.run(writer.drain)
        with pytest.raises(trio.ClosedResourceError):
            trio.from_thread.run(writer.flush)

    with trio.fail_after(10):
        send_stream, receive_stream = trio.testing.memory_stream_one_way_pair()
        async with open_buffered_writer(send_stream) as writer:
            await trio.to_thread.run_sync(bad_write, writer)
        await trio.to_thread.run_sync(late_write, writer)
        assert await receive_stream.receive_some() == b"ok"
        assert await receive_stream.receive_some() == b""
