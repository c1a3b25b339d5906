"""Hostile use of the writer: re-entrant writelines, unstarted senders, threads,
odd buffers, misspelt options.  Each ends in a clear error raised before
anything changed, or in the bytes delivered; never a hang or a lost byte."""

from __future__ import annotations

import array
import gc
import pickle
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from trio_bufwriter import (
    BufferedStream,
    BufferedWriter,
    ConflatingWriter,
    WriterState,
    open_buffered_stream,
    open_buffered_writer,
)

BIG = 64 * 1024  # a bytes this long is held by reference


# ----------------------------------------------------------------------
# writelines() whose iterable writes to the same writer


@pytest.mark.parametrize("nested", [b"n", b"N" * BIG], ids=["small", "big"])
async def test_a_write_from_the_writelines_iterable_is_refused_and_nothing_queued(
    nested: bytes,
) -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with open_buffered_writer(send) as writer:
            writer.write(b"<")

            def items() -> Iterator[bytes]:
                yield b"a"
                writer.write(nested)  # raises: the iterable writes to its own writer
                yield b"b"  # pragma: no cover

            before = writer.statistics()
            with pytest.raises(RuntimeError, match="writelines"):
                writer.writelines(items())
            after = writer.statistics()
            assert after.write_calls == before.write_calls
            assert after.bytes_written == before.bytes_written
            writer.write(b">")
            await writer.flush()
            assert await receive.receive_some() == b"<>"
            stats = writer.statistics()
            assert stats.bytes_written == stats.bytes_sent == 2
            assert stats.buffered == 0


@pytest.mark.parametrize("nested", [b"n", b"N" * BIG], ids=["small", "big"])
async def test_writelines_whose_iterable_catches_the_refusal_queues_its_own_items(
    nested: bytes,
) -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    refusals: list[RuntimeError] = []
    with trio.fail_after(5):
        async with open_buffered_writer(send) as writer:

            def items() -> Iterator[bytes]:
                yield b"a"
                try:
                    writer.write(nested)
                except RuntimeError as exc:
                    refusals.append(exc)
                try:
                    writer.writelines([b"x"])
                except RuntimeError as exc:
                    refusals.append(exc)
                yield b"b"

            writer.writelines(items())
            await writer.flush()
            stats = writer.statistics()
            assert stats.write_calls == 1
            assert stats.bytes_written == stats.bytes_sent == 2
            assert stats.buffered == 0
        assert await receive.receive_some() == b"ab"
    assert len(refusals) == 2


async def test_a_cork_taken_from_the_writelines_iterable_is_refused() -> None:
    send, _ = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with open_buffered_writer(send) as writer:

            def items() -> Iterator[bytes]:
                with writer.corked():
                    yield b"a"  # pragma: no cover

            with pytest.raises(RuntimeError, match="writelines"):
                writer.writelines(items())
            assert writer.buffered == 0


async def test_writelines_whose_iterable_raises_queues_nothing_and_the_writer_closes() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with open_buffered_writer(send) as writer:

            def items() -> Iterator[bytes]:
                yield b"a" * BIG
                raise KeyError("boom")

            with pytest.raises(KeyError):
                writer.writelines(items())
            assert writer.buffered == 0
            assert writer.statistics().write_calls == 0
            writer.write(b"ok")
        assert await receive.receive_some() == b"ok"


# ----------------------------------------------------------------------
# A sender that was never started


async def test_flush_of_a_writer_never_run_raises_instead_of_hanging() -> None:
    send, _ = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    writer.write(b"x")
    with trio.fail_after(5), pytest.raises(RuntimeError, match=r"run\(\) was never started"):
        await writer.flush()
    assert writer.buffered == 1  # nothing changed
    with pytest.raises(RuntimeError, match=r"nursery\.start"):
        await writer.aclose()
    assert writer.state is WriterState.CLOSED


async def test_drain_over_high_water_of_a_writer_never_run_raises() -> None:
    send, _ = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send, high_water=4)
    writer.write(b"12345")
    with trio.fail_after(5), pytest.raises(RuntimeError, match=r"drain\(\)"):
        await writer.drain()
    with pytest.raises(RuntimeError, match="5 written bytes were never sent"):
        await writer.aclose()


async def test_send_eof_and_wait_of_a_writer_never_run_raise() -> None:
    left, _ = trio.testing.memory_stream_pair()
    writer = BufferedStream(left, high_water=0)
    writer.write(b"x")
    with trio.fail_after(5):
        with pytest.raises(RuntimeError, match="wait_send_all_might_not_block"):
            await writer.wait_send_all_might_not_block()
        with pytest.raises(RuntimeError, match="send_eof"):
            await writer.send_eof()
        assert writer.state is WriterState.OPEN
        with pytest.raises(RuntimeError, match="never started"):
            await writer.aclose()


async def test_aclose_of_a_writer_never_run_with_nothing_written_just_closes() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    with trio.fail_after(5):
        await writer.aclose()
        assert await receive.receive_some() == b""  # the stream was closed


async def test_a_sender_started_with_start_soon_just_before_flush_is_found() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            writer.write(b"legal")
            nursery.start_soon(writer.run)
            await writer.flush()  # the sender has not run yet: legal
            assert await receive.receive_some() == b"legal"
            await writer.aclose()


async def test_a_writer_collected_with_unsent_bytes_warns() -> None:
    send, _ = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    writer.write(b"lost")
    with pytest.warns(ResourceWarning, match="4 unsent bytes"):  # noqa: PT031
        del writer  # CPython collects it here
        gc.collect()


async def test_a_conflating_writer_over_a_writer_never_run_raises_on_flush() -> None:
    send, _ = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    latest = ConflatingWriter(writer)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(latest.run)
            latest.write_latest("k", b"v")
            with pytest.raises(RuntimeError, match="never started"):
                await latest.flush()
            nursery.cancel_scope.cancel()
    with pytest.raises((RuntimeError, trio.BrokenResourceError)):
        await writer.aclose()


# ----------------------------------------------------------------------
# Calls from another thread


async def test_write_from_a_worker_thread_raises_and_leaves_the_writer_untouched() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with open_buffered_writer(send) as writer:
            await trio.testing.wait_all_tasks_blocked()  # the sender is parked
            with pytest.raises(RuntimeError, match=r"trio\.from_thread\.run_sync"):
                await trio.to_thread.run_sync(writer.write, b"x")
            with pytest.raises(RuntimeError, match=r"trio\.from_thread\.run_sync"):
                await trio.to_thread.run_sync(writer.writelines, [b"x"])
            stats = writer.statistics()
            assert (stats.write_calls, stats.bytes_written, stats.buffered) == (0, 0, 0)
            # The right way, from a thread:
            await trio.to_thread.run_sync(trio.from_thread.run_sync, writer.write, b"ok")
        assert await receive.receive_some() == b"ok"


# ----------------------------------------------------------------------
# What counts as bytes: one rule, whether or not bytes are queued


@pytest.mark.parametrize("queued", [False, True], ids=["idle", "queued"])
async def test_any_c_contiguous_buffer_is_accepted_whether_or_not_bytes_are_queued(
    queued: bool,
) -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with open_buffered_writer(send) as writer:
            await trio.testing.wait_all_tasks_blocked()
            if queued:
                writer.write(b"")  # the sender is woken: the next writes queue
                writer.write(b"<")
            writer.write(pickle.PickleBuffer(b"pb"))  # no __len__
            writer.write(array.array("H", [0x4142]))
            writer.write(memoryview(b"mv"))
            await writer.flush()
            stats = writer.statistics()
            assert stats.bytes_written == stats.bytes_sent
        data = await receive.receive_some()
    assert data == (b"<" if queued else b"") + b"pb" + array.array("H", [0x4142]).tobytes() + b"mv"


@pytest.mark.parametrize("queued", [False, True], ids=["idle", "queued"])
@pytest.mark.parametrize("limit", [None, 1000], ids=["no-limit", "max_buffer"])
async def test_a_non_contiguous_buffer_is_refused_whether_or_not_bytes_are_queued(
    queued: bool, limit: int | None
) -> None:
    send, _ = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(5):
        async with open_buffered_writer(
            send, max_buffer=limit, high_water=None if limit is None else 100
        ) as writer:
            await trio.testing.wait_all_tasks_blocked()
            if queued:
                writer.write(b"")
                writer.write(b"<")
            before = writer.statistics()
            for bad in (memoryview(b"abcdef")[::2], "text", 7, None):
                with pytest.raises(TypeError):
                    writer.write(bad)  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    writer.writelines([b"ok", bad])  # type: ignore[list-item]
            after = writer.statistics()
            assert (after.write_calls, after.bytes_written) == (
                before.write_calls,
                before.bytes_written,
            )


# ----------------------------------------------------------------------
# Misspelt options


@pytest.mark.parametrize(
    "make",
    [
        lambda s: BufferedWriter(s, highwater=10),
        lambda s: BufferedStream(s, highwater=10),
        lambda s: open_buffered_writer(s, highwater=10),
        lambda s: open_buffered_stream(s, highwater=10),
    ],
    ids=["BufferedWriter", "BufferedStream", "open_buffered_writer", "open_buffered_stream"],
)
async def test_a_misspelt_option_names_the_public_class_and_the_right_option(make) -> None:  # type: ignore[no-untyped-def]
    left, _ = trio.testing.memory_stream_pair()
    with pytest.raises(
        TypeError, match=r"(BufferedWriter|BufferedStream)\(\).*'high_water'"
    ) as info:
        make(left)
    assert "_Writer" not in str(info.value)
