"""receive_parsed(parse, max_frame) (_parse.py, _reader.py): a parse function
given the received bytes and a position, frame after frame, on BufferedReader
and BufferedStream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import pytest
import trio
import trio.testing
from hypothesis import example, given
from hypothesis import strategies as st
from test_reads import KINDS, ChunkSource, Reads, cut, reading
from writer_testing import settle

from trio_bufwriter import (
    DEFAULT_MAX_FRAME,
    BufferedReader,
    BufferedStream,
    FrameTooLargeError,
    IncompleteReadError,
)

# ----------------------------------------------------------------------
# Parsers


def length_prefixed(data: bytes, start: int) -> tuple[bytes, int] | int | None:
    """A frame: a 2-byte big-endian length, then that many bytes; says its
    size once the length is there."""
    if len(data) - start < 2:
        return None
    end = start + 2 + int.from_bytes(data[start : start + 2], "big")
    if end > len(data):
        return end - start
    return data[start + 2 : end], end


def prefixed(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def line(data: bytes, start: int) -> tuple[bytes, int] | None:
    """A frame: a line ending in LF (no size known before it ends)."""
    end = data.find(b"\n", start)
    if end < 0:
        return None
    return data[start:end], end + 1


def open_reads(kind: str, stream: trio.abc.Stream) -> Reads:
    return BufferedReader(stream) if kind == "reader" else BufferedStream(stream)


def source_of(reads: Reads) -> ChunkSource:
    source = reads.transport_stream
    assert isinstance(source, ChunkSource)
    return source


# ----------------------------------------------------------------------
# The model: any chunking gives the frames of the whole input


async def parse_all(kind: str, chunks: list[bytes], parse: Any) -> list[Any]:
    frames: list[Any] = []
    with trio.fail_after(10):
        async with reading(kind, chunks) as reads:
            while batch := await reads.receive_parsed(parse):
                assert batch
                frames += batch
            assert await reads.receive_parsed(parse) == []
    return frames


@pytest.mark.parametrize("kind", KINDS)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=12),
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    sizes=st.lists(st.integers(1, 50), max_size=6),
)
@example(payloads=[b"x" * 300] * 3, lines=[b"a"], sizes=[1])
def test_any_chunking_gives_the_frames_of_the_whole_input(
    kind: str, payloads: list[bytes], lines: list[bytes], sizes: list[int]
) -> None:
    prefixed_stream = b"".join(map(prefixed, payloads))
    line_stream = b"".join(item + b"\n" for item in lines)
    got = trio.run(parse_all, kind, cut(prefixed_stream, sizes), length_prefixed)
    assert got == payloads
    assert all(type(frame) is bytes for frame in got)
    assert trio.run(parse_all, kind, cut(line_stream, sizes), line) == lines


# ----------------------------------------------------------------------
# Frames, one call at a time


@pytest.mark.parametrize("kind", KINDS)
async def test_pipelined_frames_come_back_from_one_call_and_one_receive(kind: str) -> None:
    payloads = [b"frame %d" % i for i in range(1000)]
    with trio.fail_after(5):
        async with reading(kind, [b"".join(map(prefixed, payloads))]) as reads:
            assert await reads.receive_parsed(length_prefixed) == payloads
            assert source_of(reads).receives == 1
            assert reads.unread == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_the_other_reads_see_what_receive_parsed_left(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"head\na\nb\nc", b"d\ntail\n"]) as reads:
            assert await reads.receive_line() == b"head"
            assert await reads.receive_parsed(line) == [b"a", b"b"]
            assert await reads.receive_parsed(line) == [b"cd", b"tail"]
            assert await reads.receive_some() == b""


@pytest.mark.parametrize("kind", KINDS)
async def test_a_size_said_by_the_parser_spares_calls_until_it_is_there(kind: str) -> None:
    calls = []

    def counting(data: bytes, start: int) -> tuple[bytes, int] | int | None:
        calls.append(len(data) - start)
        return length_prefixed(data, start)

    payload = bytes(range(256)) * 8
    with trio.fail_after(5):
        async with reading(kind, cut(prefixed(payload), [100])) as reads:
            assert await reads.receive_parsed(counting) == [payload]
    # Once when the length came, once when the frame was all there.
    assert calls == [100, len(payload) + 2]


async def test_frames_are_bytes_when_a_big_frame_came_in_pieces() -> None:
    big = b"\x00" * 5000

    def two_lines(data: bytes, start: int) -> tuple[tuple[bytes, bytes], int] | None:
        first = data.find(b"\n", start)
        second = data.find(b"\n", first + 1) if first >= 0 else -1
        if second < 0:
            return None
        return (data[start:first], data[first + 1 : second]), second + 1

    with trio.fail_after(5):
        async with reading("reader", [b"k\n", *cut(big, [100]), b"\nrest"]) as reads:
            [(key, value)] = await reads.receive_parsed(two_lines)
    assert (type(key), type(value)) == (bytes, bytes)
    assert (key, value) == (b"k", big)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_clean_end_of_file_gives_no_frames_every_time(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\n"]) as reads:
            assert await reads.receive_parsed(line) == [b"a"]
            assert await reads.receive_parsed(line) == []
            assert await reads.receive_parsed(line) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunks", [[b"a\nbc"], [b"a\nb", b"c"]], ids=["one", "two"])
async def test_end_of_file_in_a_frame_raises_with_the_frames_bytes(
    kind: str, chunks: list[bytes]
) -> None:
    with trio.fail_after(5):
        async with reading(kind, chunks) as reads:
            assert await reads.receive_parsed(line) == [b"a"]
            with pytest.raises(IncompleteReadError, match="the rest of a frame") as caught:
                await reads.receive_parsed(line)
            assert caught.value.partial == b"bc"
            assert caught.value.expected is None
            assert await reads.receive_parsed(line) == []


# ----------------------------------------------------------------------
# Errors


def failing_at(bad: bytes) -> Callable[[bytes, int], tuple[bytes, int] | None]:
    def parse(data: bytes, start: int) -> tuple[bytes, int] | None:
        result = line(data, start)
        if result is not None and result[0] == bad:
            raise ValueError(f"bad frame {bad!r}")
        return result

    return parse


def refusing(data: bytes, start: int) -> None:
    raise ValueError("bad bytes")


@pytest.mark.parametrize("kind", KINDS)
async def test_an_error_after_frames_comes_at_the_next_call_with_the_bytes_unread(
    kind: str,
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\nb\nBAD\nc\n"]) as reads:
            parse = failing_at(b"BAD")
            assert await reads.receive_parsed(parse) == [b"a", b"b"]
            assert reads.unread == 6
            with pytest.raises(ValueError, match="bad frame"):
                await reads.receive_parsed(parse)
            assert reads.unread == 6
            assert await reads.receive_line() == b"BAD"
            assert await reads.receive_parsed(parse) == [b"c"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_base_exception_propagates_at_once_with_every_byte_unread(kind: str) -> None:
    def interrupted(data: bytes, start: int) -> tuple[bytes, int] | None:
        if data[start : start + 1] == b"!":
            raise KeyboardInterrupt
        return line(data, start)

    with trio.fail_after(5):
        async with reading(kind, [b"a\n!\n"]) as reads:
            with pytest.raises(KeyboardInterrupt):
                await reads.receive_parsed(interrupted)
            assert reads.unread == 4


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("end", [0, 1, 2, 100, -1], ids=["zero", "back", "start", "past", "neg"])
async def test_an_end_outside_the_bytes_after_start_is_a_runtime_error(kind: str, end: int) -> None:
    def wrong(data: bytes, start: int) -> tuple[bytes, int] | None:
        if start == 0:
            return b"first", 2
        return b"wrong", end

    with trio.fail_after(5):
        async with reading(kind, [b"a\nbcd"]) as reads:
            assert await reads.receive_parsed(wrong) == [b"first"]
            with pytest.raises(RuntimeError, match="a frame must end after its start"):
                await reads.receive_parsed(wrong)
            assert reads.unread == 3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("result", "match"),
    [
        ([b"wrong", 3], "returned \\[b'wrong', 3\\]"),
        ((b"wrong", 3, 0), "returned \\(b'wrong', 3, 0\\)"),
        ((b"wrong",), "returned \\(b'wrong',\\)"),
        ((b"wrong", 3.0), "ending at 3.0: it must be an int"),
        ((b"wrong", "3"), "ending at '3': it must be an int"),
        ((b"wrong", None), "ending at None: it must be an int"),
        ((b"wrong", True), "ending at True: it must be an int"),
        ("10", "returned '10'"),
        (10.5, "returned 10.5"),
        (True, "returned True"),
    ],
    ids=[
        *("list", "3-tuple", "1-tuple"),
        *("float-end", "str-end", "none-end", "bool-end"),
        *("str-size", "float-size", "bool-size"),
    ],
)
async def test_a_result_of_the_wrong_shape_or_type_is_a_type_error_saying_so(
    kind: str, result: object, match: str
) -> None:
    # Before, a float end was taken (the buffer's position became a float,
    # and the next read failed inside the library), and the others came
    # out as a comparison's or an unpacking's error.
    def wrong(data: bytes, start: int) -> Any:
        if start == 0:
            return b"first", 2
        return result

    with trio.fail_after(5):
        async with reading(kind, [b"a\nbcd"]) as reads:
            assert await reads.receive_parsed(wrong) == [b"first"]
            with pytest.raises(TypeError, match=match):
                await reads.receive_parsed(wrong)
            assert reads.unread == 3
            assert await reads.receive_exactly(3) == b"bcd"


@pytest.mark.parametrize("kind", KINDS)
async def test_an_end_or_size_of_an_integer_type_is_an_int(kind: str) -> None:
    class Index:
        def __init__(self, value: int) -> None:
            self.value = value

        def __index__(self) -> int:
            return self.value

    def indexed(data: bytes, start: int) -> Any:
        if len(data) - start < 3:
            return Index(3)
        return data[start : start + 3], Index(start + 3)

    with trio.fail_after(5):
        async with reading(kind, [b"ab", b"cdef"]) as reads:
            assert await reads.receive_parsed(indexed) == [b"abc", b"def"]
            assert reads.unread == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_a_named_tuple_is_a_tuple(kind: str) -> None:
    class Parsed(NamedTuple):
        frame: bytes
        end: int

    def named(data: bytes, start: int) -> Any:
        end = data.find(b"\n", start)
        return None if end < 0 else Parsed(data[start:end], end + 1)

    with trio.fail_after(5):
        async with reading(kind, [b"a\nbc\n"]) as reads:
            assert await reads.receive_parsed(named) == [b"a", b"bc"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-5, ValueError), (1.5, TypeError)])
async def test_a_bad_max_frame_is_refused_before_anything_moves(
    kind: str, bad: Any, error: type[Exception]
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\n"]) as reads:
            with pytest.raises(error, match="max_frame"):
                await reads.receive_parsed(line, bad)
            assert source_of(reads).receives == 0
            assert await reads.receive_parsed(line) == [b"a"]


# ----------------------------------------------------------------------
# max_frame


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sizes", [[], [1], [7]], ids=["whole", "bytes", "pieces"])
async def test_a_frame_of_max_frame_bytes_passes_one_more_does_not(
    kind: str, sizes: list[int]
) -> None:
    ok = b"x" * 9 + b"\n"  # 10 bytes
    too_big = b"y" * 10 + b"\n"
    with trio.fail_after(5):
        async with reading(kind, cut(ok + ok + too_big, sizes)) as reads:
            frames: list[bytes] = []
            while len(frames) < 2:
                frames += await reads.receive_parsed(line, 10)
            with pytest.raises(FrameTooLargeError) as caught:
                await reads.receive_parsed(line, 10)
            assert frames == [b"x" * 9] * 2
            assert caught.value.max_frame == 10
            # The frame's bytes stay unread; never more than max_frame of them.
            assert reads.unread == min(caught.value.size, 11)
            assert reads.unread <= 11
            assert await reads.receive_line() == b"y" * 10


@pytest.mark.parametrize("kind", KINDS)
async def test_a_whole_frame_over_max_frame_already_buffered_raises_all_the_same(
    kind: str,
) -> None:
    with trio.fail_after(5):
        # receive_line received every byte: the long frame is complete in the buffer.
        async with reading(kind, [b"head\nok\n" + b"y" * 20 + b"\nz\n"]) as reads:
            assert await reads.receive_line() == b"head"
            assert await reads.receive_parsed(line, 10) == [b"ok"]
            with pytest.raises(FrameTooLargeError) as caught:
                await reads.receive_parsed(line, 10)
            assert caught.value.size == 21
            assert reads.unread == 23
            assert await reads.receive_parsed(line) == [b"y" * 20, b"z"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_peer_that_never_ends_a_frame_cannot_grow_the_buffer_past_max_frame(
    kind: str,
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"z" * 100_000]) as reads:
            with pytest.raises(FrameTooLargeError) as caught:
                await reads.receive_parsed(line, 1000)
            assert reads.unread == 1000
            assert caught.value.size == 1000
            assert "over max_frame=1000" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_size_over_max_frame_is_refused_before_the_frame_comes(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [prefixed(b"1234")[:3]]) as reads:
            with pytest.raises(FrameTooLargeError) as caught:
                await reads.receive_parsed(length_prefixed, 5)
            assert caught.value.size == 6
            assert reads.unread == 3


def test_the_default_max_frame_is_64_kib() -> None:
    assert DEFAULT_MAX_FRAME == 64 * 1024


# ----------------------------------------------------------------------
# Checkpoints, cancellation, one reader at a time, closing


@pytest.mark.parametrize("kind", KINDS)
async def test_frames_the_buffer_answers_do_not_yield_but_it_is_a_cancel_point(
    kind: str,
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"head\na\nb\nc"]) as reads:
            assert await reads.receive_line() == b"head"
            with trio.CancelScope() as scope:
                scope.cancel()
                await reads.receive_parsed(line)
            assert scope.cancelled_caught
            assert reads.unread == 5
            with trio.testing.assert_no_checkpoints():
                assert await reads.receive_parsed(line) == [b"a", b"b"]
            with trio.testing.assert_no_checkpoints(), pytest.raises(ValueError, match="bad"):
                await reads.receive_parsed(refusing)
            # It must receive: a full checkpoint.
            with trio.testing.assert_checkpoints(), pytest.raises(IncompleteReadError):
                await reads.receive_parsed(line)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "received"])
async def test_a_receive_parsed_started_inside_parse_is_a_busy_error(
    kind: str, buffered: bool
) -> None:
    # Driven by hand from inside *parse*, a second receive_parsed took the
    # frames the buffer already held, and the first returned them too.
    inner: list[object] = []

    async with reading(kind, [b"head\na\nb\n"]) as reads:

        def reentrant(data: bytes, start: int) -> tuple[bytes, int] | None:
            if not inner:
                coro = reads.receive_parsed(line)
                try:
                    coro.send(None)
                except BaseException as exc:  # StopIteration included
                    inner.append(exc)
                finally:
                    coro.close()
            return line(data, start)

        with trio.fail_after(5):
            if buffered:
                assert await reads.receive_line() == b"head"
                assert await reads.receive_parsed(reentrant) == [b"a", b"b"]
            else:
                assert await reads.receive_parsed(reentrant) == [b"head", b"a", b"b"]
            assert len(inner) == 1
            assert isinstance(inner[0], trio.BusyResourceError)
            assert await reads.receive_parsed(line) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("parse", "expected"),
    [(length_prefixed, [b"abcdef\r\n"]), (line, [b"\x00\x08abcdef\r"])],
    ids=["sized", "line"],
)
async def test_a_cancelled_receive_parsed_leaves_every_byte_for_the_next(
    kind: str, parse: Any, expected: list[bytes]
) -> None:
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_pair()
        reads = open_reads(kind, r)
        async with trio.open_nursery() as nursery:
            if isinstance(reads, BufferedStream):
                await nursery.start(reads.run)
            with trio.CancelScope() as scope:

                async def feed_then_cancel() -> None:
                    for piece in (b"\x00\x08", b"ab", b"cd"):
                        await s.send_all(piece)
                        await settle()
                    scope.cancel()

                nursery.start_soon(feed_then_cancel)
                await reads.receive_parsed(parse)
            assert scope.cancelled_caught
            assert reads.unread == 6
            await s.send_all(b"ef\r\nmore")
            assert await reads.receive_parsed(parse) == expected
            await reads.aclose()
            await s.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "second",
    [
        lambda r: r.receive_parsed(length_prefixed),
        lambda r: r.receive_some(),
        lambda r: r.receive_line(),
    ],
    ids=["parsed", "some", "line"],
)
async def test_a_second_reader_while_receive_parsed_waits_is_a_busy_error(
    kind: str, second: Callable[[Reads], Awaitable[object]]
) -> None:
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_pair()
        reads = open_reads(kind, r)
        got: list[bytes] = []

        async def first() -> None:
            got.extend(await reads.receive_parsed(length_prefixed))

        async with trio.open_nursery() as nursery:
            if isinstance(reads, BufferedStream):
                await nursery.start(reads.run)
            await s.send_all(b"\x00\x04ab")
            nursery.start_soon(first)
            await settle()
            with pytest.raises(trio.BusyResourceError, match="already receiving"):
                await second(reads)
            await s.send_all(b"cd")
            await settle()
            assert got == [b"abcd"]
            await reads.aclose()
            await s.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_receive_parsed_after_aclose_raises_closed(kind: str) -> None:
    with trio.fail_after(5):
        source = ChunkSource([b"a\nrest"])
        reads = open_reads(kind, source)
        async with trio.open_nursery() as nursery:
            if isinstance(reads, BufferedStream):
                await nursery.start(reads.run)
            assert await reads.receive_parsed(line) == [b"a"]
            await reads.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await reads.receive_parsed(line)
