"""A two-way stream whose sending side goes through a buffered writer.

Over a :class:`trio.SocketStream` it also knows the shape of a
request/response exchange, and spends the scheduler's time where a server
with many connections gains from it.  A *turn* runs from one receive from
the socket to the next: the task receives a request (or a batch of
pipelined ones) and writes the replies.  When the next receive starts, the
turn is over, so:

* what the turn wrote and is still queued leaves now, in one send, without
  waiting for the sender task to be scheduled;
* if the turn sent anything, the task yields *before* it looks at the
  socket, not after.  The other connections run meanwhile, and by the time
  this one looks, the peer has had the time to read the reply and send its
  next request: one ``recv`` that finds it, instead of one that finds
  nothing and a wait for readiness (``epoll_ctl``, a park, a wake, a second
  ``recv``).  trio's own ``receive_some`` yields after a receive that found
  data; this one yields exactly once per call either way, before or after;
* if the turn wrote several pieces (pipelined requests, answered one write
  each), the next turn's first write waits for the end of the turn too,
  instead of going to the socket alone, so that its whole batch leaves in
  one send.  A turn that writes one piece (a reply, a corked response) goes
  straight to the kernel as the write is made, as over any socket.

Every read receives through the same path (``_receive_more``):
``receive_some``, and ``receive_exactly``, ``receive_until`` and
``receive_line`` when the buffer of ``_reader.py`` cannot answer them.  A
read the buffer answers does not look at the socket, and does not end the
turn: the replies to a batch of pipelined requests parsed from one receive
leave together, when the reads run out of bytes.

These were measured side by side with plain trio, asyncio and uvloop under
``redis-benchmark`` and ``wrk`` (``benchmarks/servers``; the performance
page of the docs has the figures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from ._anyio import as_stream
from ._frames import FrameReader
from ._reader import _BufferedReads
from ._receive_buffer import ReceiveBuffer
from ._socket import DEFAULT_RECEIVE_SIZE, SocketSource, socket_source
from ._writer import _BufferedSendBase

if TYPE_CHECKING:
    import anyio.abc
    from typing_extensions import Unpack

    from ._core import WriterOptions


@final
class BufferedStream(_BufferedSendBase, _BufferedReads, trio.abc.HalfCloseableStream):
    """A :class:`trio.abc.Stream` wrapper: buffered writes, and reads for protocol code.

    It has every method of :class:`BufferedWriter` (``write``, ``drain``,
    ``flush``, ``corked``, ``run``...) and implements trio's stream
    interface itself, so it can be handed to code that expects a plain trio
    stream (an h11 loop, trio-websocket, an :class:`trio.SSLStream` on top):

    * ``send_all`` = :meth:`~BufferedWriter.write` then wait as
      :meth:`~BufferedWriter.drain` does;
    * ``receive_some`` returns what earlier reads left in the buffer, or
      receives from the wrapped stream (see the turns below);
    * :meth:`receive_exactly`, :meth:`receive_until` and
      :meth:`receive_line` read from the same buffer (the reads of
      :class:`BufferedReader`, with the same contract);
    * ``send_eof`` flushes, then calls the wrapped stream's ``send_eof``; it
      raises :exc:`TypeError` if the wrapped stream is not a
      :class:`trio.abc.HalfCloseableStream` (an :class:`trio.SSLStream`, say);
    * ``aclose`` flushes, then closes the wrapped stream.

    Over a :class:`trio.SocketStream`, every receive from the socket ends
    the current *turn* of the exchange: the bytes written since the last
    receive that are still queued are handed to the socket first, and the
    task yields to the scheduler once, before looking at the socket if
    anything was sent since the last receive, after a receive that found
    data otherwise.  A read the buffer answers does not receive, so it does
    not end the turn: the replies to pipelined requests leave together.

    *stream* is a :class:`trio.abc.Stream`, or, on anyio's trio backend, an
    ``anyio.abc.ByteStream`` (see "anyio on the trio backend").  The
    constructor takes the same keyword arguments as :class:`BufferedWriter`.
    Usually made with :func:`open_buffered_stream`, which also runs the sender.
    """

    __slots__ = ("_frame_reader", "_rbuf", "_source", "_transport")

    def __init__(
        self,
        stream: trio.abc.Stream | anyio.abc.ByteStream,
        **options: Unpack[WriterOptions],
    ) -> None:
        # An anyio stream gets an adapter (see _anyio.py); anything else
        # that is not a trio stream, a TypeError.
        stream = as_stream(stream)
        super().__init__(stream, **options)
        self._transport = stream
        self._source: SocketSource | None = socket_source(stream)
        self._rbuf = ReceiveBuffer()
        self._frame_reader = FrameReader()

    @property
    def transport_stream(self) -> trio.abc.Stream:
        """The wrapped stream."""
        return self._transport

    async def aclose(self) -> None:
        """What :meth:`BufferedWriter.aclose` does; the bytes received and
        not read yet are discarded."""
        self._rbuf.clear()
        await super().aclose()

    async def _receive_more(self, max_bytes: int | None) -> bytes | bytearray:
        """Receive from the wrapped stream: what :meth:`receive_some` does
        when nothing is buffered (the caller has set ``_rbuf.reading``).

        It ends the current turn of the exchange, over a
        :class:`trio.SocketStream`: the bytes written since the last receive
        that are still queued are handed to the socket first (in one send,
        if the sender task is not in the middle of one), and the task yields
        to the scheduler once, before looking at the socket if anything was
        sent since the last receive, after a receive that found data
        otherwise (see the module docstring for why).  Over other streams it
        is the wrapped stream's ``receive_some``.  It is a checkpoint.
        Cancelled, it has received nothing.
        """
        sent = self._end_turn()
        source = self._source
        if source is None:
            return await self._transport.receive_some(max_bytes)
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        await checkpoint_if_cancelled()
        if sent:
            # Let the reply reach the peer, and its answer come back,
            # while the other tasks run.
            await cancel_shielded_checkpoint()
            data = source.try_receive(max_bytes)
        else:
            data = source.try_receive(max_bytes)
            if data is not None:
                await cancel_shielded_checkpoint()
        while data is None:
            # A full checkpoint: cancelled here, nothing was received.
            await trio.lowlevel.wait_readable(source.socket)
            data = source.try_receive(max_bytes)
        return data

    def _end_turn(self) -> bool:
        """A receive starts: send what this turn wrote; return whether any
        bytes were sent since the last receive."""
        if self._buf or self._segments:
            self._push_quietly()
        pieces = self._write_calls - self._folded
        self._turn_batched = pieces - self._turn_mark >= 2
        self._turn_mark = pieces
        sent = self._sent != self._turn_sent
        self._turn_sent = self._sent
        return sent
