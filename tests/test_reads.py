"""Reads for protocol code (_reader.py, _receive_buffer.py): receive_exactly,
receive_until, receive_line and a receive_some that serves the buffer first,
on BufferedReader and BufferedStream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import example, given
from hypothesis import strategies as st
from test_socket_fast_path import tcp_pair
from writer_testing import running, settle

from trio_bufwriter import (
    DEFAULT_MAX_LINE,
    BufferedReader,
    BufferedStream,
    DelimiterNotFoundError,
    FrameReader,
    IncompleteReadError,
)
from trio_bufwriter._receive_buffer import ReceiveBuffer


class ChunkSource(trio.abc.Stream):
    """A stream whose receives hand out *chunks* in order (each cut to the
    size asked for), then end-of-file; sends are kept in :attr:`sent`."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks = list(reversed(chunks))
        self.receives = 0
        self.sent = bytearray()
        self.closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise trio.ClosedResourceError
        self.receives += 1
        if not self.chunks:
            return b""
        chunk = self.chunks.pop()
        if max_bytes is not None and len(chunk) > max_bytes:
            self.chunks.append(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self.sent += data

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()  # pragma: no cover

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()


def cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """*data* in pieces of the given sizes (cycled), none empty."""
    chunks = []
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)] if sizes else len(data)
        chunks.append(data[position : position + size])
        position += size
        index += 1
    return chunks


Reads = BufferedReader | BufferedStream


@asynccontextmanager
async def reading(kind: str, chunks: Sequence[bytes]) -> AsyncIterator[Reads]:
    """A BufferedReader or a running BufferedStream over a ChunkSource."""
    source = ChunkSource(chunks)
    if kind == "reader":
        async with BufferedReader(source) as reader:
            yield reader
    else:
        stream = BufferedStream(source)
        async with running(stream):
            yield stream
            await stream.aclose()


KINDS = ["reader", "stream"]


# ----------------------------------------------------------------------
# The model: what each read returns, from the whole input at once


class Model:
    def __init__(self, data: bytes) -> None:
        self.rest = data

    def exactly(self, size: int) -> object:
        if len(self.rest) >= size:
            result, self.rest = self.rest[:size], self.rest[size:]
            return result
        partial, self.rest = self.rest, b""
        return ("incomplete", partial)

    def until(self, delimiter: bytes, max_bytes: int, strip_cr: bool = False) -> object:
        found = self.rest.find(delimiter)
        if 0 <= found <= max_bytes:
            result = self.rest[:found]
            self.rest = self.rest[found + len(delimiter) :]
            if strip_cr and result.endswith(b"\r"):
                result = result[:-1]
            return result
        if len(self.rest) >= max_bytes + len(delimiter):
            return ("not found", max_bytes + len(delimiter))
        partial, self.rest = self.rest, b""
        return ("incomplete", partial)


async def outcome(read: Awaitable[bytes]) -> object:
    try:
        return await read
    except IncompleteReadError as exc:
        return ("incomplete", exc.partial)
    except DelimiterNotFoundError as exc:
        return ("not found", exc.looked_at)


TOKENS = st.sampled_from([b"\n", b"\r\n", b"\r", b"--", b"abc", b"x", b"yz" * 5, b"\x00" * 17])
DELIMITERS = st.sampled_from([b"\n", b"--", b"abc", b"\r\n", b"-"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("exactly"), st.integers(0, 40)),
        st.tuples(st.just("until"), DELIMITERS, st.integers(0, 40)),
        st.tuples(st.just("line"), st.integers(0, 40)),
        st.tuples(st.just("some"), st.integers(1, 30)),
    ),
    max_size=25,
)


async def run_against_model(
    kind: str, data: bytes, sizes: list[int], operations: list[Any]
) -> None:
    model = Model(data)
    with trio.fail_after(10):
        async with reading(kind, cut(data, sizes)) as reader:
            for operation in operations:
                if operation[0] == "exactly":
                    got = await outcome(reader.receive_exactly(operation[1]))
                    assert got == model.exactly(operation[1]), operation
                elif operation[0] == "until":
                    got = await outcome(reader.receive_until(operation[1], operation[2]))
                    assert got == model.until(operation[1], operation[2]), operation
                elif operation[0] == "line":
                    got = await outcome(reader.receive_line(operation[1]))
                    assert got == model.until(b"\n", operation[1], strip_cr=True), operation
                else:
                    # How much receive_some returns depends on the chunks: a
                    # prefix of what is left, of at most max_bytes, and at
                    # least one byte unless the input is all read.
                    some = bytes(await reader.receive_some(operation[1]))
                    assert model.rest.startswith(some)
                    assert len(some) <= operation[1]
                    assert some or not model.rest
                    model.rest = model.rest[len(some) :]
            # Whatever is left comes out, in order, then end-of-file.
            left = bytearray()
            while chunk := await reader.receive_some():
                left += chunk
            assert left == model.rest
            assert await reader.receive_some() == b""


@pytest.mark.parametrize("kind", KINDS)
@given(
    data=st.lists(TOKENS, max_size=30).map(b"".join),
    sizes=st.lists(st.integers(1, 20), max_size=6),
    operations=OPERATIONS,
)
@example(
    # A delimiter cut across pieces, a big line in small pieces.
    data=b"ab" + b"x" * 30 + b"-" + b"-abc\r\n",
    sizes=[1, 2, 3],
    operations=[("exactly", 2), ("until", b"--", 40), ("line", 5)],
)
def test_any_chunking_gives_the_results_of_the_whole_input(
    kind: str, data: bytes, sizes: list[int], operations: list[Any]
) -> None:
    trio.run(run_against_model, kind, data, sizes, operations)


@given(
    data=st.lists(TOKENS, max_size=30).map(b"".join),
    sizes=st.lists(st.integers(1, 20), max_size=6),
    operations=OPERATIONS,
)
def test_the_buffer_gives_the_results_of_the_whole_input_whatever_was_fed(
    data: bytes, sizes: list[int], operations: list[Any]
) -> None:
    # The sans-IO buffer alone, fed everything up front (so its grown
    # bytearray, for pieces fed behind a bigger unread head, is exercised too).
    model = Model(data)
    buffer = ReceiveBuffer()
    for chunk in cut(data, sorted(sizes, reverse=True)):
        buffer.feed(chunk)
    for operation in operations:
        if operation[0] == "exactly":
            got = buffer.take_exactly(operation[1])
            expected = model.exactly(operation[1])
            if got is None:
                assert expected == ("incomplete", buffer.take_all())
            else:
                assert got == expected
        elif operation[0] in ("until", "line"):
            delimiter, max_bytes = (
                (b"\n", operation[1]) if operation[0] == "line" else operation[1:]
            )
            expected = model.until(delimiter, max_bytes, strip_cr=operation[0] == "line")
            got_or_error: object
            try:
                if operation[0] == "line":
                    got_or_error = buffer.take_line(max_bytes)
                else:
                    got_or_error = buffer.take_until(delimiter, max_bytes, 0, False)
            except DelimiterNotFoundError as exc:
                got_or_error = ("not found", exc.looked_at)
            if got_or_error is None:
                assert expected == ("incomplete", buffer.take_all())
            else:
                assert got_or_error == expected
        else:
            some = bytes(buffer.take_some(operation[1]))
            assert model.rest.startswith(some)
            model.rest = model.rest[len(some) :]
        assert len(buffer) == len(model.rest)


def test_a_crlf_cut_between_two_pieces_of_a_growing_line_is_one_line_ending() -> None:
    buffer = ReceiveBuffer()
    buffer.feed(bytearray(b"x" * 10))
    assert buffer.take_line(100) is None
    buffer.feed(b"\r")  # behind a bigger head: appended to a bytearray
    assert buffer.take_until(b"\n", 100, buffer.searched, True) is None
    buffer.feed(b"\n")
    buffer.feed(b"next")
    assert buffer.take_until(b"\n", 100, buffer.searched, True) == b"x" * 10
    assert buffer.take_all() == b"next"


# ----------------------------------------------------------------------
# The reads, one by one


@pytest.mark.parametrize("kind", KINDS)
async def test_one_receive_serves_many_small_reads(kind: str) -> None:
    data = b"".join(b"line %d\r\n" % i for i in range(1000))
    with trio.fail_after(5):
        async with reading(kind, [data]) as reader:
            source = reader.transport_stream
            assert isinstance(source, ChunkSource)
            for i in range(1000):
                assert await reader.receive_line() == b"line %d" % i
            assert source.receives == 1
            assert reader.unread == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_receive_line_takes_lf_and_crlf_and_keeps_other_crs(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\r\nb\nc\r\r\n\r\n\n\rd\n"]) as reader:
            lines = [await reader.receive_line() for _ in range(6)]
    assert lines == [b"a", b"b", b"c\r", b"", b"", b"\rd"]


@pytest.mark.parametrize("kind", KINDS)
async def test_receive_some_serves_the_buffer_first_then_the_stream(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"head\nbody", b"more"]) as reader:
            assert await reader.receive_line() == b"head"
            assert reader.unread == 4
            with trio.testing.assert_checkpoints():
                assert await reader.receive_some(2) == b"bo"
            assert await reader.receive_some() == b"dy"
            assert await reader.receive_some() == b"more"
            assert await reader.receive_some() == b""
            assert await reader.receive_some() == b""


@pytest.mark.parametrize("kind", KINDS)
async def test_a_read_the_buffer_answers_does_not_yield_but_is_a_cancel_point(
    kind: str,
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"12345678\n--"]) as reader:
            with trio.testing.assert_checkpoints():
                assert await reader.receive_exactly(2) == b"12"
            with trio.testing.assert_no_checkpoints():
                assert await reader.receive_exactly(2) == b"34"
                assert await reader.receive_until(b"6") == b"5"
                assert await reader.receive_line() == b"78"
            for read in (
                lambda: reader.receive_exactly(1),
                lambda: reader.receive_until(b"-"),
                lambda: reader.receive_line(),
            ):
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await read()
                assert scope.cancelled_caught
            assert reader.unread == 2
            assert await reader.receive_until(b"--") == b""


@pytest.mark.parametrize("kind", KINDS)
async def test_receive_until_with_a_long_delimiter_cut_across_pieces(kind: str) -> None:
    body = b"x" * 5000
    data = body + b"\r\n\r\n" + b"rest"
    with trio.fail_after(5):
        async with reading(kind, cut(data, [7, 1, 2, 1500])) as reader:
            assert await reader.receive_until(b"\r\n\r\n", 10_000) == body
            assert await reader.receive_exactly(4) == b"rest"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_big_line_in_small_pieces_is_searched_once(kind: str) -> None:
    line = bytes(range(11, 256)) * 4096  # 1 MiB less a little, no b"\n"
    data = line + b"\r\n" + b"next\n"
    with trio.fail_after(10):
        async with reading(kind, cut(data, [1500])) as reader:
            assert await reader.receive_line(len(line) + 1) == line
            assert await reader.receive_line() == b"next"


@pytest.mark.parametrize("kind", KINDS)
async def test_receive_exactly_of_a_big_frame_in_small_pieces(kind: str) -> None:
    frame = bytes(range(256)) * 4096
    data = b"ab" + frame + b"cd"
    with trio.fail_after(10):
        async with reading(kind, cut(data, [1500, 3])) as reader:
            assert await reader.receive_exactly(2) == b"ab"
            assert await reader.receive_exactly(len(frame)) == frame
            assert await reader.receive_exactly(2) == b"cd"
            assert await reader.receive_exactly(0) == b""


# ----------------------------------------------------------------------
# Limits and end-of-file


@pytest.mark.parametrize("kind", KINDS)
async def test_a_line_over_the_limit_raises_and_leaves_the_bytes(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, cut(b"x" * 100 + b"\nok\n", [30])) as reader:
            with pytest.raises(DelimiterNotFoundError) as info:
                await reader.receive_line(50)
            assert info.value.looked_at == 51
            assert info.value.max_bytes == 50
            assert info.value.delimiter == b"\n"
            assert str(info.value) == (
                "more than max_bytes=50 bytes without a b'\\n' (the limit on what may "
                "come before it; 51 bytes searched); they are left in the buffer"
            )
            assert reader.unread >= 51
            # The bytes are still there: a bigger limit reads the line.
            assert await reader.receive_line(100) == b"x" * 100
            assert await reader.receive_line() == b"ok"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_delimiter_exactly_at_the_limit_is_found(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, cut(b"x" * 10 + b"--" + b"y" * 11 + b"--", [3])) as reader:
            assert await reader.receive_until(b"--", 10) == b"x" * 10
            with pytest.raises(DelimiterNotFoundError):
                await reader.receive_until(b"--", 10)
            assert await reader.receive_until(b"--", 11) == b"y" * 11


async def test_the_default_limit_stops_a_peer_that_never_ends_its_line() -> None:
    with trio.fail_after(5):
        async with reading("reader", cut(b"z" * (DEFAULT_MAX_LINE + 10), [4096])) as reader:
            with pytest.raises(DelimiterNotFoundError) as info:
                await reader.receive_line()
            assert info.value.looked_at == DEFAULT_MAX_LINE + 1
            # It stopped receiving after one receive past the limit.
            assert reader.unread < DEFAULT_MAX_LINE + 4096 + 1


@pytest.mark.parametrize("kind", KINDS)
async def test_end_of_file_in_the_middle_raises_with_the_partial_bytes(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"ab", b"cd"]) as reader:
            with pytest.raises(IncompleteReadError) as info:
                await reader.receive_exactly(10)
            assert info.value.partial == b"abcd"
            assert info.value.expected == 10
            assert isinstance(info.value, EOFError)
            assert "after 4 bytes, waiting for 10 bytes" in str(info.value)
            # The stream is at its end: reads behave as trio's receive_some.
            assert await reader.receive_some() == b""
            with pytest.raises(IncompleteReadError) as info:
                await reader.receive_line()
            assert info.value.partial == b""
            assert info.value.expected is None


@pytest.mark.parametrize("kind", KINDS)
async def test_end_of_file_before_a_delimiter_raises_with_the_partial_line(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"one\ntwo"]) as reader:
            assert await reader.receive_line() == b"one"
            with pytest.raises(IncompleteReadError) as info:
                await reader.receive_until(b"\n")
            assert info.value.partial == b"two"
            assert await reader.receive_some() == b""


async def test_bad_arguments_are_value_errors() -> None:
    with trio.fail_after(5):
        async with reading("reader", [b"abc"]) as reader:
            with pytest.raises(ValueError, match="size"):
                await reader.receive_exactly(-1)
            with pytest.raises(ValueError, match="delimiter"):
                await reader.receive_until(b"")
            with pytest.raises(ValueError, match="max_bytes"):
                await reader.receive_until(b"\n", -1)
            with pytest.raises(ValueError, match="max_bytes"):
                await reader.receive_line(-1)
            assert await reader.receive_exactly(1) == b"a"
            with pytest.raises(ValueError, match="max_bytes"):
                await reader.receive_some(0)
            assert await reader.receive_until(bytearray(b"c"), 5) == b"b"


def test_a_reader_wraps_only_receive_streams() -> None:
    with pytest.raises(TypeError, match="ReceiveStream"):
        BufferedReader(b"not a stream")  # type: ignore[arg-type]


# ----------------------------------------------------------------------
# One reader at a time, and cancellation


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "second",
    [
        lambda r: r.receive_some(),
        lambda r: r.receive_exactly(1),
        lambda r: r.receive_until(b"-"),
        lambda r: r.receive_line(),
        lambda r: r.receive_frames(FrameReader.read_line),
    ],
    ids=["some", "exactly", "until", "line", "frames"],
)
async def test_a_second_reader_is_a_busy_error(
    kind: str, second: Callable[[Reads], Awaitable[object]]
) -> None:
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_pair()
        reader: Reads = BufferedReader(r) if kind == "reader" else BufferedStream(r)
        async with trio.open_nursery() as nursery:
            if isinstance(reader, BufferedStream):
                await nursery.start(reader.run)
            await s.send_all(b"x-")
            nursery.start_soon(reader.receive_exactly, 10)
            await settle()
            with pytest.raises(trio.BusyResourceError, match="already receiving"):
                await second(reader)
            await s.send_all(b"12345678")
            await settle()
            assert reader.unread == 0
            await reader.aclose()
            await s.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (lambda r: r.receive_exactly(10), b"0123456789"),
        (lambda r: r.receive_until(b"--"), b"0123456789"),
        (lambda r: r.receive_line(), b"0123456789--"),
    ],
    ids=["exactly", "until", "line"],
)
async def test_a_cancelled_read_leaves_what_it_had_received_for_the_next(
    kind: str, read: Callable[[Reads], Awaitable[bytes]], expected: bytes
) -> None:
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_pair()
        reader: Reads = BufferedReader(r) if kind == "reader" else BufferedStream(r)
        async with trio.open_nursery() as nursery:
            if isinstance(reader, BufferedStream):
                await nursery.start(reader.run)
            with trio.CancelScope() as scope:
                nursery.start_soon(s.send_all, b"0123")
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(lambda: s.send_all(b"45"))

                async def cancel_when_blocked() -> None:
                    await settle()
                    scope.cancel()

                nursery.start_soon(cancel_when_blocked)
                await read(reader)
            assert scope.cancelled_caught
            assert reader.unread == 6
            await s.send_all(b"6789--\n")
            assert await read(reader) == expected
            await reader.aclose()
            await s.aclose()


async def test_a_cancelled_read_in_the_middle_of_a_big_line_loses_nothing() -> None:
    # Cancelled while the line is arriving in pieces behind a big head, then
    # read again from the start of the line.
    line = b"y" * 50_000
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_one_way_pair()
        reader = BufferedReader(r)
        for piece in cut(line[:30_000], [20_000, 1500]):
            await s.send_all(piece)
            with trio.move_on_after(0) as scope:
                await reader.receive_line(100_000)
            assert scope.cancelled_caught or reader.unread
        async with trio.open_nursery() as nursery:
            nursery.start_soon(s.send_all, line[30_000:] + b"\r\n")
            assert await reader.receive_until(b"\r\n", 100_000) == line
        await reader.aclose()


# ----------------------------------------------------------------------
# Closing


@pytest.mark.parametrize("kind", KINDS)
async def test_reads_after_aclose_raise_closed_and_the_buffer_is_discarded(kind: str) -> None:
    with trio.fail_after(5):
        source = ChunkSource([b"a\nrest"])
        reader: Reads = BufferedReader(source) if kind == "reader" else BufferedStream(source)
        async with trio.open_nursery() as nursery:
            if isinstance(reader, BufferedStream):
                await nursery.start(reader.run)
            assert await reader.receive_line() == b"a"
            assert reader.unread == 4
            await reader.aclose()
            assert reader.unread == 0
            assert source.closed
            with pytest.raises(trio.ClosedResourceError):
                await reader.receive_some()
            with pytest.raises(trio.ClosedResourceError):
                await reader.receive_line()


async def test_buffered_reader_is_a_conforming_one_way_stream() -> None:
    with trio.fail_after(10):

        async def maker() -> tuple[trio.abc.SendStream, BufferedReader]:
            s, r = trio.testing.memory_stream_one_way_pair()
            return s, BufferedReader(r)

        async def clogged_maker() -> tuple[trio.abc.SendStream, BufferedReader]:
            s, r = trio.testing.lockstep_stream_one_way_pair()
            return s, BufferedReader(r)

        await trio.testing.check_one_way_stream(maker, clogged_maker)


# ----------------------------------------------------------------------
# Over a socket: the reads receive through the turn policy (_stream.py)


async def test_a_read_that_must_receive_ends_the_turn_one_the_buffer_answers_does_not() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            stream = BufferedStream(client)
            async with running(stream):
                await settle()
                await server.send_all(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n")
                # Two pipelined commands, parsed from one receive: their
                # replies leave together, when the reads need the socket.
                for _ in range(2):
                    assert await stream.receive_line() == b"*1"
                    assert await stream.receive_line() == b"$4"
                    assert await stream.receive_exactly(6) == b"PING\r\n"
                    stream.write(b"+PONG\r\n")
                calls = stream.statistics().send_calls
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(stream.receive_line)
                    got = b""
                    while len(got) < 14:
                        got += await server.receive_some()
                    assert got == b"+PONG\r\n+PONG\r\n"
                    await server.send_all(b"bye\r\n")
                assert stream.statistics().send_calls - calls <= 1


async def test_a_tcp_peer_that_closes_mid_frame_gives_the_partial_frame() -> None:
    with trio.fail_after(5):
        async with tcp_pair() as (client, server):
            stream = BufferedStream(client)
            async with running(stream):
                await server.send_all(b"\x00\x00\x00\x10half")
                await server.send_eof()
                assert await stream.receive_exactly(4) == b"\x00\x00\x00\x10"
                with pytest.raises(IncompleteReadError) as info:
                    await stream.receive_exactly(16)
                assert info.value.partial == b"half"
                assert await stream.receive_some() == b""


def test_the_buffer_never_changes_a_chunk_it_was_fed() -> None:
    # A receive's result belongs to whoever got it back from receive_some
    # too: a big message grows a bytearray of the buffer's own.
    chunk = bytearray(b"abcdef")
    buffer = ReceiveBuffer()
    buffer.feed(chunk)
    buffer.feed(b"g")
    buffer.feed(b"h")
    assert chunk == b"abcdef"
    assert buffer.take_all() == b"abcdefgh"


async def test_a_read_that_receives_with_nothing_unread_lets_go_of_a_big_messages_buffer() -> None:
    big = b"x" * 100_000 + b"\n"
    async with reading("reader", cut(big, [1500])) as reads:
        assert await reads.receive_line(len(big)) == big[:-1]
        assert len(reads._rbuf.data) >= len(big)  # (the bytearray it grew)
        assert await reads.receive_some() == b""  # (it receives end-of-file)
        assert reads._rbuf.data == b""
