"""anyio byte streams seen as trio streams, for code running on anyio's trio backend.

Much of the trio ecosystem is written against anyio (httpx/httpcore,
starlette, many database drivers), whose streams have their own interface:
``send(item)``, ``receive(max_bytes)`` that raises ``anyio.EndOfStream`` at
end-of-file, ``send_eof()``, ``aclose()``, and anyio's own exceptions.  On
anyio's trio backend they run on trio's scheduler, so the writer can drive
them, through the adapters below: :func:`as_send_stream` and
:func:`as_stream` turn an ``anyio.abc.ByteSendStream`` or
``anyio.abc.ByteStream`` into a :class:`trio.abc.SendStream` or
:class:`trio.abc.Stream`, and anything that is neither a trio stream nor an
anyio one into a :exc:`TypeError` that names both.

anyio is not a dependency.  It is imported only to adapt an object that is
not a trio stream, and only if the program has imported it already (an
anyio stream cannot exist otherwise): ``sys.modules`` is looked at, not
searched.

What an adapter does:

* ``send_all`` calls ``send``; ``receive_some`` calls ``receive`` and returns
  ``b""`` where anyio raises ``EndOfStream``; ``send_eof`` and ``aclose`` call
  anyio's, and ``wait_send_all_might_not_block`` is a checkpoint (anyio has
  no such wait; trio allows it to return early).
* anyio's ``BrokenResourceError``, ``ClosedResourceError`` and
  ``BusyResourceError`` come out as trio's, the original as ``__cause__``.
  ``aclose`` swallows the first two, as :class:`trio.SSLStream` does: the
  resource is closed all the same, and a peer that left is no error there.
* Concurrent calls are refused with :exc:`trio.BusyResourceError` (trio's
  contract), and every method is a checkpoint, as trio requires, also
  where anyio's is not (an empty send, ``send_eof`` on a socket, ``aclose``
  on a socket before anyio 4.16).
* anyio types ``send``'s argument as ``bytes``.  The writer hands over
  bytearrays and memoryviews it may reuse once ``send_all`` returns, so they
  are copied to ``bytes``, except for anyio's own socket and TLS streams,
  which are known to be done with them by then.

The writer's socket fast paths (direct sends, ``TCP_NOTSENT_LOWAT``) apply
to a :class:`trio.SocketStream` only; an anyio socket goes through its
``send``, one per coalesced batch.
"""

from __future__ import annotations

import importlib
import socket
import sys
from contextlib import suppress
from typing import TYPE_CHECKING, NoReturn, final

import trio
from trio.lowlevel import checkpoint

from ._buffers import BytesLike
from ._conflict import ConflictDetector

if TYPE_CHECKING:
    from types import ModuleType

    import anyio.abc

#: What ``receive_some()`` asks anyio for when no size is given (anyio's default).
DEFAULT_ANYIO_RECEIVE_SIZE = 65536


def _anyio() -> ModuleType | None:
    """anyio if the program has imported it, else None (it is never imported here)."""
    anyio = sys.modules.get("anyio")
    if anyio is not None:
        # A submodule of a package already loaded (anyio loads it lazily).
        importlib.import_module("anyio.abc")
    return anyio


def _raise_translated(exc: BaseException, anyio: ModuleType) -> NoReturn:
    """Raise trio's counterpart of anyio's broken-, closed- or busy-resource error *exc*."""
    if isinstance(exc, anyio.BrokenResourceError):
        raise trio.BrokenResourceError(*exc.args) from exc
    if isinstance(exc, anyio.ClosedResourceError):
        raise trio.ClosedResourceError(*exc.args) from exc
    raise trio.BusyResourceError(*exc.args) from exc


class _AnyioSendStream(trio.abc.SendStream):
    """A :class:`trio.abc.SendStream` that sends on an ``anyio.abc.ByteSendStream``."""

    __slots__ = (
        "_anyio",
        "_by_reference",
        "_closed",
        "_eof_sent",
        "_errors",
        "_send_conflict",
        "_stream",
    )

    def __init__(self, stream: anyio.abc.ByteSendStream, anyio: ModuleType) -> None:
        self._stream = stream
        self._anyio = anyio
        # The exceptions to translate (anything else propagates as it is).
        self._errors = (
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.BusyResourceError,
        )
        self._by_reference = isinstance(stream, _known_to_copy(anyio))
        self._closed = False
        self._eof_sent = False
        self._send_conflict = ConflictDetector("another task is already sending on this stream")

    @property
    def anyio_stream(self) -> anyio.abc.ByteSendStream:
        """The anyio stream adapted."""
        return self._stream

    async def send_all(self, data: BytesLike) -> None:
        """Send *data* with anyio's ``send``; a full checkpoint."""
        with self._send_conflict:
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
            if self._eof_sent:
                raise trio.ClosedResourceError("the end-of-file was sent")
            if not data:
                await checkpoint()
                return
            item = data if self._by_reference or type(data) is bytes else bytes(data)
            try:
                await self._stream.send(item)  # type: ignore[arg-type]
            except self._errors as exc:
                _raise_translated(exc, self._anyio)

    async def wait_send_all_might_not_block(self) -> None:
        """A checkpoint: anyio has no such wait, and trio allows returning early."""
        with self._send_conflict:
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
            await checkpoint()

    async def aclose(self) -> None:
        """Close the anyio stream (as ``aclose`` does, also when cancelled).

        anyio's broken- and closed-resource errors are swallowed: the stream
        is closed either way (trio's :class:`trio.SSLStream` does the same
        when its peer has gone before the close_notify).  A checkpoint after
        the close, as trio's ``SocketStream.aclose``: anyio's is not one on
        every stream (its trio socket's was not before anyio 4.16).
        """
        self._closed = True
        try:
            with suppress(self._anyio.BrokenResourceError, self._anyio.ClosedResourceError):
                await self._stream.aclose()
        except self._anyio.BusyResourceError as exc:
            _raise_translated(exc, self._anyio)
        await checkpoint()


class _AnyioStream(_AnyioSendStream, trio.abc.Stream):
    """A :class:`trio.abc.Stream` on an ``anyio.abc.ByteStream`` that cannot half-close."""

    __slots__ = ("_receive_conflict",)

    _stream: anyio.abc.ByteStream

    def __init__(self, stream: anyio.abc.ByteStream, anyio: ModuleType) -> None:
        super().__init__(stream, anyio)
        self._receive_conflict = ConflictDetector(
            "another task is already receiving on this stream"
        )

    @property
    def anyio_stream(self) -> anyio.abc.ByteStream:
        """The anyio stream adapted."""
        return self._stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive with anyio's ``receive``: ``b""`` at end-of-file."""
        if max_bytes is None:
            max_bytes = DEFAULT_ANYIO_RECEIVE_SIZE
        elif max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        with self._receive_conflict:
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
            try:
                return await self._stream.receive(max_bytes)
            except self._anyio.EndOfStream:
                return b""
            except self._errors as exc:
                _raise_translated(exc, self._anyio)


@final
class _AnyioHalfCloseableStream(_AnyioStream, trio.abc.HalfCloseableStream):
    """A :class:`trio.abc.HalfCloseableStream` on an ``anyio.abc.ByteStream``."""

    __slots__ = ()

    async def send_eof(self) -> None:
        """anyio's ``send_eof``; a full checkpoint.  Again, a checkpoint only."""
        with self._send_conflict:
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
            await checkpoint()
            if self._eof_sent:
                return
            self._eof_sent = True
            try:
                await self._stream.send_eof()
            except self._errors as exc:
                _raise_translated(exc, self._anyio)


def _known_to_copy(anyio: ModuleType) -> tuple[type, ...]:
    """anyio's stream classes whose ``send`` is done with its argument when it
    returns (a socket's sends it; TLS encrypts it into a buffer of its own)."""
    known: tuple[type, ...] = (anyio.abc.SocketStream,)
    tls = sys.modules.get("anyio.streams.tls")
    if tls is not None:
        known += (tls.TLSStream,)
    return known


def _cannot_half_close(stream: object) -> bool:
    """Whether *stream* is an anyio stream whose ``send_eof`` always raises."""
    tls = sys.modules.get("anyio.streams.tls")
    return tls is not None and isinstance(stream, tls.TLSStream)


def _check_trio_backend(stream: object) -> None:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        raise RuntimeError(
            f"cannot wrap the anyio {type(stream).__name__}: trio_bufwriter runs on trio, "
            "and this is not a trio task.  Run the program with anyio's trio backend "
            "(anyio.run(main, backend='trio'), or trio.run), or on asyncio use asyncio's "
            "own StreamWriter (write() then await drain())"
        ) from None


def _adapt(stream: object, *, two_way: bool) -> trio.abc.SendStream | None:
    """An adapter for the anyio stream *stream*, or None if it is not one."""
    anyio = _anyio()
    if anyio is None:
        return None
    if isinstance(stream, anyio.abc.ByteStream):
        _check_trio_backend(stream)
        if _cannot_half_close(stream):
            return _AnyioStream(stream, anyio)
        return _AnyioHalfCloseableStream(stream, anyio)
    if not two_way and isinstance(stream, anyio.abc.ByteSendStream):
        _check_trio_backend(stream)
        return _AnyioSendStream(stream, anyio)
    return None


def _not_a_stream(stream: object, expected: str, hint: str = "") -> TypeError:
    """The TypeError for wrapping *stream*, which is no stream we know; *hint*
    ends the message unless *stream* is a socket, which gets its own."""
    message = f"expected {expected}, not {type(stream).__name__!r}"
    if isinstance(stream, trio.socket.SocketType):
        hint = ": a socket is not a stream; wrap trio.SocketStream(sock)"
    elif isinstance(stream, socket.socket):
        hint = (
            ": a socket is not a stream; wrap "
            "trio.SocketStream(trio.socket.from_stdlib_socket(sock))"
        )
    return TypeError(message + hint)


def as_send_stream(stream: object) -> trio.abc.SendStream:
    """*stream* if it is a trio send stream, an adapter if it is an anyio one.

    Raises:
      TypeError: it is neither.
      RuntimeError: it is an anyio stream, and this is not a trio task (anyio
          on its asyncio backend, or no event loop at all).
    """
    if isinstance(stream, trio.abc.SendStream):
        return stream
    adapter = _adapt(stream, two_way=False)
    if adapter is None:
        raise _not_a_stream(
            stream,
            "a trio.abc.SendStream to wrap (or an anyio.abc.ByteSendStream, on "
            "anyio's trio backend)",
        )
    return adapter


def as_stream(stream: object) -> trio.abc.Stream:
    """*stream* if it is a two-way trio stream, an adapter if it is an anyio one.

    Raises:
      TypeError: it is neither.
      RuntimeError: as :func:`as_send_stream`.
    """
    if isinstance(stream, trio.abc.Stream):
        return stream
    adapter = _adapt(stream, two_way=True)
    if adapter is None:
        raise _not_a_stream(
            stream,
            "a trio.abc.Stream to wrap (or an anyio.abc.ByteStream, on anyio's trio backend)",
            " (wrap a one-way SendStream with BufferedWriter)",
        )
    assert isinstance(adapter, trio.abc.Stream)
    return adapter
