"""Frames: a synchronous decoder run over the receive buffer (``receive_frames``).

The awaited reads (``receive_line``, ``receive_exactly``...) cost an await
each.  A server answering pipelined requests would rather parse every
complete request it has received in one go, as asyncio's ``Protocol``,
h11's ``next_event()`` and tokio's ``Decoder`` let it: synchronously, with
no await until it needs more bytes.  ``receive_frames(decode)`` is that:
*decode* is a plain function that reads one frame (a request, a command, a
message) from a :class:`FrameReader`, with the same reads, synchronous; when
the frame is not all there, a read raises :exc:`trio.WouldBlock`, and every
byte *decode* read for that frame becomes unread again.  So *decode* keeps
no state between calls: it starts each frame from its first byte.

That is cheap because a read only moves a position in the buffer's bytes
(nothing replaces or changes them between two feeds, see
``_receive_buffer.py``): giving the bytes back is putting it back.  And a
frame that arrives in many pieces is not searched again from its start
each time: where a line search stopped is remembered (for the same line,
at the same place in the frame).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast, final

import trio

from ._receive_buffer import (
    DEFAULT_MAX_LINE,
    DelimiterNotFoundError,
    ReceiveBuffer,
    _slice,
    checked_delimiter,
    checked_size,
)

T = TypeVar("T")

_OUTSIDE = "a FrameReader can be read only inside the decode call it was passed to"


@final
class _Outside:
    """What a :class:`FrameReader` reads outside a decoder call: an error.

    (Rather than a ``None`` that every read would have to check for: the
    reads are the decoders' hot path.)  It stands in for the buffer's bytes
    and for the buffer; every read touches one of them first.
    """

    __slots__ = ()

    def __len__(self) -> int:
        raise RuntimeError(_OUTSIDE)

    def find(self, *args: object) -> int:
        raise RuntimeError(_OUTSIDE)

    @property
    def pos(self) -> int:  # pragma: no cover - the bytes are read first
        raise RuntimeError(_OUTSIDE)

    @pos.setter
    def pos(self, value: int) -> None:
        raise RuntimeError(_OUTSIDE)


_OUTSIDE_DATA = cast(bytes, _Outside())
_OUTSIDE_BUFFER = cast(ReceiveBuffer, _Outside())


@final
class FrameReader:
    """The received bytes, as a frame decoder passed to
    :meth:`~BufferedStream.receive_frames` reads them: synchronously.

    Each read takes bytes from the front of the buffer, as the awaited reads
    of the same names do (with the same limits and errors), or raises
    :exc:`trio.WouldBlock` if they are not all there yet.  Let that
    propagate out of the decoder: ``receive_frames`` then makes every byte
    read for the frame unread again, receives more, and calls the decoder
    again from the frame's first byte.

    A decoder may raise :exc:`trio.WouldBlock` itself, when it can tell
    that the frame is not complete yet: the effect is the same.

    Only valid during the decoder call it was passed to.
    """

    __slots__ = ("_data", "_pos", "_rbuf", "_resume", "_start")

    def __init__(self) -> None:
        # During a decoder call: the buffer, and its bytes and position,
        # which the reads use (one attribute fewer to go through than the
        # buffer's own; decode_buffered puts the position back in it).
        self._rbuf = _OUTSIDE_BUFFER
        self._data: bytes | bytearray = _OUTSIDE_DATA
        self._pos = 0
        #: Where the frame being decoded starts.
        self._start = 0
        #: After a line search ran out of bytes: (where in the frame it
        #: began, its delimiter, how far it had searched).
        self._resume: tuple[int, bytes, int] | None = None

    @property
    def unread(self) -> int:
        """How many bytes are there to read, now."""
        return len(self._data) - self._pos

    def read_exactly(self, size: int) -> bytes:
        """Read exactly *size* bytes.

        Raises:
          trio.WouldBlock: fewer are there (so far).
          TypeError: *size* is not an int.
          ValueError: *size* is negative.
        """
        if type(size) is not int or size < 0:
            size = checked_size(size, "size")
        data = self._data
        pos = self._pos
        end = pos + size
        if end > len(data):
            raise trio.WouldBlock
        self._pos = end
        if type(data) is bytes:
            return data[pos:end]
        return _slice(data, pos, end)

    def read_line(self, max_bytes: int = DEFAULT_MAX_LINE) -> bytes:
        """Read a line; return it without its line ending (``\\n``, or
        ``\\r\\n``), as :meth:`~BufferedStream.receive_line`.

        Raises:
          trio.WouldBlock: the line has not ended yet.
          DelimiterNotFoundError: more than *max_bytes* bytes came without
              a line ending.
          TypeError: *max_bytes* is not an int.
          ValueError: *max_bytes* is negative.
        """
        if type(max_bytes) is not int or max_bytes < 0:
            max_bytes = checked_size(max_bytes, "max_bytes")
        data = self._data
        pos = self._pos
        start = pos if self._resume is None else pos + self._resumed(b"\n")
        found = data.find(b"\n", start, pos + max_bytes + 1)
        if found < 0:
            if len(data) - pos > max_bytes:
                raise DelimiterNotFoundError(b"\n", max_bytes, max_bytes + 1)
            self._resume = (pos - self._start, b"\n", len(data) - pos)
            raise trio.WouldBlock
        self._pos = found + 1
        if found > pos and data[found - 1] == 13:  # b"\r"
            found -= 1
        if type(data) is bytes:
            return data[pos:found]
        return _slice(data, pos, found)

    def read_until(self, delimiter: bytes, max_bytes: int = DEFAULT_MAX_LINE) -> bytes:
        """Read up to the next *delimiter*; return what came before it (the
        delimiter is read too), as :meth:`~BufferedStream.receive_until`.

        Raises:
          trio.WouldBlock: the delimiter has not come yet.
          DelimiterNotFoundError: ``max_bytes + len(delimiter)`` bytes came
              without it.
          TypeError: *delimiter* is not bytes-like (an ``int``, a ``str``...),
              or *max_bytes* is not an int.
          ValueError: *delimiter* is empty, or *max_bytes* negative.
        """
        if type(delimiter) is not bytes or not delimiter:
            delimiter = checked_delimiter(delimiter, "read_until()")
        if type(max_bytes) is not int or max_bytes < 0:
            max_bytes = checked_size(max_bytes, "max_bytes")
        start = 0 if self._resume is None else self._resumed(delimiter)
        rbuf = self._rbuf
        rbuf.pos = self._pos
        data = rbuf.take_until(delimiter, max_bytes, start, False)
        if data is None:
            self._resume = (self._pos - self._start, delimiter, rbuf.searched)
            raise trio.WouldBlock
        self._pos = rbuf.pos
        return data

    def _resumed(self, delimiter: bytes) -> int:
        """Where to start searching for *delimiter*: past what was searched
        in the last attempt at this frame, if it searched here for it."""
        assert self._resume is not None
        at, searched_for, searched = self._resume
        if at == self._pos - self._start and searched_for == delimiter:
            return searched
        return 0


def decode_buffered(
    reader: FrameReader, rbuf: ReceiveBuffer, decode: Callable[[FrameReader], T]
) -> list[T]:
    """Every frame *decode* can read from *rbuf* through *reader*, in order.

    Stops at the end of the buffer, or at a frame *decode* raises
    :exc:`trio.WouldBlock` for (its bytes are left unread).  If *decode*
    raises anything else, the frame's bytes are left unread, and the error
    propagates only if no frame came before it: otherwise the frames are
    returned, and the error comes again at the next call.  (A
    :exc:`BaseException` that is not an :exc:`Exception`, say
    ``KeyboardInterrupt``, propagates at once, with every byte of this call
    left unread.)

    *reader* is the same from one call to the next while one
    ``receive_frames`` feeds the buffer: it remembers where a line search
    that ran out of bytes stopped.
    """
    frames: list[T] = []
    first = rbuf.pos
    data = rbuf.data
    reader._rbuf = rbuf
    reader._data = data
    reader._pos = first
    end = len(data)
    try:
        while (start := reader._pos) < end:
            reader._start = start
            try:
                frames.append(decode(reader))
            except trio.WouldBlock:
                reader._pos = start
                break
            except Exception:
                if not frames:
                    raise
                reader._pos = start
                break
            if reader._pos == start:
                raise RuntimeError(
                    f"{decode!r} returned a frame without reading a byte: "
                    "it would be called forever"
                )
            reader._resume = None
    except BaseException:
        reader._pos = first
        raise
    finally:
        rbuf.pos = reader._pos
        reader._rbuf = _OUTSIDE_BUFFER
        reader._data = _OUTSIDE_DATA
    return frames
