"""A two-way stream whose sending side goes through a buffered writer."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import trio

from ._writer import _BufferedSendBase

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._core import WriterOptions


@final
class BufferedStream(_BufferedSendBase, trio.abc.HalfCloseableStream):
    """A :class:`trio.abc.Stream` wrapper: reads pass through, writes are buffered.

    It has every method of :class:`BufferedWriter` (``write``, ``drain``,
    ``flush``, ``corked``, ``run``...) and implements trio's stream
    interface itself, so it can be handed to code that expects a plain trio
    stream (an h11 loop, trio-websocket, an :class:`trio.SSLStream` on top):

    * ``send_all`` = :meth:`~BufferedWriter.write` then wait as
      :meth:`~BufferedWriter.drain` does;
    * ``receive_some`` goes straight to the wrapped stream;
    * ``send_eof`` flushes, then calls the wrapped stream's ``send_eof``; it
      raises :exc:`TypeError` if the wrapped stream is not a
      :class:`trio.abc.HalfCloseableStream` (an :class:`trio.SSLStream`, say);
    * ``aclose`` flushes, then closes the wrapped stream.

    The constructor takes the same keyword arguments as :class:`BufferedWriter`.
    Usually made with :func:`open_buffered_stream`, which also runs the sender.
    """

    __slots__ = ("_transport",)

    def __init__(
        self,
        stream: trio.abc.Stream,
        **options: Unpack[WriterOptions],
    ) -> None:
        if not isinstance(stream, trio.abc.Stream):
            raise TypeError(
                f"expected a trio.abc.Stream to wrap, not {type(stream).__name__!r} "
                "(wrap a one-way SendStream with BufferedWriter)"
            )
        super().__init__(stream, **options)
        self._transport = stream

    @property
    def transport_stream(self) -> trio.abc.Stream:
        """The wrapped stream."""
        return self._transport

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive from the wrapped stream: exactly its ``receive_some``."""
        # A read ends a turn of a request/response exchange: the next write
        # may go straight to the socket again (see BufferedWriter).
        self._direct_used = False
        return await self._transport.receive_some(max_bytes)
