"""The send queue: what a writer holds, and its byte counters.  No I/O, no trio.

Bytes move one way through it::

    write() -> buf -> take() -> in flight -> accepted() -> sent
                      hold() -^                 discard() -> lost

``buf`` is a ``bytearray`` that small writes are appended to.  ``segments``
are whole items queued *before* ``buf``: a large ``bytes`` held by
reference (:meth:`hold`), a file region (:meth:`hold_region`), and the
``buf`` each interrupted.  A region's bytes are held like the others but
not counted against ``max_buffer`` (:attr:`file_held`): they are on disk.  :meth:`take`
hands everything queued to the sender as one list and leaves a fresh
``buf`` for the writers.  The counters only grow, so that::

    written = sent + held + lost        (held = len(buf) + inflight)

and a waiter that wakes compares numbers: it cannot miss a wakeup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from ._buffers import BytesLike
from ._file_region import FileRegion
from ._limits import BufferLimitError

if TYPE_CHECKING:
    from typing import TypeAlias

#: What the sender is handed: bytes, or a region of a file.
Item: TypeAlias = "BytesLike | FileRegion"


@final
class SendQueue:
    """Queued bytes, counters and the ``max_buffer`` rule of one writer.

    The writer's ``write()`` appends to :attr:`buf` and counts
    :attr:`write_calls` itself (one attribute lookup less per write than a
    method call: ``write()`` is the hot path); everything else goes through
    the methods.
    """

    __slots__ = (
        "_batch_mark",
        "batches",
        "buf",
        "file_held",
        "inflight",
        "lost",
        "max_buffer",
        "overflows",
        "peak",
        "regions",
        "segments",
        "sent",
        "write_calls",
    )

    def __init__(self, max_buffer: int | None) -> None:
        #: Small writes, appended; sent after :attr:`segments`.
        self.buf = bytearray()
        #: Whole buffers queued before :attr:`buf`, counted in :attr:`inflight`
        #: (None while there are none: an empty list costs 56 bytes per
        #: idle writer).
        self.segments: list[Item] | None = None
        #: Bytes of file regions held (in :attr:`inflight`, not in memory).
        self.file_held = 0
        #: Every region held, until sent or discarded (their descriptors);
        #: None while there are none.
        self.regions: list[FileRegion] | None = None
        #: Bytes out of :attr:`buf` and not yet accepted: segments, and the
        #: send in progress.
        self.inflight = 0
        #: Bytes the wrapped stream accepted.
        self.sent = 0
        #: Bytes discarded when the writer closed or broke with them held.
        self.lost = 0
        #: Calls that queued bytes (``write``, ``writelines``, ``send_all``).
        self.write_calls = 0
        #: Hand-overs to the stream that carried a write none of which was
        #: handed over before (so a write sent in pieces counts once).
        self.batches = 0
        self._batch_mark = 0
        #: The most bytes held at once (updated as bytes move).
        self.peak = 0
        #: The most bytes the queue may hold; None for no limit.
        self.max_buffer = max_buffer
        #: Writes refused for the limit (the writer counts them).
        self.overflows = 0

    @property
    def held(self) -> int:
        """Bytes written and not yet accepted: queued plus in flight."""
        return len(self.buf) + self.inflight

    @property
    def written(self) -> int:
        """Every byte ever queued."""
        return self.sent + len(self.buf) + self.inflight + self.lost

    def __bool__(self) -> bool:
        """Whether anything is queued and not yet taken by the sender."""
        return bool(self.buf or self.segments)

    # ------------------------------------------------------------------
    # The limit

    def check_room(self, size: int) -> None:
        """Raise :exc:`BufferLimitError` if *size* more bytes would pass ``max_buffer``.

        The only place the rule is written: every way of queueing asks here
        first, so a refused write has queued nothing.
        """
        limit = self.max_buffer
        if limit is not None and len(self.buf) + self.inflight - self.file_held + size > limit:
            held = len(self.buf) + self.inflight - self.file_held
            raise BufferLimitError(
                f"a write of {size} bytes would hold {held + size} bytes, over max_buffer={limit}"
            )

    # ------------------------------------------------------------------
    # Moving bytes

    def hold(self, data: Item) -> None:
        """Queue *data* (bytes or a region) by reference, after everything queued so far."""
        segments = self.segments
        if segments is None:
            segments = self.segments = []
        buf = self.buf
        if buf:
            segments.append(buf)
            self.inflight += len(buf)
            self.buf = bytearray()
        segments.append(data)
        self.inflight += len(data) if type(data) is FileRegion else memoryview(data).nbytes

    def hold_region(self, region: FileRegion) -> None:
        """Queue a file region, after everything queued so far."""
        self.hold(region)
        if self.regions is None:
            self.regions = []
        self.regions.append(region)
        self.file_held += len(region)

    def region_sent(self, region: FileRegion, size: int) -> None:
        """*size* more bytes of *region* were accepted; close it once whole."""
        region.advance(size)
        self.file_held -= size
        self.accepted(size, size)
        if not len(region):
            assert self.regions is not None
            self.regions.remove(region)
            region.close()

    def take(self) -> list[Item]:
        """Hand everything queued to the sender, in order; it is in flight
        until :meth:`accepted`.  Counts a batch."""
        self.count_batch()
        buf = self.buf
        self.buf = bytearray()
        self.inflight += len(buf)
        segments = self.segments
        if segments:
            self.segments = None
            if buf:
                segments.append(buf)
            return segments
        return [buf]

    def accepted(self, size: int, taken: int) -> None:
        """*size* more bytes were accepted, *taken* of them in flight (the
        rest came straight from ``buf`` or from a write never queued)."""
        held = len(self.buf) + self.inflight
        if held > self.peak:
            self.peak = held
        self.sent += size
        self.inflight -= taken

    def count_batch(self) -> None:
        """Bytes are being handed over: a batch, if they carry a new write."""
        if self.write_calls != self._batch_mark:
            self.batches += 1
            self._batch_mark = self.write_calls

    def count_direct_batch(self) -> None:
        """A write about to be counted is handed over whole, never queued."""
        self.batches += 1
        self._batch_mark = self.write_calls + 1

    def discard(self) -> None:
        """Drop everything held (the writer closed or broke): it is lost."""
        held = len(self.buf) + self.inflight
        if held > self.peak:
            self.peak = held
        self.lost += held
        self.inflight = 0
        self.buf = bytearray()
        self.segments = None
        self.file_held = 0
        regions = self.regions
        self.regions = None
        for region in regions or ():
            region.close()
