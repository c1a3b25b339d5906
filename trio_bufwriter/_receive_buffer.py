"""The receive buffer behind the reads (``receive_exactly``, ``receive_until``...).

Sans-IO, like h11's ``ReceiveBuffer``: bytes go in with :meth:`feed`, and
the ``take_*`` methods hand out what is already there or say that more is
needed; the reads in ``_reader.py`` do the receiving.

What it is built for: one receive of 64 KiB serving many small reads, and a
large message arriving in many small pieces, neither with quadratic copying.

* The unread bytes are ``data[pos:]``, always one contiguous object.  A
  read moves ``pos`` instead of deleting at the front, and when a read takes
  the last byte the buffer becomes ``b""`` again.
* A chunk fed into an empty buffer is kept as it is (no copy): every read
  from it is one slice.  A chunk fed after a few unread bytes (the start of
  a message cut by the receive) is joined to them in a new ``bytes``: a copy
  of at most twice the chunk, and the reads stay one slice each.
* Only when the unread bytes outgrow the chunk (a big message arriving in
  many pieces) do they go into a ``bytearray`` of the buffer's own, which
  later chunks are appended to, amortised O(1), as asyncio's
  ``StreamReader`` does: each byte is copied in once and out once, and a
  piece costs one append, whatever the message's size so far.
* A search for a delimiter is given where to start (``start``): the caller
  never rescans bytes it has already searched.
* The ``take_*`` methods only move ``pos``: they never replace ``data`` or
  change a byte of it (only :meth:`feed` and :meth:`clear` do).  So between
  two feeds, putting ``pos`` back makes what was taken unread again, which
  is how a frame decoder that needs more bytes gives them back
  (``_frames.py``).
"""

from __future__ import annotations

import operator
from typing import final

from ._buffers import byte_view

#: The default *max_bytes* of ``receive_until`` and ``receive_line``: as
#: asyncio's ``StreamReader`` limit, 64 KiB.
DEFAULT_MAX_LINE = 64 * 1024

#: What a read asks of the wrapped stream when the buffer runs short.
RECEIVE_SIZE = 64 * 1024

_CR = ord("\r")


def checked_size(value: object, name: str, minimum: int = 0) -> int:
    """*value* as a size of at least *minimum*, or the error for it.

    The one rule for the size arguments of every read (the awaited reads'
    and :class:`~trio_bufwriter.FrameReader`'s): an ``int``, or anything
    :func:`operator.index` takes, as trio's own reads do (so a ``bool`` is
    an int here too), at least *minimum*.  Callers test
    ``type(value) is not int or value < minimum`` and call this only then,
    before anything moves: the hot path stays that one test.

    Raises:
      TypeError: *value* is not an integer (a float, a str, None...).
      ValueError: it is less than *minimum*.
    """
    try:
        size = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__!r}") from None
    if size < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {size}")
    return size


def checked_delimiter(delimiter: object, what: str) -> bytes:
    """*delimiter* as ``bytes``, or the error for it.

    The one rule for the delimiter of ``receive_until()`` and
    ``FrameReader.read_until()`` (*what* names the caller): bytes as
    :func:`~._buffers.byte_view` counts them (an ``int`` is not ten NUL
    bytes, a ``str`` not its encoding), and not empty.  Callers test
    ``type(delimiter) is not bytes or not delimiter`` and call this only
    then, before anything moves.

    Raises:
      TypeError: *delimiter* is not bytes-like.
      ValueError: it is empty.
    """
    with byte_view(delimiter, what) as view:
        if not view.nbytes:
            raise ValueError(f"the delimiter must not be empty (in {what})")
        return view.tobytes()


class DelimiterNotFoundError(Exception):
    """The delimiter was not within the *max_bytes* a read allowed.

    ``receive_until`` and ``receive_line`` raise it once they hold
    ``max_bytes + len(delimiter)`` bytes without the delimiter among them
    (ending at most *max_bytes* bytes in).  The bytes stay in the buffer,
    unread: the next read sees them again.  Usually the peer is broken or
    hostile, and the thing to do is to answer with an error and close.

    Attributes:
      delimiter: what was looked for.
      max_bytes: the limit the read was given.
      looked_at: how many bytes were searched (``max_bytes + len(delimiter)``).
    """

    def __init__(self, delimiter: bytes, max_bytes: int, looked_at: int) -> None:
        super().__init__(
            f"more than max_bytes={max_bytes} bytes without a {delimiter!r} (the "
            f"limit on what may come before it; {looked_at} bytes searched); they "
            "are left in the buffer"
        )
        self.delimiter = delimiter
        self.max_bytes = max_bytes
        self.looked_at = looked_at


class IncompleteReadError(EOFError):
    """The stream ended before a read had what it asked for.

    Attributes:
      partial: the bytes received before the end (maybe ``b""``): taken out
          of the buffer, so the next read finds the stream at its end.
      expected: how many bytes ``receive_exactly`` asked for; None for
          ``receive_until``, ``receive_line`` and ``receive_frames``.
    """

    def __init__(self, partial: bytes, expected: int | None, *, waiting_for: str = "") -> None:
        if not waiting_for:
            waiting_for = "the delimiter" if expected is None else f"{expected} bytes"
        super().__init__(f"end of stream after {len(partial)} bytes, waiting for {waiting_for}")
        self.partial = partial
        self.expected = expected


def _slice(data: bytes | bytearray, start: int, end: int) -> bytes:
    """``bytes(data[start:end])``, copied once."""
    if type(data) is bytes:
        return data[start:end]
    with memoryview(data) as view:
        return bytes(view[start:end])


@final
class ReceiveBuffer:
    """Bytes received and not read yet.  See the module docstring.

    ``data``, ``pos`` and ``searched`` are public for the reads, whose hot
    paths are inlined in ``_reader.py`` and ``_frames.py``; everything else
    goes through the methods.
    """

    __slots__ = ("_grown", "data", "pos", "reading", "searched")

    def __init__(self) -> None:
        #: The unread bytes are ``data[pos:]``.
        self.data: bytes | bytearray = b""
        self.pos = 0
        #: The buffer's own bytearray, while ``data`` is it (a big message
        #: arriving in pieces): the only object it ever appends to.
        self._grown: bytearray | None = None
        #: A read is waiting for more bytes (one reader at a time: the reads
        #: check it, and a read that waits sets it).
        self.reading = False
        #: After a ``take_until`` or ``take_line`` that returned None: where
        #: the next search for the same delimiter starts (what was searched).
        self.searched = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos

    def feed(self, chunk: bytes | bytearray) -> None:
        """Append *chunk* (a receive's result: kept as it is, never changed)."""
        data = self.data
        pos = self.pos
        left = len(data) - pos
        if left > len(chunk):
            # A big message arriving in pieces: append (amortised O(1)).
            if data is self._grown:
                # (On CPython, deleting at the front moves a start offset: O(1).)
                if pos:
                    del data[:pos]
                    self.pos = 0
                data += chunk
            else:
                with memoryview(data) as view:
                    grown = bytearray(view[pos:])
                grown += chunk
                self.data = self._grown = grown
                self.pos = 0
            return
        if not left:
            self.data = chunk
        else:
            # A message cut by the receive: join its start to the chunk, in
            # one new bytes object (copying at most twice the chunk), so that
            # the reads from it are one slice each.
            with memoryview(data) as view:
                self.data = b"".join((view[pos:], chunk))
        self.pos = 0
        self._grown = None

    def make_bytes(self) -> bytes:
        """The unread bytes as one ``bytes`` object, which ``data`` becomes
        (``pos`` 0): a copy only if ``data`` is the buffer's bytearray."""
        data = self.data
        if type(data) is not bytes:
            with memoryview(data) as view:
                data = bytes(view[self.pos :])
            self.data = data
            self.pos = 0
            self._grown = None
        return data

    def clear(self) -> None:
        """Forget every unread byte."""
        self.data = b""
        self.pos = 0
        self._grown = None

    def take_all(self) -> bytes:
        """Every unread byte."""
        data = _slice(self.data, self.pos, len(self.data))
        self.clear()
        return data

    def take_some(self, max_bytes: int) -> bytes | bytearray:
        """Up to *max_bytes* of the unread bytes, at least one if there are any."""
        data = self.data
        pos = self.pos
        end = pos + max_bytes
        if end >= len(data):
            self.clear()
            if pos == 0:
                # All of it, and the buffer lets go of it: hand it on as it is.
                return data
        else:
            self.pos = end
        return _slice(data, pos, end)

    def take_exactly(self, size: int) -> bytes | None:
        """The next *size* bytes, or None if fewer are there (nothing is taken)."""
        data = self.data
        pos = self.pos
        end = pos + size
        if end > len(data):
            return None
        # (A fully read head is kept until the next feed replaces it.)
        self.pos = end
        if type(data) is bytes:
            return data[pos:end]
        return _slice(data, pos, end)

    def take_line(self, max_bytes: int) -> bytes | None:
        """``take_until(b"\\n", max_bytes, 0, True)``, the common case, with
        fewer steps (this is the hot path of a line protocol)."""
        data = self.data
        pos = self.pos
        found = data.find(b"\n", pos, pos + max_bytes + 1)
        if found < 0:
            if len(data) - pos > max_bytes:
                raise DelimiterNotFoundError(b"\n", max_bytes, max_bytes + 1)
            self.searched = len(data) - pos
            return None
        self.pos = found + 1
        if found > pos and data[found - 1] == _CR:
            found -= 1
        if type(data) is bytes:
            return data[pos:found]
        return _slice(data, pos, found)

    def take_until(
        self, delimiter: bytes, max_bytes: int, start: int, strip_cr: bool
    ) -> bytes | None:
        """The bytes before the first *delimiter*, which is taken too.

        The delimiter must begin at most *max_bytes* bytes in; the search
        starts *start* bytes in (what was searched before).  With
        *strip_cr*, one ``\\r`` just before the delimiter is left out of the
        result.  Returns None if the delimiter is not there yet: the caller
        feeds more and searches again from :attr:`searched`.

        Raises:
          DelimiterNotFoundError: ``max_bytes + len(delimiter)`` bytes are
              here and the delimiter is not among them (nothing is taken).
        """
        data = self.data
        pos = self.pos
        size = len(delimiter)
        window = pos + max_bytes + size
        found = data.find(delimiter, pos + start, window)
        if found < 0:
            if len(data) >= window:
                raise DelimiterNotFoundError(delimiter, max_bytes, window - pos)
            # A delimiter cut in two may begin in the last size - 1 bytes.
            self.searched = max(len(data) - pos - size + 1, 0)
            return None
        end = found
        if strip_cr and end > pos and data[end - 1] == _CR:
            end -= 1
        self.pos = found + size
        if type(data) is bytes:
            return data[pos:end]
        return _slice(data, pos, end)

    def feed_until(
        self, chunk: bytes | bytearray, delimiter: bytes, max_bytes: int, start: int, strip_cr: bool
    ) -> bytes | None:
        """:meth:`feed`, then :meth:`take_until`: the loop of a read waiting
        for its delimiter.  While a big message arrives in pieces this is
        one append and one search of the new bytes, in one call."""
        data = self.data
        if data is self._grown and not self.pos:
            data += chunk
            size = len(delimiter)
            window = max_bytes + size
            if data.find(delimiter, start, window) < 0:
                if len(data) >= window:
                    raise DelimiterNotFoundError(delimiter, max_bytes, window)
                self.searched = len(data) - size + 1
                return None
        else:
            self.feed(chunk)
        return self.take_until(delimiter, max_bytes, start, strip_cr)
