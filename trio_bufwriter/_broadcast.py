"""Fan-out: one synchronous call queues a message to many writers."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import final

import trio

from ._buffers import BytesLike, byte_view
from ._conflate import ConflatingWriter
from ._limits import BufferLimitError
from ._stream import BufferedStream
from ._writer import BufferedWriter

#: What a Broadcaster holds.
Subscriber = BufferedWriter | BufferedStream | ConflatingWriter


@final
@dataclass(frozen=True)
class BroadcastStatistics:
    """A snapshot from :meth:`Broadcaster.statistics`."""

    #: Writers subscribed now.
    subscribers: int
    #: Of those, how many are over their high-water mark (``need_drain``).
    over_high_water: int
    #: The longest ``stalled_for`` among them, in seconds.
    longest_stall: float
    #: Messages queued by :meth:`Broadcaster.broadcast` and
    #: :meth:`Broadcaster.broadcast_latest` so far.
    messages: int
    #: Subscribers dropped so far because a write to them failed.
    dropped: int


@final
class Broadcaster:
    """A set of writers that :meth:`broadcast` writes one message to, at once.

    ``broadcast()`` is synchronous and never blocks: one slow subscriber can
    never hold back the others.  A subscriber whose write fails (its
    ``max_buffer`` was hit, it is broken or closed) is dropped from the set
    and reported back; what happens to its connection is its own policy
    (``overflow="abort"`` closes it, ``"raise"`` leaves that to you).  Give
    subscribers a ``max_buffer`` (and, for good measure, a ``stall_timeout``):
    without one, a client that stops reading makes its buffer grow without
    bound, as it would with asyncio, Node or Netty.

    The message is converted to ``bytes`` once; each writer then copies a
    small message into its own buffer (that copy is what a buffer is), and
    holds a message of 64 KiB or more by reference, so all subscribers share
    one copy.

    :meth:`broadcast_latest` publishes a keyed update: a subscriber that is
    a :class:`ConflatingWriter` keeps only the newest unsent frame per key,
    each on its own, so a slow one receives fewer, newer updates while the
    fast ones receive all of them.

    Adding and removing subscribers while no broadcast runs is all the
    coordination needed: trio runs one task at a time, and ``broadcast()``
    never yields.
    """

    __slots__ = ("_dropped", "_messages", "_writers")

    def __init__(self) -> None:
        # A dict as an insertion-ordered set.
        self._writers: dict[Subscriber, None] = {}
        self._messages = 0
        self._dropped = 0

    def add(self, writer: Subscriber) -> None:
        """Subscribe *writer* (a :class:`BufferedWriter`, :class:`BufferedStream`
        or :class:`ConflatingWriter`)."""
        if not isinstance(writer, BufferedWriter | BufferedStream | ConflatingWriter):
            raise TypeError(
                "expected a BufferedWriter, BufferedStream or ConflatingWriter, "
                f"not {type(writer).__name__!r}"
            )
        self._writers[writer] = None

    def discard(self, writer: Subscriber) -> None:
        """Unsubscribe *writer*, if it is subscribed."""
        self._writers.pop(writer, None)

    def __len__(self) -> int:
        return len(self._writers)

    def __contains__(self, writer: object) -> bool:
        return writer in self._writers

    def __iter__(self) -> Iterator[Subscriber]:
        return iter(list(self._writers))

    def broadcast(
        self, data: BytesLike, *, exclude: Subscriber | None = None
    ) -> list[tuple[Subscriber, Exception]]:
        """Queue *data* to every subscriber but *exclude*; return the ones
        dropped, with why.

        Never blocks and never yields.  *exclude* (say, the chat client the
        message came from) stays subscribed and gets nothing; it need not be
        subscribed.  Each subscriber that raises
        :exc:`BufferLimitError`, :exc:`trio.BrokenResourceError` or
        :exc:`trio.ClosedResourceError` is removed from the set and returned
        with that error; the others get the message.

        Raises:
          TypeError: *data* is not a C-contiguous bytes-like object, as for
              ``write()`` (nobody gets anything).
        """
        message = _as_bytes(data, "broadcast()")
        dropped: list[tuple[Subscriber, Exception]] = []
        for writer in list(self._writers):
            if writer is exclude:
                continue
            try:
                writer.write(message)
            except (BufferLimitError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                del self._writers[writer]
                dropped.append((writer, exc))
        self._messages += 1
        self._dropped += len(dropped)
        return dropped

    def broadcast_latest(
        self, key: Hashable, frame: BytesLike, *, exclude: Subscriber | None = None
    ) -> list[tuple[Subscriber, Exception]]:
        """Queue *frame* as the newest value of *key* to every subscriber but
        *exclude*; return the ones dropped, with why.

        A :class:`ConflatingWriter` subscriber gets it through
        :meth:`~ConflatingWriter.write_latest` (replacing its unsent frame
        for *key*, if any); a plain writer through ``write()``, in order,
        like :meth:`broadcast`.  Never blocks and never yields; drops
        subscribers as :meth:`broadcast` does (for a conflating one, also
        when its ``max_keys`` refuses a new key).

        Raises:
          TypeError: *frame* is not a C-contiguous bytes-like object, or
              *key* is not hashable (nobody gets anything).
        """
        message = _as_bytes(frame, "broadcast_latest()")
        hash(key)
        dropped: list[tuple[Subscriber, Exception]] = []
        for writer in list(self._writers):
            if writer is exclude:
                continue
            try:
                if type(writer) is ConflatingWriter:
                    writer.write_latest(key, message)
                else:
                    writer.write(message)
            except (BufferLimitError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                del self._writers[writer]
                dropped.append((writer, exc))
        self._messages += 1
        self._dropped += len(dropped)
        return dropped

    def statistics(self) -> BroadcastStatistics:
        """Return a :class:`BroadcastStatistics` snapshot."""
        writers = list(self._writers)
        return BroadcastStatistics(
            subscribers=len(writers),
            over_high_water=sum(1 for w in writers if w.need_drain),
            longest_stall=max((w.stalled_for for w in writers), default=0.0),
            messages=self._messages,
            dropped=self._dropped,
        )


def _as_bytes(data: BytesLike, where: str) -> bytes:
    """*data* as bytes, converted once for all the subscribers."""
    if type(data) is bytes:
        return data
    return byte_view(data, where).tobytes()
