"""Context managers that run a writer's sender task in a nursery of their own."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeVar, final

import trio

from ._conflate import ConflatingWriter
from ._stream import BufferedStream
from ._writer import BufferedWriter

if TYPE_CHECKING:
    import anyio.abc
    from typing_extensions import Unpack

    from ._options import WriterOptions

if sys.version_info < (3, 11):  # pragma: no cover
    # trio itself depends on the backport on these Pythons.
    from exceptiongroup import BaseExceptionGroup


class _Owner(Protocol):
    """A writer with a background task (``run``) and a graceful ``aclose``."""

    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...

    async def aclose(self) -> None: ...


_W = TypeVar("_W", bound=_Owner)
_T = TypeVar("_T")


@final
class _EnterOnce(AbstractAsyncContextManager[_T]):
    """What an ``open_*`` helper returns: its context manager, which can be
    entered once; entering it again raises a clear :exc:`RuntimeError`
    (rather than ``contextlib``'s ``AttributeError``), before anything
    happens."""

    __slots__ = ("_entered", "_manager", "_opener")

    def __init__(self, manager: AbstractAsyncContextManager[_T], opener: str) -> None:
        self._manager = manager
        self._opener = opener
        self._entered = False

    async def __aenter__(self) -> _T:
        if self._entered:
            raise RuntimeError(
                f"this {self._opener}(...) context manager can only be entered once; "
                f"make a new one with {self._opener}(...)"
            )
        self._entered = True
        return await self._manager.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._manager.__aexit__(exc_type, exc, traceback)


#: How the writers' :exc:`trio.BrokenResourceError` says that their task
#: died of a :exc:`BaseException` (``KeyboardInterrupt``...), which is
#: then in the same nursery group ("the writer's sender task was
#: interrupted", "the conflating writer's feeder task was interrupted").
_INTERRUPTED = " task was interrupted"


def _follows_from(error: BaseException, root: BaseException) -> bool:
    """Whether *error* is only a consequence of *root*: a
    :exc:`trio.BrokenResourceError` chained to it (``__cause__`` or
    ``__context__``, at any depth), or saying the task was interrupted."""
    if not isinstance(error, trio.BrokenResourceError):
        return False
    if _INTERRUPTED in str(error):
        return True
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if link is root:
            return True
        seen.add(id(link))
        link = link.__cause__ if link.__cause__ is not None else link.__context__
    return False


def _raise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Re-raise the one exception inside the nursery's *group* as itself, or the group.

    The nursery wraps even a single error; the user asked for none of that
    wrapping.  A group the block raised itself comes out as that group.
    When the block and the writer's task were both cancelled (an outer
    cancel scope), the group holds nothing but :exc:`trio.Cancelled`
    exceptions: one of them comes out, as a checkpoint would raise it.
    When one error (a ``KeyboardInterrupt`` in the wrapped stream's
    ``send_all``, say) comes with :exc:`trio.BrokenResourceError` errors that
    are only its consequences (the block's ``flush()`` finding the sender
    dead), that root error comes out, as itself.
    """
    exceptions = group.exceptions
    if len(exceptions) > 1 and all(type(exc) is trio.Cancelled for exc in exceptions):
        exceptions = exceptions[:1]
    if len(exceptions) > 1:
        roots = [exc for exc in exceptions if not isinstance(exc, trio.BrokenResourceError)]
        if len(roots) == 1 and all(
            exc is roots[0] or _follows_from(exc, roots[0]) for exc in exceptions
        ):
            exceptions = (roots[0],)
    if len(exceptions) == 1:
        exc = exceptions[0]
        # Raising it here would record the group as its __context__ (and show
        # "during handling of ExceptionGroup" in tracebacks); keep its own.
        context = exc.__context__
        try:
            raise exc
        finally:
            exc.__context__ = context
            del exc, group
    raise group


async def _close_forcefully(writer: _Owner) -> None:
    """Close *writer* at once, as :func:`trio.aclose_forcefully` does, raising nothing.

    The caller has an exception of its own to report, so neither a close
    failure (any :exc:`Exception`: the wrapped stream's ``aclose()`` raising
    :exc:`OSError`, say) nor a Cancelled from the close (the sender dying
    makes the nursery cancel us mid-close) is raised over it: it is dropped,
    not attached to the caller's exception.  A pending cancellation is
    re-delivered at the next checkpoint.  A :exc:`KeyboardInterrupt` or
    :exc:`SystemExit` from the close still propagates.
    """
    with suppress(Exception, trio.Cancelled), trio.CancelScope() as forceful:
        forceful.cancel()
        await writer.aclose()


@asynccontextmanager
async def running(writer: _W) -> AsyncIterator[_W]:
    """Run *writer*'s task in a nursery of its own for the block, then close it.

    A graceful close on a normal exit; a forceful one (and the block's error,
    unchanged) if the block raises: a failure of that close is dropped, never
    raised over the block's error nor attached to it.  A single error comes
    out as itself.

    The writer owns its stream (or file) from the moment it was made, so
    every way out closes it, including a start that fails or is cancelled
    (entered in a cancelled scope, say): then it is closed forcefully and
    the start's exception propagates.
    """
    try:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(writer.run)
            except BaseException:
                await _close_forcefully(writer)
                raise
            try:
                yield writer
            except BaseException:
                # The block failed: do not make the error wait on a peer that
                # may never read.  Close at once; the block's own exception
                # is the one to report.
                await _close_forcefully(writer)
                raise
            await writer.aclose()
    except BaseExceptionGroup as group:
        _raise_single(group)


def open_buffered_writer(
    stream: trio.abc.SendStream | anyio.abc.ByteSendStream,
    **options: Unpack[WriterOptions],
) -> AbstractAsyncContextManager[BufferedWriter]:
    """Wrap *stream* in a :class:`BufferedWriter` whose sender runs while the block does.

    ::

        async with open_buffered_writer(stream) as writer:
            writer.write(b"hello")
            await writer.drain()

    The sender task runs in a nursery of this context manager's own.  On a
    normal exit the writer is closed gracefully (:meth:`~BufferedWriter.aclose`:
    flush, then close *stream*), which waits for the peer to take the bytes.
    If the block raises, the writer is closed at once instead, discarding
    what was not yet sent, and the block's exception propagates unchanged:
    if that close fails too (the wrapped stream's ``aclose()`` raising, say),
    its error is dropped, not raised over the block's nor attached to it.

    The writer owns *stream* from this call on: every way out of the block
    closes it, including a start of the sender that fails or is cancelled
    (entering in an already-cancelled scope), which closes it forcefully
    (as :func:`trio.aclose_forcefully` would) and raises the start's
    exception.  Bad keyword arguments raise here, before the writer exists,
    and leave *stream* alone.

    Errors come out as themselves, not wrapped in an :exc:`ExceptionGroup`:
    ``except trio.BrokenResourceError:`` around the ``async with`` works.
    An error that broke the writer comes out alone, without the
    :exc:`trio.BrokenResourceError` it caused in the block: a
    ``KeyboardInterrupt`` raised by *stream*'s ``send_all`` while the block
    waits in ``flush()`` comes out as itself, so ``except
    KeyboardInterrupt:`` works.  Only several independent errors come out as
    a group.

    The keyword arguments are :class:`BufferedWriter`'s, checked right away.
    *stream* may also be an ``anyio.abc.ByteSendStream``, on anyio's trio
    backend.

    The context manager can be entered once: entering it again (after the
    block, or inside it) raises :exc:`RuntimeError`; call
    ``open_buffered_writer()`` again for a new one.

    Raises:
      TypeError: *stream* is neither a trio nor an anyio send stream.
      RuntimeError: it is an anyio stream, and this is not a trio task.
    """
    return _EnterOnce(running(BufferedWriter(stream, **options)), "open_buffered_writer")


def open_buffered_stream(
    stream: trio.abc.Stream | anyio.abc.ByteStream,
    **options: Unpack[WriterOptions],
) -> AbstractAsyncContextManager[BufferedStream]:
    """Wrap a two-way *stream* in a :class:`BufferedStream` whose sender runs
    while the block does.

    *stream* may also be an ``anyio.abc.ByteStream``, on anyio's trio
    backend.  The same as :func:`open_buffered_writer` in every other respect.
    """
    return _EnterOnce(running(BufferedStream(stream, **options)), "open_buffered_stream")


def open_conflating_writer(
    writer: BufferedWriter | BufferedStream, *, max_keys: int | None = None
) -> AbstractAsyncContextManager[ConflatingWriter]:
    """Put a :class:`ConflatingWriter` in front of *writer*, with its feeder
    task running while the block does.

    ::

        async with open_buffered_stream(sock) as stream:
            async with open_conflating_writer(stream) as latest:
                latest.write_latest(b"EURUSD", frame)

    *writer*'s sender must already be running.  On a normal exit the
    waiting frames are handed to *writer* and *writer* is closed
    (:meth:`ConflatingWriter.aclose`); if the block raises, both are closed
    at once and the block's exception propagates unchanged, as with
    :func:`open_buffered_writer`.  It can be entered once, as that one.

    Raises:
      TypeError: *writer* is not a :class:`BufferedWriter` or
          :class:`BufferedStream`.
      ValueError: *max_keys* is not a positive int or None.
    """
    return _EnterOnce(
        running(ConflatingWriter(writer, max_keys=max_keys)), "open_conflating_writer"
    )
