"""BufferedWriter basics: write(), writelines(), coalescing, splitting, corking,
configuration and statistics."""

from __future__ import annotations

import array
import dataclasses
import re

import pytest
import trio
import trio.testing
from writer_testing import ControlledStream, running, settle

from trio_bufwriter import (
    DEFAULT_HIGH_WATER,
    DEFAULT_MAX_SEND_SIZE,
    BufferedWriter,
    WriterState,
    WriterStatistics,
)

# ----------------------------------------------------------------------
# write(): what it accepts


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"bytes", b"bytes"),
        (bytearray(b"bytearray"), b"bytearray"),
        (memoryview(b"memoryview"), b"memoryview"),
        (memoryview(b"xxsliceyy")[2:7], b"slice"),
        (array.array("B", b"array"), b"array"),
        (array.array("H", [1, 2]), array.array("H", [1, 2]).tobytes()),
        (b"", b""),
    ],
    ids=["bytes", "bytearray", "memoryview", "memoryview-slice", "array-B", "array-H", "empty"],
)
async def test_write_accepts_contiguous_bytes_like_objects(data: object, expected: bytes) -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(data)  # type: ignore[arg-type]
            writer.write(b"|")
            await writer.flush()
    assert bytes(stream.accepted) == expected + b"|"


@pytest.mark.parametrize("kind", ["bytearray", "array"])
async def test_mutating_a_buffer_right_after_write_does_not_change_what_is_sent(kind: str) -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    buf: bytearray | array.array[int]
    buf = bytearray(b"original") if kind == "bytearray" else array.array("B", b"original")
    with trio.fail_after(5):
        async with running(writer):
            writer.write(buf)
            for i, byte in enumerate(b"CLOBBERD"):
                buf[i] = byte
            writer.write(buf)
            await writer.flush()
    assert bytes(stream.accepted) == b"originalCLOBBERD"


async def test_write_never_reaches_a_checkpoint_and_lets_no_other_task_run() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, high_water=0)
    other_ran = False

    async def other() -> None:
        nonlocal other_ran
        other_ran = True

    with trio.fail_after(5):
        async with running(writer) as nursery:
            nursery.start_soon(other)
            with trio.testing.assert_no_checkpoints():
                for _ in range(100):
                    writer.write(b"x" * 1000)  # far over high water: still no wait
            assert not other_ran
            assert stream.calls == []
            await writer.flush()
            assert other_ran
    assert bytes(stream.accepted) == b"x" * 100_000


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("text", r"not str: encode the text first"),
        (42, r"not 'int'"),
        (None, r"not 'NoneType'"),
        (3.5, r"not 'float'"),
        (memoryview(b"abcdef")[::2], r"C-contiguous buffer; got a non-contiguous memoryview"),
    ],
    ids=["str", "int", "None", "float", "non-contiguous-memoryview"],
)
async def test_write_rejects_non_buffers_with_a_clear_type_error_and_queues_nothing(
    bad: object, message: str
) -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"before")
            with pytest.raises(TypeError, match=message):
                writer.write(bad)  # type: ignore[arg-type]
            assert writer.buffered == len(b"before")
            assert writer.statistics().write_calls == 1
            writer.write(b"after")
            await writer.flush()
    assert bytes(stream.accepted) == b"beforeafter"


async def test_writes_from_many_tasks_arrive_whole_and_never_interleave() -> None:
    stream = ControlledStream()
    # A tiny max_send_size splits the stream at arbitrary points: messages
    # must still come out contiguous.
    writer = BufferedWriter(stream, max_send_size=7)
    expected: set[bytes] = set()

    async def producer(task: int) -> None:
        for i in range(20):
            writer.write(b"<%d:%d:%s>" % (task, i, b"x" * ((task + i) % 13)))
            if i % 3 == 0:
                await trio.lowlevel.checkpoint()

    for task in range(30):
        for i in range(20):
            expected.add(b"<%d:%d:%s>" % (task, i, b"x" * ((task + i) % 13)))

    with trio.fail_after(5):
        async with running(writer):
            async with trio.open_nursery() as producers:
                for task in range(30):
                    producers.start_soon(producer, task)
            await writer.flush()
    data = bytes(stream.accepted)
    messages = re.findall(rb"<\d+:\d+:x*>", data)
    assert b"".join(messages) == data
    assert len(messages) == len(expected)
    assert set(messages) == expected
    # Per task, the messages keep their order.
    for task in range(30):
        mine = [m for m in messages if m.startswith(b"<%d:" % task)]
        assert [int(m.split(b":")[1]) for m in mine] == list(range(20))


# ----------------------------------------------------------------------
# writelines()


async def test_writelines_queues_every_item_in_order_as_one_write_call() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"0")
            writer.writelines([b"1", bytearray(b"2"), memoryview(b"3"), array.array("B", b"4")])
            writer.writelines(iter([b"5", b"6"]))
            writer.writelines([])
            await writer.flush()
            assert writer.statistics().write_calls == 4
    assert bytes(stream.accepted) == b"0123456"


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([b"a", "b"], r"writelines\(\) takes bytes-like objects, not str"),
        ([b"a", b"b", 7], r"writelines\(\) takes a bytes-like object .* not 'int'"),
        ([b"a", memoryview(b"abcdef")[::2]], r"writelines\(\) needs a C-contiguous buffer"),
        (["first"], r"not str"),
    ],
    ids=["str-after-bytes", "int-last", "non-contiguous", "str-first"],
)
async def test_writelines_with_a_bad_item_raises_type_error_and_queues_nothing_of_that_call(
    items: list[object], message: str
) -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            with writer.corked():
                writer.write(b"earlier;")
                with pytest.raises(TypeError, match=message):
                    writer.writelines(items)  # type: ignore[arg-type]
                assert writer.buffered == len(b"earlier;")
                writer.write(b"later")
            await writer.flush()
            assert writer.statistics().write_calls == 2
    assert bytes(stream.accepted) == b"earlier;later"


async def test_writelines_whose_iterable_raises_midway_reraises_that_error_and_queues_nothing() -> (
    None
):
    class Boom(Exception):
        pass

    def items() -> object:
        yield b"part one;"
        yield b"part two;"
        raise Boom("iterator failed")

    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            with writer.corked():
                writer.write(b"kept;")
                with pytest.raises(Boom, match="iterator failed"):
                    writer.writelines(items())  # type: ignore[arg-type]
                assert writer.buffered == len(b"kept;")
            await writer.flush()
    assert bytes(stream.accepted) == b"kept;"


async def test_writelines_of_a_non_iterable_raises_type_error_and_queues_nothing() -> None:
    writer = BufferedWriter(ControlledStream())
    with pytest.raises(TypeError, match="not iterable"):
        writer.writelines(5)  # type: ignore[arg-type]
    assert writer.buffered == 0
    assert writer.statistics().write_calls == 0


async def test_writelines_wakes_an_idle_sender() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await settle()  # the sender is parked, waiting for data
            writer.writelines([b"wake ", b"up"])
            await settle()
            assert stream.calls == [b"wake up"]


async def test_writelines_does_not_yield() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.testing.assert_no_checkpoints():
        writer.writelines([b"a"] * 1000)
    assert writer.buffered == 1000
    # Its sender never ran: aclose() says so, and discards the bytes.
    with pytest.raises(RuntimeError, match=r"run\(\) was never started"):
        await writer.aclose()


# ----------------------------------------------------------------------
# Coalescing and splitting


async def test_thousand_writes_in_one_tick_reach_the_stream_in_one_send_all() -> None:
    calls = 0

    async def count_send_all() -> None:
        nonlocal calls
        calls += 1

    stream = trio.testing.MemorySendStream(send_all_hook=count_send_all)
    writer = BufferedWriter(stream)
    expected = b"".join(b"%04d," % i for i in range(1000))
    with trio.fail_after(5):
        async with running(writer):
            await settle()  # the sender is parked, waiting for data
            for i in range(1000):
                writer.write(b"%04d," % i)
            await writer.flush()
            assert calls == 1
            assert stream.get_data_nowait() == expected
            stats = writer.statistics()
            assert stats.send_calls == 1
            assert stats.write_calls == 1000


async def test_writes_from_many_tasks_started_in_one_batch_share_one_send_all() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)

    async def one_write(i: int) -> None:
        writer.write(b"[%d]" % i)

    with trio.fail_after(5):
        async with running(writer):
            await settle()
            async with trio.open_nursery() as producers:
                for i in range(100):
                    producers.start_soon(one_write, i)
            await writer.flush()
    assert len(stream.calls) == 1
    assert sorted(re.findall(rb"\[(\d+)\]", stream.calls[0]), key=int) == [
        b"%d" % i for i in range(100)
    ]


async def test_writes_made_while_a_send_is_in_flight_go_out_together_in_the_next_send() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"first")
            await settle()
            assert stream.calls == [b"first"]
            writer.write(b"a")
            writer.write(b"b")
            writer.write(b"c")
            await settle()
            assert stream.calls == [b"first"]  # no second send while one is in flight
            stream.unstall()
            await writer.flush()
    assert stream.calls == [b"first", b"abc"]


async def test_max_send_size_splits_a_big_buffer_into_sends_of_at_most_that_size() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, max_send_size=1000)
    data = bytes(range(256)) * 20  # 5120 bytes
    with trio.fail_after(5):
        async with running(writer):
            writer.write(data)
            await writer.flush()
            assert writer.statistics().send_calls == 6
    assert [len(c) for c in stream.calls] == [1000] * 5 + [120]
    assert b"".join(stream.calls) == data
    assert bytes(stream.accepted) == data


async def test_a_buffer_exactly_max_send_size_goes_out_in_one_send() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, max_send_size=8)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"12345678")
            await writer.flush()
    assert stream.calls == [b"12345678"]


async def test_writer_over_a_memory_stream_one_way_pair_delivers_everything_in_order() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    writer = BufferedWriter(send)
    with trio.fail_after(5):
        async with running(writer):
            for i in range(500):
                writer.write(b"%d\n" % i)
                if i % 50 == 0:
                    await writer.drain()
                    await trio.lowlevel.checkpoint()
            await writer.aclose()
        received = bytearray()
        while chunk := await receive.receive_some():
            received += chunk
    assert bytes(received) == b"".join(b"%d\n" % i for i in range(500))


# ----------------------------------------------------------------------
# corked()


async def test_nothing_is_sent_while_corked_and_uncorking_sends_everything_in_one_send_all() -> (
    None
):
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            await settle()
            with writer.corked():
                writer.write(b"a")
                await settle()
                writer.write(b"b")
                await trio.lowlevel.checkpoint()
                writer.write(b"c")
                await settle()
                assert stream.calls == []
                assert writer.buffered == 3
            await settle()
            assert stream.calls == [b"abc"]


async def test_corks_nest_and_only_the_last_release_sends() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            with writer.corked():
                writer.write(b"outer;")
                with writer.corked():
                    writer.write(b"inner;")
                await settle()
                assert stream.calls == []  # inner release: still corked
                writer.write(b"tail")
                await settle()
                assert stream.calls == []
            await settle()
    assert stream.calls == [b"outer;inner;tail"]


async def test_corks_held_by_two_tasks_count_until_both_are_released() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    release_a = trio.Event()
    release_b = trio.Event()

    async def hold(name: bytes, release: trio.Event) -> None:
        with writer.corked():
            writer.write(name)
            await release.wait()

    with trio.fail_after(5):
        async with running(writer) as nursery:
            nursery.start_soon(hold, b"A", release_a)
            nursery.start_soon(hold, b"B", release_b)
            await settle()
            release_a.set()
            await settle()
            assert stream.calls == []
            release_b.set()
            await settle()
            assert len(stream.calls) == 1
            assert sorted(stream.calls[0]) == sorted(b"AB")


async def test_a_cork_is_released_when_its_block_raises() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)

    def write_corked_then_fail() -> None:
        with writer.corked():
            writer.write(b"data")
            raise KeyError("x")

    with trio.fail_after(5):
        async with running(writer):
            with pytest.raises(KeyError):
                write_corked_then_fail()
            await settle()
            assert stream.calls == [b"data"]


async def test_a_send_in_flight_is_not_interrupted_by_corking() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"in flight")
            await settle()
            with writer.corked():
                writer.write(b"held")
                stream.unstall()
                await settle()
                assert stream.calls == [b"in flight"]
                assert bytes(stream.accepted) == b"in flight"
            await settle()
            assert stream.calls == [b"in flight", b"held"]


async def test_drain_over_high_water_while_corked_sends_instead_of_deadlocking() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream, high_water=4, low_water=0)
    with trio.fail_after(5):
        async with running(writer):
            with writer.corked():
                writer.write(b"0123456789")
                assert writer.need_drain
                await writer.drain()
                assert writer.buffered == 0
                assert bytes(stream.accepted) == b"0123456789"
                # Below high water, the cork holds again.
                writer.write(b"ab")
                await writer.drain()
                await settle()
                assert stream.calls == [b"0123456789"]
            await settle()
            assert stream.calls == [b"0123456789", b"ab"]


async def test_flush_while_corked_sends_the_buffer() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            with writer.corked():
                writer.write(b"corked data")
                await writer.flush()
                assert bytes(stream.accepted) == b"corked data"
                assert writer.buffered == 0


# ----------------------------------------------------------------------
# Configuration: constructor, water marks, properties


def test_constructor_defaults() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    assert writer.high_water == DEFAULT_HIGH_WATER == 64 * 1024
    assert writer.low_water == DEFAULT_HIGH_WATER // 4
    assert writer.max_send_size == DEFAULT_MAX_SEND_SIZE == 1024 * 1024
    assert writer.transport_stream is stream
    assert writer.state is WriterState.OPEN
    assert writer.buffered == 0
    assert not writer.need_drain


def test_constructor_with_only_high_water_sets_low_water_to_a_quarter_of_it() -> None:
    writer = BufferedWriter(ControlledStream(), high_water=1000)
    assert (writer.high_water, writer.low_water) == (1000, 250)


def test_constructor_takes_explicit_marks_and_max_send_size() -> None:
    writer = BufferedWriter(ControlledStream(), high_water=100, low_water=100, max_send_size=1)
    assert (writer.high_water, writer.low_water, writer.max_send_size) == (100, 100, 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"high_water": -1}, ValueError, "high_water must be >= 0"),
        ({"low_water": -1}, ValueError, "low_water must be >= 0"),
        ({"high_water": 10, "low_water": 11}, ValueError, r"low_water \(11\) must not be above"),
        ({"high_water": 1.5}, TypeError, "high_water must be an int, not 'float'"),
        ({"high_water": 100, "low_water": "1"}, TypeError, "low_water must be an int"),
        ({"high_water": True}, TypeError, "not 'bool'"),
        ({"max_send_size": 0}, ValueError, "max_send_size must be >= 1"),
        ({"max_send_size": 2.0}, TypeError, "max_send_size must be an int"),
    ],
)
def test_constructor_rejects_bad_settings(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        BufferedWriter(ControlledStream(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("not_a_stream", [object(), b"bytes", trio.testing.MemoryReceiveStream()])
def test_constructor_rejects_anything_but_a_send_stream(not_a_stream: object) -> None:
    with pytest.raises(TypeError, match=r"expected a trio\.abc\.SendStream to wrap"):
        BufferedWriter(not_a_stream)  # type: ignore[arg-type]


def test_set_water_marks_follows_asyncio_defaults() -> None:
    writer = BufferedWriter(ControlledStream())
    writer.set_water_marks(high=1000)
    assert (writer.high_water, writer.low_water) == (1000, 250)
    writer.set_water_marks(low=300)
    assert (writer.high_water, writer.low_water) == (1200, 300)
    writer.set_water_marks()
    assert (writer.high_water, writer.low_water) == (DEFAULT_HIGH_WATER, DEFAULT_HIGH_WATER // 4)
    writer.set_water_marks(high=0, low=0)
    assert (writer.high_water, writer.low_water) == (0, 0)
    writer.set_water_marks(7, 7)
    assert (writer.high_water, writer.low_water) == (7, 7)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"high": -4}, ValueError, "high_water must be >= 0"),
        ({"low": -1}, ValueError, "must be >= 0"),
        ({"high": 10, "low": -1}, ValueError, "low_water must be >= 0"),
        ({"high": 10, "low": 11}, ValueError, "must not be above high_water"),
        ({"high": 10.0}, TypeError, "high_water must be an int, not 'float'"),
        ({"high": 10, "low": 2.5}, TypeError, "low_water must be an int, not 'float'"),
        # With only one mark given the other is derived first (high // 4,
        # 4 * low), so a non-int may fail in that arithmetic: still a TypeError.
        ({"high": "10"}, TypeError, None),
        ({"low": "1"}, TypeError, "must be an int"),
        ({"low": None, "high": [1]}, TypeError, None),
    ],
)
def test_set_water_marks_rejects_bad_marks_and_keeps_the_old_ones(
    kwargs: dict[str, object], error: type[Exception], message: str | None
) -> None:
    writer = BufferedWriter(ControlledStream(), high_water=40, low_water=20)
    with pytest.raises(error, match=message):
        writer.set_water_marks(**kwargs)  # type: ignore[arg-type]
    assert (writer.high_water, writer.low_water) == (40, 20)


async def test_need_drain_is_true_exactly_while_more_than_high_water_is_buffered() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, high_water=10, low_water=5)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"x" * 10)
            assert not writer.need_drain
            writer.write(b"x")
            assert writer.need_drain
            await settle()  # now in flight: still counted
            assert writer.buffered == 11
            assert writer.need_drain
            writer.set_water_marks(high=11)
            assert not writer.need_drain
            writer.set_water_marks(high=10, low=5)
            stream.unstall()
            await writer.flush()
            assert not writer.need_drain


# ----------------------------------------------------------------------
# statistics()


async def test_statistics_count_bytes_calls_and_peak() -> None:
    stream = ControlledStream(stalled=True)
    writer = BufferedWriter(stream, max_send_size=4)
    assert writer.statistics() == WriterStatistics(
        bytes_written=0,
        bytes_sent=0,
        write_calls=0,
        send_calls=0,
        peak_buffered=0,
        buffered=0,
        state=WriterState.OPEN,
    )
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"abcdef")  # 6 bytes: sent as 4 + 2
            writer.writelines([b"gh", b"ij"])
            await settle()
            stats = writer.statistics()
            assert stats.bytes_written == 10
            assert stats.bytes_sent == 0
            assert stats.write_calls == 2
            assert stats.send_calls == 1  # the first chunk is in flight
            assert stats.buffered == 10
            assert stats.peak_buffered == 10
            stream.release()
            await settle()
            stats = writer.statistics()
            assert (stats.bytes_sent, stats.buffered, stats.send_calls) == (4, 6, 2)
            stream.unstall()
            await writer.flush()
            stats = writer.statistics()
            assert stats == WriterStatistics(
                bytes_written=10,
                bytes_sent=10,
                write_calls=2,
                send_calls=3,
                peak_buffered=10,
                buffered=0,
                state=WriterState.OPEN,
                batches=1,  # both writes went in one batch, in three sends
            )
            writer.write(b"k")
            await writer.aclose()
            stats = writer.statistics()
            assert stats.state is WriterState.CLOSED
            assert (stats.bytes_written, stats.bytes_sent, stats.peak_buffered) == (11, 11, 10)
    assert [len(c) for c in stream.calls] == [4, 4, 2, 1]


async def test_peak_buffered_records_a_maximum_that_was_never_observed_directly() -> None:
    stream = ControlledStream()
    writer = BufferedWriter(stream)
    with trio.fail_after(5):
        async with running(writer):
            writer.write(b"x" * 500)
            await writer.flush()
            writer.write(b"y" * 30)
            await writer.flush()
            stats = writer.statistics()
    assert stats.peak_buffered == 500
    assert stats.buffered == 0


def test_writer_statistics_is_frozen() -> None:
    stats = BufferedWriter(ControlledStream()).statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.bytes_sent = 5  # type: ignore[misc]
    assert stats.bytes_sent == 0


def test_writer_states_are_ordered_as_documented() -> None:
    assert [s.name for s in sorted(WriterState)] == [
        "OPEN",
        "EOF_PENDING",
        "EOF_SENT",
        "CLOSING",
        "CLOSED",
        "BROKEN",
    ]
    assert not WriterState.OPEN


async def test_writer_state_prints_as_its_name_and_still_compares_as_a_number() -> None:
    writer = BufferedWriter(ControlledStream())
    with trio.fail_after(5):
        async with running(writer):
            assert f"{writer.state}" == str(writer.state) == "OPEN"
            assert f"[{writer.state:>8}]" == "[    OPEN]"
            assert writer.state == 0
            assert writer.state < WriterState.CLOSED
            await writer.aclose()
            assert f"state={writer.statistics().state}" == "state=CLOSED"
    assert repr(WriterState.BROKEN) == "<WriterState.BROKEN: 5>"
    assert int(WriterState.BROKEN) == 5
