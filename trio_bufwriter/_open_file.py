"""open_positional_writer: open (or borrow) a file and run a PositionalWriter on it."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import TYPE_CHECKING

import trio

from ._open import _EnterOnce, running
from ._positional import DEFAULT_POSITIONAL_HIGH_WATER, PositionalWriter

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

# File systems that cannot preallocate say so with one of these; a sparse
# file is then the best there is, not an error.
_NO_FALLOCATE = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


def _preallocate(fd: int, size: int) -> None:
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:  # macOS, Windows: the file stays sparse
        return
    try:
        fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in _NO_FALLOCATE:
            raise


def _open(path: str | os.PathLike[str], create: bool, truncate: bool) -> int:
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    if create:
        flags |= os.O_CREAT
    if truncate:
        flags |= os.O_TRUNC
    return os.open(path, flags, 0o666)


def open_positional_writer(
    file: str | os.PathLike[str] | int,
    *,
    create: bool = True,
    truncate: bool = False,
    preallocate: int | None = None,
    high_water: int = DEFAULT_POSITIONAL_HIGH_WATER,
    low_water: int | None = None,
    fsync_on_close: bool = False,
    fdatasync: bool = False,
) -> AbstractAsyncContextManager[PositionalWriter]:
    """Open *file* for positional writes, and run a :class:`PositionalWriter` on it.

    ::

        async with open_positional_writer("out.bin", preallocate=size) as writer:
            # in each of any number of tasks, for each piece:
            await writer.drain()            # wait while too much is pending
            writer.write_at(offset, piece)  # queue it; never blocks

    Args:
      file: A path, opened write-only (never truncated unless asked, so
        pieces can be added to an existing file), or a file descriptor, which
        is borrowed: written to, and left open.
      create: Create the file if it does not exist (mode ``0o666`` less the
        umask).
      truncate: Empty the file first.
      preallocate: Reserve this many bytes with ``posix_fallocate`` before
        writing, so that a file written out of order is not fragmented and a
        full disk is found out at once (``ENOSPC`` raised here).  Skipped
        where the platform or file system cannot do it.
      high_water, low_water, fsync_on_close, fdatasync: As for
        :class:`PositionalWriter`.

    The owner task runs in a nursery of the context manager's own.  On a
    normal exit the writer is closed gracefully (:meth:`PositionalWriter.aclose`:
    every pending write is written, then the optional ``fsync``).  If the
    block raises, pieces not yet handed to a worker thread are discarded, the
    one in flight (if any) finishes, the descriptor is closed, and the
    block's exception propagates unchanged (a failure of that close is
    dropped, as with :func:`open_buffered_writer`; so is one closing the
    descriptor after a failed preallocation).  A descriptor opened here from a
    path is closed on every way out, including an entry that is cancelled
    or fails before the block runs; one passed in is never closed.  A single error comes out as
    itself, not wrapped in an :exc:`ExceptionGroup`.  The context manager
    can be entered once, as :func:`open_buffered_writer`'s.

    Raises:
      ValueError: *file* is a descriptor in append mode (``O_APPEND``),
        when called (the descriptor is left open).
      OSError: opening or preallocating the file failed.
      PositionalWriteError: a write failed and nothing in the block had
        reported it.
    """
    if isinstance(file, bool):
        raise TypeError("file must be a path or a file descriptor, not a bool")
    make_writer = partial(
        PositionalWriter,
        high_water=high_water,
        low_water=low_water,
        fsync_on_close=fsync_on_close,
        fdatasync=fdatasync,
    )
    # Checks the writer's arguments (a descriptor's mode too) before anything is opened.
    make_writer(file if isinstance(file, int) else -1)
    if preallocate is not None and preallocate < 0:
        raise ValueError(f"preallocate must not be negative, got {preallocate}")
    return _EnterOnce(
        _open_and_run(file, create, truncate, preallocate, make_writer), "open_positional_writer"
    )


@asynccontextmanager
async def _open_and_run(
    file: str | os.PathLike[str] | int,
    create: bool,
    truncate: bool,
    preallocate: int | None,
    make_writer: Callable[..., PositionalWriter],
) -> AsyncIterator[PositionalWriter]:
    owned = not isinstance(file, int)
    if isinstance(file, int):
        fd = file
    else:
        fd = await trio.to_thread.run_sync(_open, file, create, truncate)
    try:
        if preallocate:
            await trio.to_thread.run_sync(_preallocate, fd, preallocate)
    except BaseException:
        if owned:
            with suppress(OSError):  # the preallocation's error is the one to report
                os.close(fd)
        raise
    writer = make_writer(fd, close_fd=owned)
    async with running(writer):
        yield writer
