"""Bad arguments to the reads and to FrameReader: a clear TypeError or
ValueError, raised before anything moves, and the reader still usable (the
buffered bytes still there, for the next read)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from test_reads import KINDS, reading

from trio_bufwriter import FrameReader


class Index:
    """An integer that is not an int (as numpy's are): ``operator.index`` takes it."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


# (method, arguments, error, message)
BAD_CALLS: list[tuple[str, tuple[Any, ...], type[Exception], str]] = [
    ("receive_exactly", (1.5,), TypeError, "size must be an int, not 'float'"),
    ("receive_exactly", ("2",), TypeError, "size must be an int, not 'str'"),
    ("receive_exactly", (None,), TypeError, "size must be an int, not 'NoneType'"),
    ("receive_exactly", (-1,), ValueError, "size must be >= 0, got -1"),
    ("receive_some", (1.5,), TypeError, "max_bytes must be an int, not 'float'"),
    ("receive_some", (0,), ValueError, "max_bytes must be >= 1, got 0"),
    ("receive_until", (b"\n", 1.5), TypeError, "max_bytes must be an int, not 'float'"),
    ("receive_until", (b"\n", -1), ValueError, "max_bytes must be >= 0, got -1"),
    ("receive_line", (2.0,), TypeError, "max_bytes must be an int, not 'float'"),
    ("receive_line", (-1,), ValueError, "max_bytes must be >= 0, got -1"),
    # An int delimiter would be bytes(10), ten NUL bytes.
    ("receive_until", (10,), TypeError, r"receive_until\(\) takes a bytes-like object .*not 'int'"),
    ("receive_until", ("\n",), TypeError, r"not str: encode the text first"),
    ("receive_until", (None,), TypeError, r"not 'NoneType'"),
    ("receive_until", (b"",), ValueError, "the delimiter must not be empty"),
    ("receive_until", (memoryview(b"a-b-")[::2],), TypeError, "C-contiguous"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "args", "error", "message"), BAD_CALLS)
async def test_a_bad_read_argument_raises_and_leaves_the_buffered_bytes(
    kind: str, method: str, args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"hello\nworld\n"]) as reads:
            assert await reads.receive_exactly(1) == b"h"
            with pytest.raises(error, match=message):
                await getattr(reads, method)(*args)
            assert reads.unread == 11
            assert await reads.receive_exactly(11) == b"ello\nworld\n"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "args", "error", "message"), BAD_CALLS)
async def test_a_bad_read_argument_raises_before_receiving(
    kind: str, method: str, args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"hello\n"]) as reads:
            with pytest.raises(error, match=message):
                await getattr(reads, method)(*args)
            assert reads.unread == 0
            assert await reads.receive_line() == b"hello"


@pytest.mark.parametrize("kind", KINDS)
async def test_sizes_are_taken_as_operator_index_takes_them(kind: str) -> None:
    with trio.fail_after(5):
        async with reading(kind, [b"abcdef-gh\nij"]) as reads:
            assert await reads.receive_exactly(Index(2)) == b"ab"  # type: ignore[arg-type]
            assert await reads.receive_some(Index(1)) == b"c"  # type: ignore[arg-type]
            assert await reads.receive_until(b"-", Index(3)) == b"def"  # type: ignore[arg-type]
            assert await reads.receive_line(Index(2)) == b"gh"  # type: ignore[arg-type]
            assert await reads.receive_exactly(True) == b"i"  # as trio: a bool is an int
            assert await reads.receive_until(bytearray(b"j"), 0) == b""


# ----------------------------------------------------------------------
# FrameReader: the same rules, from the same functions


BAD_FRAME_READS: list[tuple[str, tuple[Any, ...], type[Exception], str]] = [
    ("read_exactly", (1.5,), TypeError, "size must be an int, not 'float'"),
    ("read_exactly", (100.5,), TypeError, "size must be an int, not 'float'"),
    ("read_exactly", (-1,), ValueError, "size must be >= 0, got -1"),
    ("read_line", (1.5,), TypeError, "max_bytes must be an int, not 'float'"),
    ("read_line", (-1,), ValueError, "max_bytes must be >= 0, got -1"),
    ("read_until", (b"-", 1.5), TypeError, "max_bytes must be an int, not 'float'"),
    ("read_until", (b"-", -1), ValueError, "max_bytes must be >= 0, got -1"),
    ("read_until", (10,), TypeError, r"read_until\(\) takes a bytes-like object .*not 'int'"),
    ("read_until", ("-",), TypeError, "not str: encode the text first"),
    ("read_until", (b"",), ValueError, "the delimiter must not be empty"),
    ("read_until", (memoryview(b"a-b-")[::2],), TypeError, "C-contiguous"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "args", "error", "message"), BAD_FRAME_READS)
async def test_a_bad_frame_read_argument_raises_and_leaves_the_frame_unread(
    kind: str, method: str, args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    def decode(reader: FrameReader) -> bytes:
        reader.read_exactly(1)
        getattr(reader, method)(*args)
        raise AssertionError("unreachable")  # pragma: no cover

    with trio.fail_after(5):
        async with reading(kind, [b"abc-de\nfg"]) as reads:
            with pytest.raises(error, match=message):
                await reads.receive_frames(decode)
            assert reads.unread == 9
            assert await reads.receive_frames(FrameReader.read_line) == [b"abc-de"]
            assert await reads.receive_exactly(2) == b"fg"
