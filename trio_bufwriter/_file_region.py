"""A region of an open file, queued in a writer like a large ``bytes``.

:func:`file_region` checks ``write_file()``'s arguments and makes a
:class:`FileRegion` that owns a duplicate of the file's descriptor
(``os.dup``), so the caller may close the file as soon as the call returns.
The descriptor is closed when the region has been sent or is discarded
(:meth:`FileRegion.close`).  The sinks send it (``_sink.py``): ``sendfile(2)``
on a socket, chunks read with ``pread`` and ``send_all`` elsewhere.

A region's bytes count as held (``buffered``, the water marks) but not
against ``max_buffer``: they are on disk, not in memory.
"""

from __future__ import annotations

import io
import os
import stat
from typing import final

import trio

#: The largest chunk the fallback reads at once (``min`` with ``max_send_size``).
FALLBACK_CHUNK = 256 * 1024


class RegionError(Exception):
    """A region could not be sent whole: the writer breaks with this message."""


@final
class FileRegion:
    """*count* bytes of a file from *offset*, through a descriptor it owns."""

    __slots__ = ("_busy", "_closing", "count", "fd", "offset", "read_until", "sent", "thread")

    def __init__(self, fd: int, offset: int, count: int, thread: bool) -> None:
        #: The duplicated descriptor, -1 once closed.
        self.fd = fd
        #: Where the next byte to send is in the file.
        self.offset = offset
        #: The region's size, and how much of it went out.
        self.count = count
        self.sent = 0
        #: Read the file in a worker thread, not in the event loop.
        self.thread = thread
        #: With *thread*: the file has been read ahead (into the page cache)
        #: up to this offset.
        self.read_until = offset
        self._busy = False
        self._closing = False

    def __len__(self) -> int:
        """The bytes not yet sent."""
        return self.count - self.sent

    def advance(self, size: int) -> None:
        """*size* more bytes went out."""
        self.offset += size
        self.sent += size

    def failure(self, what: str) -> RegionError:
        """The error for a region that stopped short, saying how much was sent."""
        return RegionError(
            f"write_file(): {what} after {self.sent} of the region's {self.count} bytes were sent"
        )

    def live_fd(self) -> int:
        """The descriptor, or :class:`RegionError` if the region was discarded."""
        if self.fd < 0:
            raise self.failure("the region was discarded")
        return self.fd

    async def read_in_thread(self, size: int) -> bytes:
        """``pread`` *size* bytes at :attr:`offset` in a worker thread."""
        fd = self.lend()
        try:
            return await trio.to_thread.run_sync(os.pread, fd, size, self.offset)
        except OSError as exc:
            raise self.failure(f"reading the file failed ({exc})") from exc
        finally:
            self.give_back()

    def read_here(self, size: int) -> bytes:
        """``pread`` *size* bytes at :attr:`offset`, in the event loop."""
        try:
            return os.pread(self.live_fd(), size, self.offset)
        except OSError as exc:
            raise self.failure(f"reading the file failed ({exc})") from exc

    def lend(self) -> int:
        """The descriptor, for a worker thread: :meth:`close` waits for :meth:`give_back`."""
        if self.fd < 0:
            raise self.failure("the region was discarded")
        self._busy = True
        return self.fd

    def give_back(self) -> None:
        """The worker thread is done with the descriptor."""
        self._busy = False
        if self._closing:
            self.close()

    def close(self) -> None:
        """Close the descriptor (later, if a worker thread is using it).  Idempotent."""
        if self._busy:
            self._closing = True
            return
        fd = self.fd
        if fd >= 0:
            self.fd = -1
            os.close(fd)

    def __del__(self) -> None:
        # A writer dropped without aclose() (it warns) must not leak the descriptor.
        if getattr(self, "fd", -1) >= 0 and not self._busy:
            os.close(self.fd)


def _write_only(fd: int) -> bool:
    """Whether *fd* is open for writing only (``pread`` and ``sendfile``
    would fail at send time, breaking the writer).  POSIX; elsewhere False."""
    try:
        import fcntl
    except ImportError:  # (Windows)
        return False
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY


def file_region(file: object, offset: int, count: int | None, thread: bool) -> FileRegion:
    """Check ``write_file()``'s arguments and return the region, its descriptor
    duplicated.  Nothing is opened unless every check passes.

    Raises:
      TypeError: *file* has no ``fileno()`` (or is open in text mode), or
          *offset*/*count*/*thread* has the wrong type.
      ValueError: *file* is closed, write-only or not a regular file,
          *offset* or *count* is negative, or the region reaches past the
          end of the file.
      OSError: ``os.dup`` failed (too many open files).
    """
    mode = getattr(file, "mode", None)
    if isinstance(file, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode):
        raise TypeError("write_file() needs a file opened in binary mode ('rb'), not text mode")
    fileno = getattr(file, "fileno", None)
    if not callable(fileno):
        raise TypeError(
            f"write_file() needs an open file with a fileno() (as open(path, 'rb') returns), "
            f"not {type(file).__name__!r}"
        )
    for name, value in (("offset", offset), ("count", count)):
        if value is not None and (type(value) is not int):
            raise TypeError(f"write_file() {name} must be an int, not {type(value).__name__!r}")
    if type(thread) is not bool:
        raise TypeError(f"write_file() thread must be a bool, not {type(thread).__name__!r}")
    if offset < 0:
        raise ValueError(f"write_file() offset must be >= 0, not {offset}")
    if count is not None and count < 0:
        raise ValueError(f"write_file() count must be >= 0, not {count}")
    try:
        fd = fileno()
    except io.UnsupportedOperation:
        raise TypeError(
            f"write_file() needs a file with a descriptor; this {type(file).__name__} has none"
        ) from None
    if type(fd) is not int:
        raise TypeError(f"write_file(): fileno() returned {type(fd).__name__!r}, not an int")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("write_file() sends regular files only (not a pipe, socket or device)")
    if _write_only(fd):
        raise ValueError(
            "write_file() needs a file open for reading ('rb' or 'r+b'); this one is write-only"
        )
    size = info.st_size
    if offset > size:
        raise ValueError(
            f"write_file() offset {offset} is beyond the end of the file ({size} bytes)"
        )
    if count is None:
        count = size - offset
    elif offset + count > size:
        raise ValueError(
            f"write_file() region of {count} bytes from offset {offset} reaches past "
            f"the end of the file ({size} bytes)"
        )
    return FileRegion(os.dup(fd), offset, count, thread)
