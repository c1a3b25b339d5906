"""receive_frames(decode) and FrameReader (_frames.py, _reader.py): a
synchronous decoder run over the receive buffer, frame after frame, on
BufferedReader and BufferedStream."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import example, given
from hypothesis import strategies as st
from test_reads import KINDS, ChunkSource, Reads, cut, reading
from writer_testing import settle

from trio_bufwriter import (
    BufferedReader,
    BufferedStream,
    DelimiterNotFoundError,
    FrameReader,
    IncompleteReadError,
)

# ----------------------------------------------------------------------
# Decoders


def length_prefixed(reader: FrameReader) -> bytes:
    """A frame: a 2-byte big-endian length, then that many bytes."""
    size = int.from_bytes(reader.read_exactly(2), "big")
    return reader.read_exactly(size)


def prefixed(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def source_of(reads: Reads) -> ChunkSource:
    source = reads.transport_stream
    assert isinstance(source, ChunkSource)
    return source


def open_reads(kind: str, stream: trio.abc.Stream) -> Reads:
    return BufferedReader(stream) if kind == "reader" else BufferedStream(stream)


# ----------------------------------------------------------------------
# The model: any chunking gives the frames of the whole input
#
# A frame is a tag byte, then:
#   L  a line (LF, or CRLF)                   read_line
#   X  a 2-byte length and that many bytes    read_exactly
#   U  bytes up to b"--"                      read_until
#   H  a decimal length line, then the bytes  read_line, then read_exactly
#   M  a line, then bytes up to b"\r\n\r\n"   read_line, then read_until

MAX = 1000

PIECES = st.lists(st.sampled_from([b"a", b"\r", b"\n", b"-", b"xyz", b"\x00" * 7])).map(b"".join)


def mixed(reader: FrameReader) -> tuple[Any, ...]:
    tag = reader.read_exactly(1)
    if tag == b"L":
        return ("line", reader.read_line(MAX))
    if tag == b"X":
        return ("exact", reader.read_exactly(int.from_bytes(reader.read_exactly(2), "big")))
    if tag == b"U":
        return ("until", reader.read_until(b"--", MAX))
    if tag == b"H":
        return ("chunk", reader.read_exactly(int(reader.read_line(MAX))))
    if tag == b"M":
        return ("head", reader.read_line(MAX), reader.read_until(b"\r\n\r\n", MAX))
    raise ValueError(f"unknown tag {tag!r}")


def first_is_at_end(data: bytes, delimiter: bytes) -> bool:
    """*delimiter* after *data* is the first one in them."""
    return (data + delimiter).find(delimiter) == len(data)


@st.composite
def frames(draw: st.DrawFn) -> tuple[tuple[Any, ...], bytes]:
    """(the decoded frame, its bytes)."""
    tag = draw(st.sampled_from("LXUHM"))
    if tag == "L":
        line = draw(PIECES.filter(lambda b: b"\n" not in b))
        ending = b"\r\n" if line.endswith(b"\r") else draw(st.sampled_from([b"\n", b"\r\n"]))
        return ("line", line), b"L" + line + ending
    if tag == "X":
        payload = draw(PIECES)
        return ("exact", payload), b"X" + prefixed(payload)
    if tag == "U":
        data = draw(PIECES.filter(lambda b: first_is_at_end(b, b"--")))
        return ("until", data), b"U" + data + b"--"
    if tag == "H":
        payload = draw(PIECES)
        return ("chunk", payload), b"H%d\r\n" % len(payload) + payload
    line = draw(PIECES.filter(lambda b: b"\n" not in b and not b.endswith(b"\r")))
    body = draw(PIECES.filter(lambda b: first_is_at_end(b, b"\r\n\r\n")))
    return ("head", line, body), b"M" + line + b"\n" + body + b"\r\n\r\n"


async def all_frames(reads: Reads, decode: Callable[[FrameReader], Any]) -> tuple[list[Any], Any]:
    """Every frame until end-of-file, and how it ended: "eof", or the
    partial bytes of an IncompleteReadError."""
    got: list[Any] = []
    while True:
        try:
            batch = await reads.receive_frames(decode)
        except IncompleteReadError as exc:
            return got, exc.partial
        if not batch:
            return got, "eof"
        got += batch


async def run_frames_against_model(
    kind: str, encoded: list[tuple[tuple[Any, ...], bytes]], sizes: list[int], drop: int
) -> None:
    data = b"".join(frame for _, frame in encoded)
    end = max(len(data) - drop, 0)
    # What the whole input gives: the frames before `end`, and the bytes of
    # the one it cuts, if it cuts one.
    expected: list[Any] = []
    position = 0
    for decoded, frame in encoded:
        if position + len(frame) > end:
            break
        expected.append(decoded)
        position += len(frame)
    ending: Any = data[position:end] if position < end else "eof"
    data = data[:end]
    with trio.fail_after(10):
        # The whole input at once: every complete frame, from one call.
        async with reading(kind, [data] if data else []) as reads:
            if expected:
                assert await reads.receive_frames(mixed) == expected
                assert source_of(reads).receives == 1
            assert await all_frames(reads, mixed) == ([], ending)
            # After the end, the end again.
            assert await reads.receive_frames(mixed) == []
            assert reads.unread == 0
        # In pieces: the same frames.
        async with reading(kind, cut(data, sizes)) as reads:
            got, got_ending = await all_frames(reads, mixed)
            assert await reads.receive_frames(mixed) == []
            assert await reads.receive_some() == b""
        assert got == expected
        assert got_ending == ending


@pytest.mark.parametrize("kind", KINDS)
@given(
    encoded=st.lists(frames(), max_size=12),
    sizes=st.lists(st.integers(1, 20), max_size=6),
    drop=st.one_of(st.just(0), st.integers(1, 8)),
)
@example(
    # Each kind of frame, in 1-byte pieces, the input cut in the last frame.
    encoded=[
        (("line", b"a\r"), b"La\r\r\n"),
        (("chunk", b"xyz"), b"H3\r\nxyz"),
        (("head", b"h", b"a\r\n\r"), b"Mh\na\r\n\r\r\n\r\n"),
        (("until", b"a-a"), b"Ua-a--"),
        (("exact", b"12"), b"X\x00\x0212"),
    ],
    sizes=[1],
    drop=1,
)
def test_any_chunking_gives_the_frames_of_the_whole_input(
    kind: str, encoded: list[tuple[tuple[Any, ...], bytes]], sizes: list[int], drop: int
) -> None:
    trio.run(run_frames_against_model, kind, encoded, sizes, drop)


# ----------------------------------------------------------------------
# Frames, one call at a time


@pytest.mark.parametrize("kind", KINDS)
async def test_pipelined_frames_come_back_from_one_call_and_one_receive(kind: str) -> None:
    payloads = [b"frame %d" % i for i in range(1000)]
    with trio.fail_after(5):
        async with reading(kind, [b"".join(map(prefixed, payloads))]) as reads:
            assert await reads.receive_frames(length_prefixed) == payloads
            assert source_of(reads).receives == 1
            assert reads.unread == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_the_frames_already_buffered_come_back_without_receiving(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"head\na\nb\r\nc", b"\n"]) as reads:
            assert await reads.receive_line() == b"head"
            # Only the complete frames: the partial one waits for the next call.
            assert await reads.receive_frames(FrameReader.read_line) == [b"a", b"b"]
            assert source_of(reads).receives == 1
            assert reads.unread == 1
            assert await reads.receive_frames(FrameReader.read_line) == [b"c"]
            assert source_of(reads).receives == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_a_length_prefixed_frame_cut_across_receives_is_decoded_whole(kind: str) -> None:
    payloads = [b"x" * 300, b"", b"yz"]
    data = b"".join(map(prefixed, payloads))
    headers: list[bytes] = []

    def decode(reader: FrameReader) -> bytes:
        header = reader.read_exactly(2)
        headers.append(header)
        return reader.read_exactly(int.from_bytes(header, "big"))

    with trio.fail_after(5):
        async with reading(kind, cut(data, [1, 7, 50])) as reads:
            got = []
            while batch := await reads.receive_frames(decode):
                got += batch
            assert got == payloads
    # Every attempt started at a frame's first byte: its header.
    assert set(headers) == {prefixed(p)[:2] for p in payloads}
    assert len(headers) > len(payloads)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_line_frame_cut_across_receives_is_decoded_whole(kind: str) -> None:
    # A request line and a header block, cut everywhere.
    request = b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n"
    starts: list[bytes] = []

    def decode(reader: FrameReader) -> tuple[bytes, list[bytes]]:
        line = reader.read_line()
        starts.append(line[:3])
        headers = []
        while header := reader.read_line():
            headers.append(header)
        return line, headers

    with trio.fail_after(5):
        async with reading(kind, cut(request * 2, [1, 2, 5])) as reads:
            got = []
            while batch := await reads.receive_frames(decode):
                got += batch
    assert got == [(b"GET / HTTP/1.1", [b"Host: x", b"A: b"])] * 2
    assert set(starts) == {b"GET"}


@pytest.mark.parametrize("kind", KINDS)
async def test_read_line_itself_is_a_decoder(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\r\nb\nc\r\r\n\r\n", b"\n\rd", b"\n"]) as reads:
            assert await reads.receive_frames(FrameReader.read_line) == [b"a", b"b", b"c\r", b""]
            assert await reads.receive_frames(FrameReader.read_line) == [b""]
            assert await reads.receive_frames(FrameReader.read_line) == [b"\rd"]
            assert await reads.receive_frames(FrameReader.read_line) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_decoder_may_raise_would_block_itself(kind: str) -> None:
    calls: list[int] = []

    def decode(reader: FrameReader) -> bytes:
        calls.append(reader.unread)
        if reader.unread < 2:
            raise trio.WouldBlock
        size = int.from_bytes(reader.read_exactly(2), "big")
        if reader.unread < size:
            raise trio.WouldBlock  # (the 2 bytes it read are put back)
        return reader.read_exactly(size)

    with trio.fail_after(5):
        async with reading(kind, [b"\x00", b"\x03a", b"bc\x00"]) as reads:
            assert await reads.receive_frames(decode) == [b"abc"]
            assert calls == [1, 3, 6, 1]
            assert reads.unread == 1
            with pytest.raises(IncompleteReadError) as info:
                await reads.receive_frames(decode)
            assert info.value.partial == b"\x00"


async def test_frames_are_bytes_whatever_the_chunks_are() -> None:
    # A wrapped stream may hand out bytearrays; a big frame grows one.
    big = bytes(range(256)) * 1000
    data = prefixed(b"ab") + b"\x01" + len(big).to_bytes(3, "big") + big

    def decode(reader: FrameReader) -> bytes:
        if reader.read_exactly(1) == b"\x00":
            return reader.read_exactly(reader.read_exactly(1)[0])
        return reader.read_exactly(int.from_bytes(reader.read_exactly(3), "big"))

    chunks: list[Any] = [bytearray(c) for c in cut(data, [1500])]
    with trio.fail_after(5):
        async with reading("reader", chunks) as reads:
            got = []
            while batch := await reads.receive_frames(decode):
                got += batch
    assert got == [b"ab", big]
    assert [type(frame) for frame in got] == [bytes, bytes]


# ----------------------------------------------------------------------
# The line search that ran out resumes where it stopped


@pytest.mark.parametrize("kind", KINDS)
async def test_a_big_line_in_small_pieces_is_searched_once(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = bytes(range(11, 256)) * 4096  # 1 MiB less a little, no b"\n"
    data = line + b"\r\n" + b"next\n"
    # Per attempt at the line: the bytes there were, and where the search began.
    attempts: list[list[int]] = []
    resumed = FrameReader._resumed

    def spy(reader: FrameReader, delimiter: bytes) -> int:
        start = resumed(reader, delimiter)
        attempts[-1][1] = start
        return start

    monkeypatch.setattr(FrameReader, "_resumed", spy)

    def decode(reader: FrameReader) -> bytes:
        attempts.append([reader.unread, 0])
        return reader.read_line(len(line) + 1)

    with trio.fail_after(10):
        async with reading(kind, cut(data, [1500])) as reads:
            got = await reads.receive_frames(decode)
            assert got[0] == line
            assert got[1:] in ([], [b"next"])
    big = attempts[: len(attempts) - len(got) + 1]
    assert len(big) == (len(line) + 1) // 1500 + 1
    # Each attempt searched only the bytes the last one had not seen...
    for (before, _), (_, start) in itertools.pairwise(big):
        assert start == before
    # ...so the whole line was searched once, not once per piece.
    assert sum(unread - start for unread, start in big) < len(line) + 1500


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("split", range(1, 4))
async def test_read_until_finds_a_long_delimiter_cut_across_pieces(kind: str, split: int) -> None:
    body = b"x\r\n\r" * 50  # false starts, with no b"\r\n\r\n"
    data = body + b"\r\n\r\n" + b"rest--"
    pieces = [data[: len(body) + split], *cut(data[len(body) + split :], [1])]

    def decode(reader: FrameReader) -> bytes:
        return reader.read_until(b"\r\n\r\n" if reader.read_exactly(1) == b"x" else b"--")

    with trio.fail_after(5):
        async with reading(kind, [*cut(pieces[0], [7, 1, 2, 30]), *pieces[1:]]) as reads:
            assert await reads.receive_frames(decode) == [body[1:]]
            assert await reads.receive_frames(decode) == [b"est"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_search_resumes_only_for_the_same_delimiter_at_the_same_place(kind: str) -> None:
    # A decoder whose reads depend on how much is there: the search it left
    # was for another delimiter, or at another place in the frame, and the
    # line ending is in what that search had covered.
    def other_delimiter(reader: FrameReader) -> bytes:
        if reader.unread < 4:
            return reader.read_until(b"--")
        return reader.read_line()

    def other_place(reader: FrameReader) -> bytes:
        if reader.unread >= 4:
            reader.read_exactly(1)
        return reader.read_line()

    with trio.fail_after(5):
        async with reading(kind, [b"\nab", b"c"]) as reads:
            assert await reads.receive_frames(other_delimiter) == [b""]
        async with reading(kind, [b"abc", b"\nxy"]) as reads:
            assert await reads.receive_frames(other_place) == [b"bc"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_read_between_two_calls_does_not_confuse_the_line_search(kind: str) -> None:
    # The first call's search for the end of b"xyz..." must not be resumed
    # by the next call, whose frame starts elsewhere: the next line ending
    # there is within what that search had covered.
    with trio.fail_after(5):
        async with reading(kind, [b"A\nxyz", b"w\nb\nc\n"]) as reads:
            assert await reads.receive_frames(FrameReader.read_line) == [b"A"]
            assert await reads.receive_exactly(4) == b"xyzw"
            assert await reads.receive_frames(FrameReader.read_line) == [b"", b"b", b"c"]


# ----------------------------------------------------------------------
# End-of-file


@pytest.mark.parametrize("kind", KINDS)
async def test_a_clean_end_of_file_gives_no_frames_every_time(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [prefixed(b"one")]) as reads:
            assert await reads.receive_frames(length_prefixed) == [b"one"]
            for receives in (2, 3):
                assert await reads.receive_frames(length_prefixed) == []
                assert source_of(reads).receives == receives


@pytest.mark.parametrize("kind", KINDS)
async def test_end_of_file_in_a_frame_raises_with_the_frames_bytes(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [prefixed(b"one") + b"\x00\x09par", b"tial"]) as reads:
            assert await reads.receive_frames(length_prefixed) == [b"one"]
            with pytest.raises(IncompleteReadError) as info:
                await reads.receive_frames(length_prefixed)
            assert info.value.partial == b"\x00\x09partial"
            assert info.value.expected is None
            assert "after 9 bytes, waiting for the rest of a frame" in str(info.value)
            # The stream is at its end.
            assert reads.unread == 0
            assert await reads.receive_frames(length_prefixed) == []


# ----------------------------------------------------------------------
# Errors from the decoder


class BadFrame(Exception):
    pass


def refusing(bad: bytes) -> Callable[[FrameReader], bytes]:
    """read_line, raising BadFrame for the line *bad*."""

    def decode(reader: FrameReader) -> bytes:
        line = reader.read_line()
        if line == bad:
            raise BadFrame(line)
        return line

    return decode


@pytest.mark.parametrize("kind", KINDS)
async def test_an_error_after_frames_comes_at_the_next_call_with_the_bytes_unread(
    kind: str,
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a\nb\nbad\nc\n"]) as reads:
            decode = refusing(b"bad")
            assert await reads.receive_frames(decode) == [b"a", b"b"]
            assert reads.unread == 6
            with pytest.raises(BadFrame):
                await reads.receive_frames(decode)
            assert reads.unread == 6
            # Again, from the buffer: the bytes are still there.
            with pytest.raises(BadFrame):
                await reads.receive_frames(decode)
            assert await reads.receive_some() == b"bad\nc\n"


@pytest.mark.parametrize("kind", KINDS)
async def test_an_error_after_frames_it_received_for_comes_at_the_next_call(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"a", b"\nbad\nc\n"]) as reads:
            decode = refusing(b"bad")
            assert await reads.receive_frames(decode) == [b"a"]
            with pytest.raises(BadFrame):
                await reads.receive_frames(decode)
            assert await reads.receive_line() == b"bad"
            assert await reads.receive_frames(decode) == [b"c"]


# Each test below runs twice: decoding what is buffered already (behind a
# line read first), and decoding after receiving (the first call's first
# frame is cut, and one receive completes it and brings the rest).
AHEAD = ["buffered", "received"]


def ahead(where: str, data: bytes, cut_at: int) -> list[bytes]:
    if where == "buffered":
        return [b"ahead\n" + data]
    return [b"ahead\n", data[:cut_at], data[cut_at:]]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", AHEAD)
async def test_an_error_on_the_first_frame_propagates_with_the_bytes_unread(
    kind: str, where: str
) -> None:
    with trio.fail_after(5):
        async with reading(kind, ahead(where, b"bad\nc\n", 2)) as reads:
            assert await reads.receive_line() == b"ahead"
            with pytest.raises(BadFrame):
                await reads.receive_frames(refusing(b"bad"))
            assert reads.unread == 6
            assert await reads.receive_frames(FrameReader.read_line) == [b"bad", b"c"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", AHEAD)
async def test_a_base_exception_propagates_at_once_with_every_byte_unread(
    kind: str, where: str
) -> None:
    interrupted: list[bytes] = []

    def decode(reader: FrameReader) -> bytes:
        line = reader.read_line()
        if line == b"b" and not interrupted:
            interrupted.append(line)
            raise KeyboardInterrupt
        return line

    with trio.fail_after(5):
        async with reading(kind, ahead(where, b"a\nb\nc\n", 1)) as reads:
            assert await reads.receive_line() == b"ahead"
            with pytest.raises(KeyboardInterrupt):
                await reads.receive_frames(decode)
            assert interrupted == [b"b"]
            # The first frame's bytes too: it is decoded again.
            assert reads.unread == 6
            assert await reads.receive_frames(decode) == [b"a", b"b", b"c"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", AHEAD)
async def test_a_decoder_that_reads_nothing_is_a_runtime_error(kind: str, where: str) -> None:
    calls: list[int] = []

    def decode(reader: FrameReader) -> bytes:
        calls.append(reader.unread)
        # (A sync loop calling it forever would not see fail_after.)
        assert len(calls) < 10, "called again and again"
        if reader.unread < 2:
            raise trio.WouldBlock
        return b"nothing read"

    with trio.fail_after(5):
        async with reading(kind, ahead(where, b"abc", 1)) as reads:
            assert await reads.receive_line() == b"ahead"
            with pytest.raises(RuntimeError, match="without reading a byte"):
                await reads.receive_frames(decode)
            assert reads.unread == 3
            assert await reads.receive_frames(lambda r: r.read_exactly(3)) == [b"abc"]


async def test_a_frame_reader_is_only_valid_inside_its_decode_call() -> None:
    kept: list[FrameReader] = []

    def decode(reader: FrameReader) -> bytes:
        kept.append(reader)
        return reader.read_line()

    uses: list[Callable[[FrameReader], object]] = [
        lambda r: r.unread,
        lambda r: r.read_exactly(1),
        lambda r: r.read_line(),
        lambda r: r.read_until(b"\n"),
    ]
    with trio.fail_after(5):
        # (The call ends in a line search that ran out, which the reader
        # remembers: its reads still refuse.)
        async with reading("reader", [b"a\nb"]) as reads:
            assert await reads.receive_frames(decode) == [b"a"]
            assert reads.unread == 1
            for reader in [*kept, FrameReader()]:
                for use in uses:
                    with pytest.raises(RuntimeError, match="only inside the decode call"):
                        use(reader)


async def test_the_frame_reader_counts_what_is_unread() -> None:
    seen: list[tuple[int, ...]] = []

    def decode(reader: FrameReader) -> bytes:
        before = reader.unread
        line = reader.read_line()
        seen.append((before, reader.unread))
        return line

    with trio.fail_after(5):
        async with reading("reader", [b"ab\r\ncd\n"]) as reads:
            assert await reads.receive_frames(decode) == [b"ab", b"cd"]
    assert seen == [(7, 3), (3, 0)]


# ----------------------------------------------------------------------
# Limits and bad arguments


@pytest.mark.parametrize("kind", KINDS)
async def test_a_line_over_the_limit_raises_and_leaves_the_bytes(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, cut(b"x" * 100 + b"\nok\n", [30])) as reads:
            with pytest.raises(DelimiterNotFoundError) as info:
                await reads.receive_frames(lambda r: r.read_line(50))
            assert info.value.looked_at == 51
            assert info.value.max_bytes == 50
            assert info.value.delimiter == b"\n"
            assert reads.unread >= 51
            assert await reads.receive_frames(lambda r: r.read_line(100)) == [b"x" * 100, b"ok"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_delimiter_at_the_limit_is_found_one_past_it_is_not(kind: str) -> None:
    with trio.fail_after(5):
        data = b"x" * 10 + b"--" + b"y" * 11 + b"--" + b"z" * 10 + b"\r\n"
        async with reading(kind, cut(data, [3])) as reads:
            assert await reads.receive_frames(lambda r: r.read_until(b"--", 10)) == [b"x" * 10]
            with pytest.raises(DelimiterNotFoundError) as info:
                await reads.receive_frames(lambda r: r.read_until(b"--", 10))
            assert info.value.looked_at == 12
            assert await reads.receive_frames(lambda r: r.read_until(b"--", 11)) == [b"y" * 11]
            # A line's \r counts.
            with pytest.raises(DelimiterNotFoundError) as info:
                await reads.receive_frames(lambda r: r.read_line(10))
            assert info.value.looked_at == 11
            assert await reads.receive_frames(lambda r: r.read_line(11)) == [b"z" * 10]


@pytest.mark.parametrize(
    ("read", "match"),
    [
        (lambda r, n: r.read_exactly(n), "size"),
        (lambda r, n: r.read_line(n), "max_bytes"),
        (lambda r, n: r.read_until(b"\n", n), "max_bytes"),
    ],
    ids=["exactly", "line", "until"],
)
@pytest.mark.parametrize("negative", [-1, -2, -4, -100])
async def test_a_negative_size_or_limit_is_a_value_error(
    read: Callable[[FrameReader, int], bytes], match: str, negative: int
) -> None:
    # Whatever the value, and wherever the line ending (a negative end given
    # to bytes.find counts from the end of the buffer).
    with trio.fail_after(5):
        async with reading("reader", [b"a\nbc\n"]) as reads:
            with pytest.raises(ValueError, match=match):
                await reads.receive_frames(lambda r: read(r, negative))
            assert reads.unread == 5
            assert await reads.receive_frames(FrameReader.read_line) == [b"a", b"bc"]


async def test_an_empty_delimiter_is_a_value_error() -> None:
    with trio.fail_after(5):
        async with reading("reader", [b"abc\n"]) as reads:
            with pytest.raises(ValueError, match="delimiter"):
                await reads.receive_frames(lambda r: r.read_until(b""))
            assert reads.unread == 4
            # (A bytearray delimiter is taken too.)
            delimiter: Any = bytearray(b"c")
            assert await reads.receive_frames(lambda r: r.read_until(delimiter, 5)) == [b"ab"]


# ----------------------------------------------------------------------
# Checkpoints, cancellation, one reader at a time, closing


@pytest.mark.parametrize("kind", KINDS)
async def test_frames_the_buffer_answers_do_not_yield_but_it_is_a_cancel_point(
    kind: str,
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"head\na\nb\nc"]) as reads:
            with trio.testing.assert_checkpoints():
                assert await reads.receive_line() == b"head"
            with trio.CancelScope() as scope:
                scope.cancel()
                await reads.receive_frames(FrameReader.read_line)
            assert scope.cancelled_caught
            assert reads.unread == 5
            with trio.testing.assert_no_checkpoints():
                assert await reads.receive_frames(FrameReader.read_line) == [b"a", b"b"]
            # A decoder's error from the buffer does not yield either.
            with trio.testing.assert_no_checkpoints(), pytest.raises(ValueError, match="size"):
                await reads.receive_frames(lambda r: r.read_exactly(-1))
            # It must receive: a full checkpoint.
            with trio.testing.assert_checkpoints(), pytest.raises(IncompleteReadError):
                await reads.receive_frames(FrameReader.read_line)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("decode", "expected"),
    [
        (length_prefixed, [b"abcdef\r\n"]),
        (FrameReader.read_line, [b"\x00\x08abcdef", b""]),
        (lambda r: r.read_until(b"\r\n\r\n"), [b"\x00\x08abcdef"]),
    ],
    ids=["exactly", "line", "until"],
)
async def test_a_cancelled_receive_frames_leaves_every_byte_for_the_next(
    kind: str, decode: Callable[[FrameReader], bytes], expected: list[bytes]
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
                await reads.receive_frames(decode)
            assert scope.cancelled_caught
            assert reads.unread == 6
            await s.send_all(b"ef\r\n\r\nmore")
            assert await reads.receive_frames(decode) == expected
            await reads.aclose()
            await s.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "second",
    [
        lambda r: r.receive_frames(length_prefixed),
        lambda r: r.receive_some(),
        lambda r: r.receive_line(),
    ],
    ids=["frames", "some", "line"],
)
async def test_a_second_reader_while_receive_frames_waits_is_a_busy_error(
    kind: str, second: Callable[[Reads], Awaitable[object]]
) -> None:
    with trio.fail_after(5):
        s, r = trio.testing.memory_stream_pair()
        reads = open_reads(kind, r)
        got: list[bytes] = []

        async def first() -> None:
            got.extend(await reads.receive_frames(length_prefixed))

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
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "received"])
async def test_a_receive_frames_started_inside_decode_is_a_busy_error(
    kind: str, buffered: bool
) -> None:
    # Driven by hand from inside *decode*, a second receive_frames took the
    # frames the buffer already held, and the first then failed.
    inner: list[object] = []

    async with reading(kind, [b"head\na\nb\n"]) as reads:

        def reentrant(reader: FrameReader) -> bytes:
            if not inner:
                coro = reads.receive_frames(FrameReader.read_line)
                try:
                    coro.send(None)
                except BaseException as exc:  # StopIteration included
                    inner.append(exc)
                finally:
                    coro.close()
            return reader.read_line()

        with trio.fail_after(5):
            if buffered:
                assert await reads.receive_line() == b"head"
                assert await reads.receive_frames(reentrant) == [b"a", b"b"]
            else:
                assert await reads.receive_frames(reentrant) == [b"head", b"a", b"b"]
            assert len(inner) == 1
            assert isinstance(inner[0], trio.BusyResourceError)
            assert await reads.receive_frames(FrameReader.read_line) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_receive_frames_after_aclose_raises_closed(kind: str) -> None:
    with trio.fail_after(5):
        source = ChunkSource([b"a\nrest"])
        reads = open_reads(kind, source)
        async with trio.open_nursery() as nursery:
            if isinstance(reads, BufferedStream):
                await nursery.start(reads.run)
            assert await reads.receive_frames(FrameReader.read_line) == [b"a"]
            await reads.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await reads.receive_frames(FrameReader.read_line)
