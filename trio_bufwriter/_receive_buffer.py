"""The receive buffer behind the reads (``receive_exactly``, ``receive_until``...).

Sans-IO, like h11's ``ReceiveBuffer``: bytes go in with :meth:`feed`, and
the ``take_*`` methods hand out what is already there or say that more is
needed; the reads in ``_reader.py`` do the receiving.

What it is built for: one receive of 64 KiB serving many small reads, and a
large message arriving in many small pieces, neither with quadratic copying.

* The unread bytes are ``data[pos:]``.  A read moves ``pos`` instead of
  deleting at the front, and when a read takes the last byte the buffer
  becomes ``b""`` again.
* A chunk fed into an empty buffer is kept as it is (no copy): every read
  from it is one slice.  A chunk fed after a few unread bytes (the start of
  a message cut by the receive) is joined to them in a new ``bytes``: a copy
  of at most twice the chunk, and the reads stay one slice each.
* Only when the unread bytes outgrow the chunk (a big message arriving in
  many pieces) do they go into a ``bytearray``, whose appends are amortised
  O(1): no quadratic copying.  The read part in front of it is deleted
  then, once per feed (``del b[:k]`` on CPython moves a start offset, it
  does not move the bytes).
* A search for a delimiter is given where to start (``start``): the caller
  never rescans bytes it has already searched.
"""

from __future__ import annotations

from typing import final

#: The default *max_bytes* of ``receive_until`` and ``receive_line``: as
#: asyncio's ``StreamReader`` limit, 64 KiB.
DEFAULT_MAX_LINE = 64 * 1024

#: What a read asks of the wrapped stream when the buffer runs short.
RECEIVE_SIZE = 64 * 1024

_CR = ord("\r")


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
            f"no {delimiter!r} in the first {looked_at} bytes received "
            f"(max_bytes={max_bytes}); they are left in the buffer"
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
          ``receive_until`` and ``receive_line``.
    """

    def __init__(self, partial: bytes, expected: int | None) -> None:
        wanted = "the delimiter" if expected is None else f"{expected} bytes"
        super().__init__(f"end of stream after {len(partial)} bytes, waiting for {wanted}")
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

    The unread bytes are ``data[pos:]`` (the head) followed by the chunks in
    ``parts`` (only while a big message is arriving; ``parts`` is never
    non-empty with an empty head).  The ``take_*`` methods try the head
    alone first; only with parts do they go to the methods at the bottom.
    ``data``, ``pos`` and ``parts`` are public for ``receive_line``, whose
    hot path is inlined there; everything else goes through the methods.
    """

    __slots__ = ("_parts_size", "data", "parts", "pos", "reading", "searched")

    def __init__(self) -> None:
        self.data: bytes | bytearray = b""
        self.pos = 0
        self.parts: list[bytes | bytearray] = []
        self._parts_size = 0
        #: A read is waiting for more bytes (one reader at a time: the reads
        #: check it, and a read that waits sets it).
        self.reading = False
        #: After a ``take_until`` or ``take_line`` that returned None: where
        #: the next search for the same delimiter starts (what was searched).
        self.searched = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos + self._parts_size

    def feed(self, chunk: bytes | bytearray) -> None:
        """Append *chunk* (a receive's result: kept as it is, never changed)."""
        data = self.data
        pos = self.pos
        left = len(data) - pos
        if not left:
            self.data = chunk
            self.pos = 0
        elif self.parts or left > len(chunk):
            # A big message arriving in pieces: keep them apart until a
            # read takes them, then join them once.
            self.parts.append(chunk)
            self._parts_size += len(chunk)
        else:
            # A message cut by the receive: join its start to the chunk, in
            # one new bytes object (copying at most twice the chunk), so that
            # the reads from it are one slice each.
            with memoryview(data) as view:
                self.data = b"".join((view[pos:], chunk))
            self.pos = 0

    def clear(self) -> None:
        """Forget every unread byte."""
        self.data = b""
        self.pos = 0
        self.parts = []
        self._parts_size = 0

    def take_all(self) -> bytes:
        """Every unread byte."""
        if self.parts:
            self._flatten()
        data = _slice(self.data, self.pos, len(self.data))
        self.clear()
        return data

    def take_some(self, max_bytes: int) -> bytes | bytearray:
        """Up to *max_bytes* of the unread bytes, at least one if there are any."""
        data = self.data
        pos = self.pos
        if self.parts:
            return self._take_prefix(min(max_bytes, len(data) - pos))
        end = pos + max_bytes
        if pos == 0 and end >= len(data):
            # The whole of what was fed: hand it on as it is.
            self.clear()
            return data
        if end >= len(data):
            self.clear()
        else:
            self.pos = end
        return data[pos:end]

    def take_exactly(self, size: int) -> bytes | None:
        """The next *size* bytes, or None if fewer are there (nothing is taken)."""
        if self.parts:
            return None if size > len(self) else self._take_prefix(size)
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
        if self.parts:
            return self.take_until(b"\n", max_bytes, 0, True)
        data = self.data
        pos = self.pos
        found = data.find(b"\n", pos, pos + max_bytes + 1)
        if found < 0:
            if len(data) - pos > max_bytes:
                raise DelimiterNotFoundError(b"\n", max_bytes, max_bytes + 1)
            self.searched = len(data) - pos
            return None
        self.pos = found + 1
        if found > pos and data[found - 1] == 13:  # b"\r"
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
        if self.parts:
            return self._take_until_across(delimiter, max_bytes, start, strip_cr)
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
        after = found + size
        if after == len(data):
            self.data = b""
            self.pos = 0
        else:
            self.pos = after
        if type(data) is bytes:
            return data[pos:end]
        return _slice(data, pos, end)

    # ------------------------------------------------------------------
    # With parts: a big message arriving in pieces

    def _flatten(self) -> None:
        """Join the head's unread bytes and the parts into one head."""
        with memoryview(self.data) as view:
            self.data = b"".join([view[self.pos :], *self.parts])
        self.pos = 0
        self.parts = []
        self._parts_size = 0

    def _take_prefix(self, size: int) -> bytes:
        """The next *size* bytes (there are that many), copied once."""
        data = self.data
        pos = self.pos
        parts = self.parts
        left = len(data) - pos
        if size <= left:
            result = _slice(data, pos, pos + size)
            pos += size
        else:
            pieces: list[bytes | bytearray | memoryview] = [memoryview(data)[pos:]]
            need = size - left
            used = 0
            for part in parts:
                used += 1
                if len(part) >= need:
                    pieces.append(memoryview(part)[:need])
                    data = part
                    pos = need
                    break
                pieces.append(part)
                need -= len(part)
            result = b"".join(pieces)
            self._parts_size -= sum(map(len, parts[:used]))
            del parts[:used]
        # The new head: what is left of the last piece used, else the next part.
        while pos == len(data) and parts:
            data = parts.pop(0)
            self._parts_size -= len(data)
            pos = 0
        self.data = data
        self.pos = pos
        return result

    def _take_until_across(
        self, delimiter: bytes, max_bytes: int, start: int, strip_cr: bool
    ) -> bytes | None:
        """:meth:`take_until` with parts: search the last part only (and
        across its start), where the bytes not searched yet are."""
        size = len(delimiter)
        last = self.parts[-1]
        total = len(self.data) - self.pos + self._parts_size
        base = total - len(last)
        if start < base - size + 1:
            # Searched less than all but the last part (a read was cancelled):
            # join them, and search as usual.
            self._flatten()
            return self.take_until(delimiter, max_bytes, start, strip_cr)
        found = -1
        if start < base:
            # The delimiter may begin before the last part and end in it.
            probe = self._bytes_before_last(size - 1) + bytes(last[: size - 1])
            at = probe.find(delimiter)
            if 0 <= at < size - 1:
                found = base - (size - 1) + at
        if found < 0:
            end = max_bytes + size - base
            if end > 0:
                at = last.find(delimiter, max(start - base, 0), end)
                if at >= 0:
                    found = base + at
        if found < 0 or found > max_bytes:
            if total >= max_bytes + size:  # (found > max_bytes: so is this)
                raise DelimiterNotFoundError(delimiter, max_bytes, max_bytes + size)
            self.searched = base + len(last) - size + 1 if total >= size else 0
            return None
        end = found
        if strip_cr and end > 0 and self._byte_at(end - 1) == _CR:
            end -= 1
        result = self._take_prefix(end)
        self._take_prefix(found + size - end)
        if self.pos == len(self.data):
            self.clear()
        return result

    def _bytes_before_last(self, count: int) -> bytes:
        """The last *count* unread bytes before the last part."""
        joined = b""
        parts = self.parts
        index = len(parts) - 2
        while count and index >= 0:
            piece = parts[index]
            taken = bytes(piece[-count:])
            joined = taken + joined
            count -= len(taken)
            index -= 1
        if count:
            data = self.data
            joined = bytes(data[max(self.pos, len(data) - count) :]) + joined
        return joined

    def _byte_at(self, offset: int) -> int:
        """The unread byte *offset* bytes in."""
        left = len(self.data) - self.pos
        if offset < left:
            return self.data[self.pos + offset]
        offset -= left
        for part in self.parts:
            if offset < len(part):
                return part[offset]
            offset -= len(part)
        raise IndexError(offset)  # pragma: no cover
