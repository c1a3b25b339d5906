"""Reads for protocol code: ``receive_exactly``, ``receive_until``, ``receive_line``,
``lines``, ``receive_frames``, ``receive_parsed``.

One implementation, :class:`_BufferedReads`, shared by the two-way
:class:`~trio_bufwriter.BufferedStream` and the one-way
:class:`BufferedReader`.  Each supplies ``_receive_more``, its way of
receiving from the wrapped stream (``BufferedStream``'s goes through its turn
policy, see ``_stream.py``), and the reads keep what they received and did
not return in a :class:`~._receive_buffer.ReceiveBuffer`.

The contract, for all of them:

* one task at a time: a second raises :exc:`trio.BusyResourceError`, as
  trio's ``receive_some`` does;
* every read is a cancellation point; a read the buffer can answer returns
  without receiving and without yielding to the scheduler, as asyncio's and
  anyio's do, and as ``drain()`` below high water (the hot path of a server
  parsing pipelined requests: a yield per read would cost more than the
  read, and ``checkpoint_if_cancelled()`` alone about as much: the check is
  the one ``_run_context.py`` describes); a read that receives is a full
  checkpoint, and so is ``receive_some`` always;
* cancelled, a read returns nothing and loses nothing: what it had received
  stays in the buffer, for the next read.

How they differ from asyncio's ``StreamReader`` and anyio's
``BufferedByteReceiveStream`` is in the docs (``semantics.rst``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, final

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled

from ._frames import FrameReader, decode_buffered
from ._parse import DEFAULT_MAX_FRAME, Parser, parse_buffered
from ._receive_buffer import (
    DEFAULT_MAX_LINE,
    RECEIVE_SIZE,
    IncompleteReadError,
    ReceiveBuffer,
    checked_delimiter,
    checked_size,
)
from ._run_context import RUN_CONTEXT

T = TypeVar("T")

_BUSY = "another task is already receiving on this stream"


class _BufferedReads(trio.abc.ReceiveStream):
    """The reads, on top of ``_receive_more`` and a :class:`ReceiveBuffer`.

    Each read first tries the buffer, synchronously (no await: no other
    task can come in between, so checking ``reading`` is enough); only if
    it must receive does it go on, in a second method, holding ``reading``.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        _rbuf: ReceiveBuffer
        #: receive_frames's, kept from one call to the next (a fresh one
        #: per call would cost more than some decoders).
        _frame_reader: FrameReader
        #: Receive up to this many bytes from the wrapped stream; a full
        #: checkpoint.  (Called with ``_rbuf.reading`` set: one task at a time.)
        _receive_more: Callable[[int | None], Awaitable[bytes | bytearray]]

    @property
    def unread(self) -> int:
        """How many bytes were received and not read yet (in the buffer)."""
        return len(self._rbuf)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive up to *max_bytes* bytes: buffered ones first.

        If earlier reads left bytes in the buffer, it returns up to
        *max_bytes* of them (default: all), without receiving.  Otherwise it
        receives from the wrapped stream.  Either way it is what trio's
        ``receive_some`` is: a full checkpoint that waits until at least one
        byte is there, and returns ``b""`` at end-of-file (again at every
        call after that).  Cancelled, it has received nothing.

        Raises:
          TypeError: *max_bytes* is not an int (nor None).
          ValueError: *max_bytes* is less than 1.
          trio.BusyResourceError: another task is receiving.
          trio.ClosedResourceError: the stream was closed.
          trio.BrokenResourceError: the wrapped stream failed.

        A bad *max_bytes* raises before anything is received or taken.
        """
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
            max_bytes = checked_size(max_bytes, "max_bytes", 1)
        rbuf = self._rbuf
        if rbuf.reading:
            raise trio.BusyResourceError(_BUSY)
        rbuf.reading = True
        try:
            if not rbuf:
                rbuf.clear()  # (as in receive_frames)
                return await self._receive_more(max_bytes)
            if max_bytes is None:
                max_bytes = RECEIVE_SIZE
            await checkpoint_if_cancelled()
            data = rbuf.take_some(max_bytes)
            await cancel_shielded_checkpoint()
            return data
        finally:
            rbuf.reading = False

    async def receive_exactly(self, size: int) -> bytes:
        """Receive exactly *size* bytes.

        Waits until *size* bytes are there (in the buffer, or received).
        There is no limit on *size*: a length read from the peer should be
        checked before it is passed here.

        It is always a cancellation point.  If the buffer holds *size* bytes
        already, it returns them without receiving and without yielding to
        the scheduler (as asyncio's and anyio's reads do); otherwise it is a
        full checkpoint.  Cancelled, it returns
        nothing, and the bytes it had received stay in the buffer for the
        next read.

        Raises:
          TypeError: *size* is not an int (an object with ``__index__``,
              as trio takes, will do); raised before anything moves.
          ValueError: *size* is negative (likewise).
          IncompleteReadError: the stream ended first; its ``partial`` holds
              the bytes there were (they are taken out of the buffer).
          trio.BusyResourceError: another task is receiving.
          trio.ClosedResourceError: the stream was closed.
          trio.BrokenResourceError: the wrapped stream failed.
        """
        if type(size) is not int or size < 0:
            size = checked_size(size, "size")
        rbuf = self._rbuf
        if rbuf.reading:
            raise trio.BusyResourceError(_BUSY)
        if RUN_CONTEXT.task._cancel_status.effectively_cancelled:
            await checkpoint()  # raises Cancelled
        data = rbuf.take_exactly(size)
        if data is None:
            data = await self._receive_exactly(size)
        return data

    async def receive_until(self, delimiter: bytes, max_bytes: int = DEFAULT_MAX_LINE) -> bytes:
        """Receive up to the next *delimiter*; return what came before it.

        The delimiter is taken out of the buffer too, not returned.  It must
        begin at most *max_bytes* bytes in (the result is at most
        *max_bytes* long); bytes already searched are not searched again.

        It is always a cancellation point.  If the buffer holds the
        delimiter already, it returns without receiving and without yielding
        to the scheduler (as asyncio's and anyio's reads do); otherwise it
        is a full checkpoint.  Cancelled, it returns
        nothing, and the bytes it had received stay in the buffer for the
        next read.

        Raises:
          TypeError: *delimiter* is not bytes-like (``bytes``, ``bytearray``,
              a C-contiguous buffer: not an ``int``, nor a ``str``), or
              *max_bytes* is not an int; raised before anything moves.
          ValueError: *delimiter* is empty, or *max_bytes* negative (likewise).
          DelimiterNotFoundError: ``max_bytes + len(delimiter)`` bytes came
              without the delimiter; they stay in the buffer.
          IncompleteReadError: the stream ended before the delimiter; its
              ``partial`` holds the bytes there were (taken out of the buffer).
          trio.BusyResourceError: another task is receiving.
          trio.ClosedResourceError: the stream was closed.
          trio.BrokenResourceError: the wrapped stream failed.
        """
        if type(delimiter) is not bytes or not delimiter:
            delimiter = checked_delimiter(delimiter, "receive_until()")
        if type(max_bytes) is not int or max_bytes < 0:
            max_bytes = checked_size(max_bytes, "max_bytes")
        rbuf = self._rbuf
        if rbuf.reading:
            raise trio.BusyResourceError(_BUSY)
        if RUN_CONTEXT.task._cancel_status.effectively_cancelled:
            await checkpoint()  # raises Cancelled
        data = rbuf.take_until(delimiter, max_bytes, 0, False)
        if data is None:
            data = await self._receive_until(delimiter, max_bytes, False)
        return data

    async def receive_line(self, max_bytes: int = DEFAULT_MAX_LINE) -> bytes:
        """Receive a line; return it without its line ending.

        A line ends at ``b"\\n"``; one ``b"\\r"`` just before it is part of
        the line ending too, so ``b"a\\r\\n"`` and ``b"a\\n"`` both give
        ``b"a"`` (any other ``b"\\r"`` is kept).  The line, ``\\r``
        included, may be at most *max_bytes* long.

        Otherwise it is :meth:`receive_until` with ``b"\\n"``: the same
        waiting, checkpoints, cancellation and errors.
        """
        if type(max_bytes) is not int or max_bytes < 0:
            max_bytes = checked_size(max_bytes, "max_bytes")
        rbuf = self._rbuf
        if rbuf.reading:
            raise trio.BusyResourceError(_BUSY)
        if RUN_CONTEXT.task._cancel_status.effectively_cancelled:
            await checkpoint()  # raises Cancelled
        # The hot path of a line protocol, inlined: a line in a received
        # chunk (what ReceiveBuffer.take_line does first).
        data = rbuf.data
        if type(data) is bytes:
            pos = rbuf.pos
            found = data.find(b"\n", pos, pos + max_bytes + 1)
            if found >= 0:
                rbuf.pos = found + 1
                if found > pos and data[found - 1] == 13:  # b"\r"
                    found -= 1
                return data[pos:found]
        line = rbuf.take_line(max_bytes)
        if line is None:
            line = await self._receive_until(b"\n", max_bytes, True)
        return line

    async def receive_frames(self, decode: Callable[[FrameReader], T]) -> list[T]:
        """Receive frames, decoded by *decode*: every complete one there is.

        *decode* is a plain (not async) function that reads one frame (a
        request, a command, a message) from the :class:`FrameReader` it is
        given, with its ``read_exactly``, ``read_until`` and ``read_line``,
        and returns it (any object but a frame that read no bytes).  When a
        frame is not all there, a read raises :exc:`trio.WouldBlock`; let it
        propagate: every byte read for that frame becomes unread again, and
        *decode* is called again from the frame's first byte once more bytes
        have come.  So *decode* keeps no state of its own.

        It returns, in order, the frames decoded from what is in the buffer
        (or, if there is not one complete frame there, from what it must
        then receive): at least one, or ``[]`` at end-of-file.  Nothing in
        it awaits between two frames, so a server can answer a pipelined
        batch with one ``receive_frames``, ``write()``\\s and one ``drain()``.

        The limits are *decode*'s reads': ``read_line`` and ``read_until``
        raise :exc:`DelimiterNotFoundError` past their *max_bytes*; check a
        length you read from the peer before you pass it to
        ``read_exactly``.

        It is always a cancellation point; if the buffer holds a complete
        frame it returns without receiving and without yielding to the
        scheduler, otherwise it is a full checkpoint.  Cancelled, it returns
        nothing, and every byte received stays in the buffer for the next
        read.

        Raises:
          IncompleteReadError: the stream ended in the middle of a frame;
              its ``partial`` holds the frame's bytes.
          trio.BusyResourceError: another task is receiving.
          trio.ClosedResourceError: the stream was closed.
          trio.BrokenResourceError: the wrapped stream failed.
          RuntimeError: *decode* returned without reading a byte.
          Exception: whatever *decode* raises, other than
              :exc:`trio.WouldBlock`.  The bytes of the frame it raised
              for stay unread; if frames came before it, they are returned
              first, and the error comes at the next call.
        """
        rbuf = self._rbuf
        if rbuf.reading:
            raise trio.BusyResourceError(_BUSY)
        reader = self._frame_reader
        reader._resume = None
        if rbuf.pos < len(rbuf.data):
            # (A receive below is a cancellation point of its own.)
            if RUN_CONTEXT.task._cancel_status.effectively_cancelled:
                await checkpoint()  # raises Cancelled
            # Busy while *decode* runs: a receive_frames() it started would
            # take the same bytes.
            rbuf.reading = True
            try:
                frames = decode_buffered(reader, rbuf, decode)
            finally:
                rbuf.reading = False
            if frames:
                return frames
        else:
            # Not to hold on to the last chunk (or a big message's
            # bytearray) while waiting, maybe for a long time.
            rbuf.clear()
        rbuf.reading = True
        try:
            while True:
                chunk = await self._receive_more(RECEIVE_SIZE)
                if not chunk:
                    if rbuf:
                        raise IncompleteReadError(
                            rbuf.take_all(), None, waiting_for="the rest of a frame"
                        )
                    return []
                rbuf.feed(chunk)
                frames = decode_buffered(reader, rbuf, decode)
                if frames:
                    return frames
        finally:
            rbuf.reading = False

    async def receive_parsed(self, parse: Parser[T], max_frame: int = DEFAULT_MAX_FRAME) -> list[T]:
        """Receive frames, found by *parse*: every complete one there is.

        *parse* is a plain (not async) function ``parse(data, start)``:
        *data* is a ``bytes`` object holding the received bytes, and the
        next frame begins at index *start*.  It returns ``(frame, end)``,
        the frame (any object) and the index just past its last byte; or,
        if the frame is not all there yet, ``None``, or how many bytes the
        frame takes at least, counted from *start*, if it can tell (a
        length prefix says so): it is then not called again until that
        many bytes are there.  It is called
        once per frame, and again from the frame's *start* once more bytes
        have come, so it keeps no state of its own.  It must not look
        before *start* (earlier bytes may be gone) and should not keep
        *data*: slice what it needs (slices of ``bytes`` are ``bytes``).

        It returns, in order, the frames found in what is in the buffer (or,
        if there is not one complete frame there, in what it must then
        receive): at least one, or ``[]`` at end-of-file.  Nothing in it
        awaits between two frames.

        *max_frame* limits a frame's size: a frame longer than it raises
        :exc:`FrameTooLargeError`, whether it came whole or in pieces, and
        so does an incomplete frame once *max_frame* of its bytes are
        buffered, or one whose size *parse* says is more.  A receive asks
        for no more than *max_frame* bytes less those buffered (and 64 KiB
        at most), so the buffer never holds more than *max_frame* bytes of
        an incomplete frame.  Limits inside a frame (a line's length) are
        *parse*'s: it raises its own error when a line is too long, as a
        hand-written parser does.

        A frame arriving in many pieces is parsed from its start at each
        piece: keep *parse* linear in what it scans before a length, and
        return the size once known, so a large frame is not re-parsed (nor
        its bytes copied) at every piece.

        It is always a cancellation point; if the buffer holds a complete
        frame it returns without receiving and without yielding to the
        scheduler, otherwise it is a full checkpoint.  Cancelled, it returns
        nothing, and every byte received stays in the buffer for the next
        read.

        Raises:
          FrameTooLargeError: see above; the frame's bytes stay unread.
          IncompleteReadError: the stream ended in the middle of a frame;
              its ``partial`` holds the frame's bytes.
          TypeError: *max_frame* is not an int; or *parse* returned
              something other than a tuple ``(frame, end)`` with an int
              *end*, an int or None (as an error *parse* raised).
          ValueError: *max_frame* is less than 1.
          trio.BusyResourceError: another task is receiving.
          trio.ClosedResourceError: the stream was closed.
          trio.BrokenResourceError: the wrapped stream failed.
          RuntimeError: *parse* returned an end not after *start*, or past
              the bytes it was given.
          Exception: whatever *parse* raises.  The bytes of the frame it
              raised for stay unread; if frames came before it, they are
              returned first, and the error comes at the next call.
        """
        if type(max_frame) is not int or max_frame < 1:
            max_frame = checked_size(max_frame, "max_frame", 1)
        rbuf = self._rbuf
        if rbuf.reading:
            raise trio.BusyResourceError(_BUSY)
        need = 0
        if rbuf.pos < len(rbuf.data):
            # (A receive below is a cancellation point of its own.)
            if RUN_CONTEXT.task._cancel_status.effectively_cancelled:
                await checkpoint()  # raises Cancelled
            rbuf.reading = True  # (busy while *parse* runs, as in receive_frames)
            try:
                frames, need = parse_buffered(rbuf, parse, max_frame)
            finally:
                rbuf.reading = False
            if frames:
                return frames
        else:
            rbuf.clear()  # (as in receive_frames)
        rbuf.reading = True
        try:
            while True:
                # Never more than max_frame bytes of an incomplete frame.
                chunk = await self._receive_more(min(RECEIVE_SIZE, max_frame - len(rbuf)))
                if not chunk:
                    if rbuf:
                        raise IncompleteReadError(
                            rbuf.take_all(), None, waiting_for="the rest of a frame"
                        )
                    return []
                rbuf.feed(chunk)
                if need and len(rbuf) < need:
                    continue
                frames, need = parse_buffered(rbuf, parse, max_frame)
                if frames:
                    return frames
        finally:
            rbuf.reading = False

    def lines(self, max_bytes: int = DEFAULT_MAX_LINE) -> AsyncIterator[bytes]:
        """Iterate over the lines received, to end-of-file: ``async for line in conn.lines()``.

        Each line is what :meth:`receive_line` returns: without its line
        ending (``\\n``, or ``\\r\\n``), at most *max_bytes* long.  At
        end-of-file the iteration ends cleanly; a last line without a line
        ending is yielded first, as it is (a ``\\r`` at its end kept), as
        asyncio's ``readline()`` returns it.  Once it has ended, it stays
        ended, without receiving again.

        Each step is :meth:`receive_line`: the same waiting, checkpoints and
        cancellation (a cancelled step loses nothing; the iteration may go
        on), and the same errors but the end-of-file one.

        Raises:
          DelimiterNotFoundError: a line is longer than *max_bytes*; its
              bytes stay in the buffer, and the iterator stays usable (its
              next step raises again unless another read takes them).
          TypeError: *max_bytes* is not an int (raised here, before any
              iteration).
          ValueError: *max_bytes* is negative (likewise).
          trio.BusyResourceError: another task is receiving.
          trio.ClosedResourceError: the stream was closed.
          trio.BrokenResourceError: the wrapped stream failed.
        """
        if type(max_bytes) is not int or max_bytes < 0:
            max_bytes = checked_size(max_bytes, "max_bytes")
        return _Lines(self, max_bytes)

    # ------------------------------------------------------------------
    # When the buffer cannot answer

    async def _receive_exactly(self, size: int) -> bytes:
        """Receive until the buffer holds *size* bytes, then take them."""
        rbuf = self._rbuf
        rbuf.reading = True
        try:
            while True:
                if not rbuf:
                    rbuf.clear()  # (as in receive_frames)
                chunk = await self._receive_more(RECEIVE_SIZE)
                if not chunk:
                    raise IncompleteReadError(rbuf.take_all(), size)
                rbuf.feed(chunk)
                data = rbuf.take_exactly(size)
                if data is not None:
                    return data
        finally:
            rbuf.reading = False

    async def _receive_until(self, delimiter: bytes, max_bytes: int, strip_cr: bool) -> bytes:
        """Receive until the buffer holds *delimiter*, then take up to it.

        The buffer was searched already: each search starts where the last
        one left off (less the bytes a delimiter cut in two could begin in:
        ``rbuf.searched``).
        """
        rbuf = self._rbuf
        rbuf.reading = True
        try:
            while True:
                start = rbuf.searched
                chunk = await self._receive_more(RECEIVE_SIZE)
                if not chunk:
                    raise IncompleteReadError(rbuf.take_all(), None)
                data = rbuf.feed_until(chunk, delimiter, max_bytes, start, strip_cr)
                if data is not None:
                    return data
        finally:
            rbuf.reading = False


@final
class _Lines:
    """What :meth:`_BufferedReads.lines` returns: an async iterator of lines."""

    __slots__ = ("_max_bytes", "_reads")

    def __init__(self, reads: _BufferedReads, max_bytes: int) -> None:
        #: None once the stream has ended.
        self._reads: _BufferedReads | None = reads
        self._max_bytes = max_bytes

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> bytes:
        reads = self._reads
        if reads is None:
            await checkpoint()
            raise StopAsyncIteration
        try:
            return await reads.receive_line(self._max_bytes)
        except IncompleteReadError as exc:
            self._reads = None
            if exc.partial:
                return exc.partial
            raise StopAsyncIteration from None


@final
class BufferedReader(_BufferedReads):
    """A :class:`trio.abc.ReceiveStream` wrapper with reads for protocol code.

    :meth:`receive_exactly`, :meth:`receive_until` and :meth:`receive_line`
    receive in pieces of up to 64 KiB and keep what they do not return in a
    buffer; :meth:`receive_some` serves that buffer first.  It is the
    reading half of :class:`BufferedStream`, for a stream that is only read
    (or whose sending side is not buffered).

    Args:
      stream: the :class:`trio.abc.ReceiveStream` to read from.  The reader
          owns it from now on: closing the reader closes it, and nothing
          else should receive from it.
    """

    __slots__ = ("_frame_reader", "_rbuf", "_receive_more", "_stream")

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        if not isinstance(stream, trio.abc.ReceiveStream):
            raise TypeError(
                f"expected a trio.abc.ReceiveStream to wrap, not {type(stream).__name__!r}"
            )
        self._stream = stream
        self._rbuf = ReceiveBuffer()
        self._frame_reader = FrameReader()
        # The reads receive straight from the wrapped stream.
        self._receive_more = stream.receive_some

    @property
    def transport_stream(self) -> trio.abc.ReceiveStream:
        """The wrapped stream."""
        return self._stream

    async def aclose(self) -> None:
        """Close the wrapped stream; the bytes not read yet are discarded.

        Later reads raise :exc:`trio.ClosedResourceError`.  As trio's
        ``aclose``, it closes even if cancelled.
        """
        self._rbuf.clear()
        await self._stream.aclose()
