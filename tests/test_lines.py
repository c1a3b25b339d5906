"""lines() (_reader.py): ``async for line in conn.lines()``, to end-of-file,
on BufferedReader and BufferedStream."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from test_reads import KINDS, ChunkSource, Reads, cut, reading
from writer_testing import settle

from trio_bufwriter import BufferedReader, BufferedStream, DelimiterNotFoundError


async def all_lines(kind: str, chunks: list[bytes], max_bytes: int = 1000) -> list[bytes]:
    with trio.fail_after(5):
        async with reading(kind, chunks) as reads:
            return [line async for line in reads.lines(max_bytes)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (b"\n", [b""]),
        (b"a\nb\r\nc\n", [b"a", b"b", b"c"]),
        (b"a\nlast", [b"a", b"last"]),
        (b"a\nlast\r", [b"a", b"last\r"]),
        (b"a\n\n", [b"a", b""]),
        (b"a\r\r\n", [b"a\r"]),
    ],
    ids=["empty", "one-empty", "endings", "no-ending", "cr-kept", "empty-last", "two-cr"],
)
async def test_lines_end_cleanly_at_end_of_file_with_the_last_line_first(
    kind: str, data: bytes, expected: list[bytes]
) -> None:
    assert await all_lines(kind, [data] if data else []) == expected
    assert await all_lines(kind, cut(data, [1])) == expected


@given(data=st.binary(max_size=200), sizes=st.lists(st.integers(1, 20), max_size=5))
def test_lines_are_what_asyncio_readline_gives_stripped(data: bytes, sizes: list[int]) -> None:
    # asyncio's readline() returns each line with its b"\n", then a last
    # partial line as it is; lines() the same, less b"\n" and one b"\r".
    expected = []
    rest = data
    while rest:
        end = rest.find(b"\n")
        if end < 0:
            expected.append(rest)
            break
        item = rest[:end]
        expected.append(item[:-1] if item.endswith(b"\r") else item)
        rest = rest[end + 1 :]
    assert trio.run(all_lines, "reader", cut(data, sizes)) == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_once_ended_the_iteration_stays_ended_without_receiving(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\nb"]) as reads:
            lines = reads.lines()
            assert [line async for line in lines] == [b"a", b"b"]
            source = reads.transport_stream
            assert isinstance(source, ChunkSource)
            receives = source.receives
            with trio.testing.assert_checkpoints(), pytest.raises(StopAsyncIteration):
                await lines.__anext__()
            assert source.receives == receives


@pytest.mark.parametrize("kind", KINDS)
async def test_a_line_over_the_limit_raises_and_leaves_the_bytes(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"ok\n", b"x" * 20 + b"\nz\n"]) as reads:
            lines = reads.lines(10)
            assert await lines.__anext__() == b"ok"
            with pytest.raises(DelimiterNotFoundError):
                await lines.__anext__()
            assert await reads.receive_line(100) == b"x" * 20
            assert [line async for line in reads.lines(10)] == [b"z"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("bad", "error"), [(-1, ValueError), ("10", TypeError)])
async def test_a_bad_limit_is_refused_when_lines_is_called(
    kind: str, bad: Any, error: type[Exception]
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\n"]) as reads:
            with pytest.raises(error, match="max_bytes"):
                reads.lines(bad)


def open_reads(kind: str, stream: trio.abc.Stream) -> Reads:
    return BufferedReader(stream) if kind == "reader" else BufferedStream(stream)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cancelled_step_loses_nothing_and_the_iteration_goes_on(kind: str) -> None:
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_pair()
        reads = open_reads(kind, r)
        async with trio.open_nursery() as nursery:
            if isinstance(reads, BufferedStream):
                await nursery.start(reads.run)
            lines = reads.lines()
            with trio.CancelScope() as scope:

                async def feed_then_cancel() -> None:
                    await s.send_all(b"par")
                    await settle()
                    scope.cancel()

                nursery.start_soon(feed_then_cancel)
                await lines.__anext__()
            assert scope.cancelled_caught
            await s.send_all(b"tial\nnext\n")
            await s.send_eof()
            assert [line async for line in lines] == [b"partial", b"next"]
            await reads.aclose()
            await s.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_second_reader_while_a_line_is_awaited_is_a_busy_error(kind: str) -> None:
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_pair()
        reads = open_reads(kind, r)
        got: list[bytes] = []

        async def first() -> None:
            got.extend([line async for line in reads.lines()])

        async with trio.open_nursery() as nursery:
            if isinstance(reads, BufferedStream):
                await nursery.start(reads.run)
            nursery.start_soon(first)
            await settle()
            with pytest.raises(trio.BusyResourceError, match="already receiving"):
                await reads.lines().__anext__()
            await s.send_all(b"one\n")
            await s.send_eof()
            await settle()
            assert got == [b"one"]
            await reads.aclose()
            await s.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_lines_the_buffer_answers_do_not_yield(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\nb\n"]) as reads:
            lines = reads.lines()
            assert await lines.__anext__() == b"a"
            with trio.testing.assert_no_checkpoints():
                assert await lines.__anext__() == b"b"
