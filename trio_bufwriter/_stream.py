"""A two-way stream: a :class:`BufferedWriter` and a :class:`BufferedReader` over
one stream, as trio's ``StapledStream`` staples a send and a receive stream.

It adds one thing of its own, over a :class:`trio.SocketStream`: the *turns*
of a request/response exchange.  A turn runs from one receive from the
socket to the next; when the next receive starts, what the turn wrote leaves
in one send, and the task yields before it looks at the socket if the turn
sent anything, and after a look that found data (``DESIGN.md`` says why,
with the figures).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar, final

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from ._anyio import as_stream
from ._buffers import BytesLike
from ._frames import FrameReader
from ._options import WRITER_OPTIONS, check_options
from ._parse import DEFAULT_MAX_FRAME, Parser
from ._reader import BufferedReader
from ._receive_buffer import DEFAULT_MAX_LINE, RECEIVE_SIZE
from ._socket import SocketSource, socket_source
from ._state import WriterState, WriterStatistics
from ._writer import BufferedWriter

if TYPE_CHECKING:
    import anyio.abc
    from typing_extensions import Unpack

    from ._options import WriterOptions

T = TypeVar("T")


@final
class BufferedStream(trio.abc.HalfCloseableStream):
    """A :class:`trio.abc.Stream` wrapper: buffered writes, and reads for protocol code.

    It has every method of :class:`BufferedWriter` (``write``, ``drain``,
    ``flush``, ``corked``, ``run``...) and of :class:`BufferedReader`
    (``receive_exactly``, ``receive_until``, ``receive_line``, ``lines``,
    ``receive_frames``, ``receive_parsed``), with the same contracts, and
    implements trio's stream interface itself, so it can be handed to code that expects a
    plain trio stream (an h11 loop, trio-websocket, an :class:`trio.SSLStream`
    on top):

    * ``send_all`` = :meth:`~BufferedWriter.write` then wait as
      :meth:`~BufferedWriter.drain` does;
    * ``receive_some`` returns what earlier reads left in the buffer, or
      receives from the wrapped stream;
    * ``send_eof`` flushes, then calls the wrapped stream's ``send_eof``; it
      raises :exc:`TypeError` if the wrapped stream is not a
      :class:`trio.abc.HalfCloseableStream` (an :class:`trio.SSLStream`, say);
    * ``aclose`` flushes, then closes the wrapped stream; unread bytes are
      discarded.

    Over a :class:`trio.SocketStream`, every receive from the socket ends
    the current *turn* of the exchange: the bytes written since the last
    receive that are still queued are handed to the socket first; the task
    yields to the scheduler before looking at the socket if anything was
    sent since the last receive, and after a look that found data, as
    trio's own ``receive_some`` does.  A read the buffer answers does not receive, so it does
    not end the turn: the replies to pipelined requests leave together.

    One task may read while others write.

    *stream* is a :class:`trio.abc.Stream`, or, on anyio's trio backend, an
    ``anyio.abc.ByteStream`` (see "anyio on the trio backend").  The
    constructor takes the same keyword arguments as :class:`BufferedWriter`.
    Usually made with :func:`open_buffered_stream`, which also runs the sender.
    """

    __slots__ = ("_reader", "_source", "_transport", "_turn_pieces", "_turn_sent", "_writer")

    def __init__(
        self,
        stream: trio.abc.Stream | anyio.abc.ByteStream,
        **options: Unpack[WriterOptions],
    ) -> None:
        check_options("BufferedStream()", options, WRITER_OPTIONS)
        # An anyio stream gets an adapter (see _anyio.py); anything else
        # that is not a trio stream, a TypeError.
        stream = as_stream(stream)
        self._transport = stream
        self._writer = BufferedWriter(stream, **options)
        self._reader = BufferedReader(stream)
        self._source: SocketSource | None = socket_source(stream)
        if self._source is not None:
            # The reads receive through the turns.
            self._reader._receive_more = self._receive_from_socket
        self._turn_pieces = 0
        self._turn_sent = 0

    @property
    def transport_stream(self) -> trio.abc.Stream:
        """The wrapped stream."""
        return self._transport

    # ------------------------------------------------------------------
    # The turns (over a socket)

    async def _receive_from_socket(self, max_bytes: int | None) -> bytes:
        """Receive from the socket, ending the turn: what it wrote and is
        still queued leaves now; the task yields before looking if the turn
        sent anything, and after a look that found data.
        A checkpoint; cancelled, it has received nothing."""
        sent = self._end_turn()
        source = self._source
        assert source is not None
        if max_bytes is None:  # (the reader checked any other value)
            max_bytes = RECEIVE_SIZE
        await checkpoint_if_cancelled()
        if sent:
            # Let the reply reach the peer, and its answer come back,
            # while the other tasks run.
            await cancel_shielded_checkpoint()
        data = source.try_receive(max_bytes)
        if data is not None:
            # Serve it in a step of its own, as trio's receive_some does:
            # serving a request in the step that found it, right after the
            # turn's yield, put a tail on the latencies of many connections
            # (the p99 of the HTTP example under wrk -c50 was 3x trio's;
            # DESIGN.md, "Turns").
            await cancel_shielded_checkpoint()
        while data is None:
            # A full checkpoint: cancelled here, nothing was received.
            await trio.lowlevel.wait_readable(source.socket)
            data = source.try_receive(max_bytes)
        return data

    def _end_turn(self) -> bool:
        """Send what this turn wrote; return whether any bytes were sent since
        the last receive.  A turn of several pieces (pipelined replies, one
        write each) makes the next turn's first write wait for the sender
        too, so that its whole batch leaves in one send."""
        writer = self._writer
        pieces, sent_total = writer._end_turn()
        writer._hold_direct = pieces - self._turn_pieces >= 2
        self._turn_pieces = pieces
        sent = sent_total != self._turn_sent
        self._turn_sent = sent_total
        return sent

    # ------------------------------------------------------------------
    # Reading: the reader's

    @property
    def unread(self) -> int:
        """How many bytes were received and not read yet (in the buffer)."""
        return self._reader.unread

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """:meth:`BufferedReader.receive_some`."""
        return await self._reader.receive_some(max_bytes)

    async def receive_exactly(self, size: int) -> bytes:
        """:meth:`BufferedReader.receive_exactly`."""
        return await self._reader.receive_exactly(size)

    async def receive_until(self, delimiter: bytes, max_bytes: int = DEFAULT_MAX_LINE) -> bytes:
        """:meth:`BufferedReader.receive_until`."""
        return await self._reader.receive_until(delimiter, max_bytes)

    async def receive_line(self, max_bytes: int = DEFAULT_MAX_LINE) -> bytes:
        """:meth:`BufferedReader.receive_line`."""
        return await self._reader.receive_line(max_bytes)

    async def receive_frames(self, decode: Callable[[FrameReader], T]) -> list[T]:
        """:meth:`BufferedReader.receive_frames`."""
        return await self._reader.receive_frames(decode)

    async def receive_parsed(self, parse: Parser[T], max_frame: int = DEFAULT_MAX_FRAME) -> list[T]:
        """:meth:`BufferedReader.receive_parsed`."""
        return await self._reader.receive_parsed(parse, max_frame)

    def lines(self, max_bytes: int = DEFAULT_MAX_LINE) -> AsyncIterator[bytes]:
        """:meth:`BufferedReader.lines`."""
        return self._reader.lines(max_bytes)

    # ------------------------------------------------------------------
    # Writing: the writer's

    def write(self, data: BytesLike) -> None:
        """:meth:`BufferedWriter.write`."""
        self._writer.write(data)

    def writelines(self, data: Iterable[BytesLike]) -> None:
        """:meth:`BufferedWriter.writelines`."""
        self._writer.writelines(data)

    def write_file(
        self, file: object, offset: int = 0, count: int | None = None, *, thread: bool = False
    ) -> None:
        """:meth:`BufferedWriter.write_file`."""
        self._writer.write_file(file, offset, count, thread=thread)

    @contextmanager
    def corked(self) -> Iterator[None]:
        """:meth:`BufferedWriter.corked`."""
        with self._writer.corked():
            yield

    async def drain(self) -> None:
        """:meth:`BufferedWriter.drain`."""
        await self._writer.drain()

    async def flush(self) -> None:
        """:meth:`BufferedWriter.flush`."""
        await self._writer.flush()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """:meth:`BufferedWriter.run`: the sender task."""
        await self._writer.run(task_status=task_status)

    async def send_all(self, data: BytesLike) -> None:
        """:meth:`BufferedWriter.send_all`."""
        await self._writer.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """:meth:`BufferedWriter.wait_send_all_might_not_block`."""
        await self._writer.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """:meth:`BufferedWriter.send_eof`."""
        await self._writer.send_eof()

    async def aclose(self) -> None:
        """:meth:`BufferedWriter.aclose`; the bytes received and not read are
        discarded."""
        self._reader._rbuf.clear()
        await self._writer.aclose()

    def set_water_marks(self, high: int | None = None, low: int | None = None) -> None:
        """:meth:`BufferedWriter.set_water_marks`."""
        self._writer.set_water_marks(high, low)

    def statistics(self) -> WriterStatistics:
        """:meth:`BufferedWriter.statistics`."""
        return self._writer.statistics()

    @property
    def high_water(self) -> int:
        """:attr:`BufferedWriter.high_water`."""
        return self._writer.high_water

    @property
    def low_water(self) -> int:
        """:attr:`BufferedWriter.low_water`."""
        return self._writer.low_water

    @property
    def max_send_size(self) -> int:
        """:attr:`BufferedWriter.max_send_size`."""
        return self._writer.max_send_size

    @property
    def buffered(self) -> int:
        """:attr:`BufferedWriter.buffered`."""
        return self._writer.buffered

    @property
    def need_drain(self) -> bool:
        """:attr:`BufferedWriter.need_drain`."""
        return self._writer.need_drain

    @property
    def max_buffer(self) -> int | None:
        """:attr:`BufferedWriter.max_buffer`."""
        return self._writer.max_buffer

    @property
    def stalled_for(self) -> float:
        """:attr:`BufferedWriter.stalled_for`."""
        return self._writer.stalled_for

    @property
    def state(self) -> WriterState:
        """:attr:`BufferedWriter.state`."""
        return self._writer.state

    @property
    def failure(self) -> trio.BrokenResourceError | None:
        """:attr:`BufferedWriter.failure`."""
        return self._writer.failure
