"""Latest value wins: a conflating layer in front of a writer.

A feed of prices, positions or game state makes each update obsolete as soon
as the next one for the same key exists.  :class:`ConflatingWriter` holds at
most one unsent frame per key, in an insertion-ordered dict, and hands frames
to its writer only while the writer is at or below its high-water mark.  A
consumer that keeps up gets every frame; a slow one gets, for each key, the
newest frame when it can take anything, instead of every stale frame in
order behind a growing buffer.

Who moves frames: the caller of :meth:`~ConflatingWriter.write_latest`
itself while the writer has room (no task switch on the fast path), and
otherwise the feeder task (:meth:`~ConflatingWriter.run`), which waits in
the writer's ``drain()`` and refills it at low water.  Moving a frame is
one synchronous ``write()``, so a frame is either pending here, whole, or in
the writer, whole: cancelling the feeder can never split or duplicate one.

Counters, as in the writer (``_send_queue.py``)::

    frames_written = frames_sent + frames_superseded + pending + frames_lost

and two sequence numbers: ``_entered`` counts pending entries ever created
(a frame for a key with none pending), ``_left`` counts those handed to the
writer.  The dict is FIFO, so ``flush()`` and
``aclose()`` wait for ``_left`` to reach ``_entered`` as it was when they
were called; a frame that supersedes another takes over its entry, and so
its place in that count.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from contextlib import suppress
from typing import TYPE_CHECKING, NoReturn, final

import trio
from trio.lowlevel import ParkingLot, checkpoint

from ._buffers import BytesLike, byte_view
from ._conflation_stats import ConflationStatistics
from ._lifecycle import Lifecycle
from ._limits import BufferLimitError
from ._state import WriterState

if TYPE_CHECKING:
    from ._stream import BufferedStream
    from ._writer import BufferedWriter

_OPEN = WriterState.OPEN
_CLOSING = WriterState.CLOSING
_CLOSED = WriterState.CLOSED
_BROKEN = WriterState.BROKEN


@final
class ConflatingWriter(Lifecycle):
    """Latest value wins: at most one unsent frame per key, in front of a writer.

    :meth:`write_latest` queues a frame under a key.  While the writer has
    room (at or below its high-water mark) the frame goes straight into it;
    otherwise it waits here, and a newer frame for the same key replaces it
    in place (keeping its key's position in the queue).  The feeder task
    (:meth:`run`) hands waiting frames to the writer, oldest key first, each
    time the writer drains to its low-water mark.  A frame is always sent
    whole, and a frame already handed to the writer is never replaced.

    :meth:`write` is a plain, unconflated write, and a barrier: every frame
    written before it, keyed or not, is sent before it (the pending frames
    are handed to the writer at once, even over its high-water mark).

    Memory: at most one frame per key here (``max_keys`` bounds the keys),
    plus the writer's high water and one frame, whatever the producer's
    rate; plain writes are not conflated and count in the writer's buffer
    (its ``max_buffer`` limits them).

    Args:
      writer: the :class:`BufferedWriter` or :class:`BufferedStream` to feed;
          its sender must be running.  The conflating writer owns it from
          now on: :meth:`aclose` closes it.
      max_keys: the most keys with a frame pending at once; a
          :meth:`write_latest` for one more raises :exc:`BufferLimitError`.
          None (the default): no limit.

    Usually made with :func:`open_conflating_writer`, which also runs the
    feeder task.
    """

    __slots__ = (
        "_entered",
        "_frames_lost",
        "_frames_sent",
        "_frames_superseded",
        "_frames_written",
        "_left",
        "_max_keys",
        "_moved_lot",
        "_peak_bytes",
        "_pending",
        "_pending_bytes",
        "_plain_writes",
        "_refused",
        "_wakeup",
        "_writer",
    )

    def __init__(
        self, writer: BufferedWriter | BufferedStream, *, max_keys: int | None = None
    ) -> None:
        from ._stream import BufferedStream
        from ._writer import BufferedWriter

        if not isinstance(writer, BufferedWriter | BufferedStream):
            raise TypeError(
                f"expected a BufferedWriter or BufferedStream, not {type(writer).__name__!r}"
            )
        if max_keys is not None and (
            not isinstance(max_keys, int) or isinstance(max_keys, bool) or max_keys < 1
        ):
            raise ValueError(f"max_keys must be a positive int or None, not {max_keys!r}")
        super().__init__()
        self._writer = writer
        self._max_keys = max_keys
        # key -> (frame, when the key became pending)
        self._pending: OrderedDict[Hashable, tuple[bytes, float]] = OrderedDict()
        self._pending_bytes = 0
        self._peak_bytes = 0
        self._entered = 0
        self._left = 0
        self._frames_written = 0
        self._frames_sent = 0
        self._frames_superseded = 0
        self._frames_lost = 0
        self._plain_writes = 0
        self._refused = 0
        # Set while the feeder is parked with nothing pending.
        self._wakeup: trio.Event | None = None
        # flush() and aclose() wait here for _left to grow.
        self._moved_lot = ParkingLot()

    # ------------------------------------------------------------------
    # Introspection

    @property
    def writer(self) -> BufferedWriter | BufferedStream:
        """The writer this one feeds."""
        return self._writer

    @property
    def max_keys(self) -> int | None:
        """The most keys with a frame pending at once (None: no limit)."""
        return self._max_keys

    @property
    def pending(self) -> int:
        """Keys with a frame waiting here now."""
        return len(self._pending)

    @property
    def need_drain(self) -> bool:
        """Whether the writer is over its high-water mark (frames then wait here)."""
        return self._writer.need_drain

    @property
    def stalled_for(self) -> float:
        """The writer's ``stalled_for``."""
        return self._writer.stalled_for

    def statistics(self) -> ConflationStatistics:
        """Return a :class:`ConflationStatistics` snapshot."""
        age = 0.0
        if self._pending:
            _, since = next(iter(self._pending.values()))
            age = trio.current_time() - since
        return ConflationStatistics(
            frames_written=self._frames_written,
            frames_sent=self._frames_sent,
            frames_superseded=self._frames_superseded,
            frames_lost=self._frames_lost,
            pending_frames=len(self._pending),
            pending_bytes=self._pending_bytes,
            peak_pending_bytes=self._peak_bytes,
            oldest_pending_age=age,
            plain_writes=self._plain_writes,
            refused=self._refused,
            state=self._state,
        )

    # ------------------------------------------------------------------
    # Writing: synchronous, never blocks, never yields

    def write_latest(self, key: Hashable, frame: BytesLike) -> None:
        """Queue *frame* as the newest value of *key*; return at once.

        Never blocks and never yields.  If the writer is at or below its
        high-water mark and no frame waits here, *frame* is written to it
        now.  Otherwise it waits here: in place of the frame still waiting
        for *key*, if there is one (that one is never sent), or after the
        keys already waiting.  The bytes are copied (a ``bytes`` object is
        kept by reference), so a mutable buffer can be reused at once.

        Raises:
          TypeError: *frame* is not bytes-like, or *key* is not hashable.
              Nothing is queued.
          BufferLimitError: *key* has no frame waiting and ``max_keys``
              keys already have one.  Nothing is queued; still usable.
          trio.ClosedResourceError: after :meth:`aclose`.
          trio.BrokenResourceError: the writer failed, was closed under this,
              or refused a frame (its ``max_buffer``), or the feeder task was
              cancelled; the cause chained.  Raised by every call from then
              on.
        """
        if self._state:
            self._raise_not_writable()
        if type(frame) is not bytes:
            frame = byte_view(frame, "write_latest()").tobytes()
        pending = self._pending
        writer = self._writer
        # The fast path, for a consumer that keeps up: writer.need_drain,
        # inlined (it is most of the cost of a keyed write otherwise).
        if not pending and writer.buffered <= writer.high_water:
            hash(key)  # the same TypeError as when it has to wait
            # Counted written first: a frame the writer refuses is written,
            # then lost (written = sent + superseded + pending + lost).
            self._frames_written += 1
            self._hand(frame)
            return
        old = pending.get(key)
        if old is not None:
            pending[key] = (frame, old[1])
            self._pending_bytes += len(frame) - len(old[0])
            self._frames_superseded += 1
        else:
            max_keys = self._max_keys
            if max_keys is not None and len(pending) >= max_keys and not writer.need_drain:
                # The writer has room: the waiting frames move first, and
                # may leave room for this key.
                self._move(everything=False)
            if max_keys is not None and len(pending) >= max_keys:
                self._refused += 1
                raise BufferLimitError(
                    f"write_latest() of a new key would make {len(pending) + 1} keys "
                    f"pending, over max_keys={self._max_keys}"
                )
            pending[key] = (frame, trio.current_time())
            self._pending_bytes += len(frame)
            self._entered += 1
        self._frames_written += 1
        if self._pending_bytes > self._peak_bytes:
            self._peak_bytes = self._pending_bytes
        if not writer.need_drain:
            self._move(everything=False)
        if pending and self._wakeup is not None:
            self._wakeup.set()

    def write(self, data: BytesLike) -> None:
        """A plain write, not conflated: a barrier after every earlier frame.

        The frames waiting here are handed to the writer first, in order,
        even over its high-water mark, then *data* is written; so the
        consumer receives everything written before this call before
        *data*, and nothing written after it before it.  Never blocks and
        never yields.

        Raises what the writer's :meth:`~BufferedWriter.write` raises (a
        :exc:`BufferLimitError` refuses *data* only: the frames handed
        before it stay handed), and :exc:`trio.ClosedResourceError` after
        :meth:`aclose`.
        """
        if self._state:
            self._raise_not_writable()
        if self._pending:
            self._move(everything=True)
        try:
            self._writer.write(data)
        except trio.BrokenResourceError as exc:
            self._break(exc, "the writer failed")
            self._reported = True
            raise
        self._plain_writes += 1

    # ------------------------------------------------------------------
    # Waiting

    async def drain(self) -> None:
        """The writer's :meth:`~BufferedWriter.drain`: for producers of plain
        writes; :meth:`write_latest` needs none.

        Raises what it raises, and :exc:`trio.BrokenResourceError` if this
        conflating writer broke.
        """
        if self._state is _BROKEN:
            self._raise_not_writable()
        await self._writer.drain()

    async def flush(self) -> None:
        """Wait until every frame written before this call is sent, or superseded.

        It waits for the frames waiting here when it was called (or their
        newer replacements) to be handed to the writer, then for the
        writer's :meth:`~BufferedWriter.flush`.  Always a checkpoint.
        Cancelling it changes nothing: the frames are still sent.

        Raises:
          trio.BrokenResourceError: this broke before the frames were handed
              on, or the writer's flush raised it.
          trio.ClosedResourceError: closed before they were.
        """
        if self._state >= _CLOSED:
            self._raise_not_writable()
        await self._wait_moved(self._entered)
        await self._writer.flush()

    async def _wait_moved(self, target: int) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
        if self._left < target and not self._run_entered:
            await self._check_started("flush()")
        while self._left < target:
            if self._state >= _CLOSED:
                self._raise_for_waiter()
            await self._moved_lot.park()

    # ------------------------------------------------------------------
    # The feeder task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the feeder task; returns once this is closed or broken.

        Start it in a nursery that outlives your use of the conflating
        writer (:func:`open_conflating_writer` does).  It parks while no
        frame waits, and otherwise waits in the writer's ``drain()``, then
        hands it frames, oldest key first, until it is over high water
        again.  Its only waits are those two; moving frames is synchronous,
        so cancelling it never splits a frame.  If it is cancelled, or the
        writer fails, this becomes broken and the waiting frames are lost.

        Raises:
          RuntimeError: it was already started once.
        """
        self._enter_run()
        task_status.started()
        writer = self._writer
        try:
            while self._state < _CLOSED:
                if not self._pending:
                    if self._state is _CLOSING:
                        break
                    wakeup = self._wakeup = trio.Event()
                    try:
                        await wakeup.wait()
                    finally:
                        self._wakeup = None
                    continue
                try:
                    await writer.drain()
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._break(exc, "the writer failed while frames were waiting")
                    break
                if self._state < _CLOSED:
                    try:
                        self._move(everything=False)
                    except trio.BrokenResourceError:
                        # It broke this writer; the next call raises it.
                        self._reported = False
                        break
        except BaseException as exc:
            if self._state < _CLOSED:
                what = self._how_task_ended(exc)
                self._break(None, f"the conflating writer's feeder task was {what}")
            raise

    # ------------------------------------------------------------------
    # Closing

    async def aclose(self) -> None:
        """Hand every waiting frame to the writer, then close the writer.

        From the moment it is called, :meth:`write_latest` and :meth:`write`
        raise :exc:`trio.ClosedResourceError`.  It waits (with the writer's
        backpressure, through the feeder task) until no frame waits here,
        then awaits the writer's :meth:`~BufferedWriter.aclose`, which sends
        them.  Whatever happens the writer is closed when this returns or
        raises: if cancelled, the waiting frames are discarded (counted in
        ``frames_lost``) and the writer is closed at once.  Calling it again
        is a checkpoint and does nothing.

        Raises:
          trio.BrokenResourceError: frames were lost to a failure no call
              had raised yet (the cause chained), or the writer's
              ``aclose`` raised it.
          trio.Cancelled: cancelled while flushing (closed all the same).
        """
        if self._state is _CLOSED:
            await checkpoint()
            return
        try:
            if self._state is _OPEN:
                self._state = _CLOSING
                if not self._run_entered:
                    # Nobody would move them: hand them over now.
                    self._move(everything=True)
            if self._state is _CLOSING:
                # Another task's aclose() may close it meanwhile (forcefully):
                # closed is what this call was asked for.
                with suppress(trio.ClosedResourceError):
                    await self._wait_moved(self._entered)
        finally:
            unreported = self._lost_unreported(self._frames_lost)
            self._finish(_CLOSED)
            await self._writer.aclose()
        if unreported:
            self._raise_failure(f"{self._message}; {self._frames_lost} frames were not sent")

    # ------------------------------------------------------------------
    # Internals

    def _hand(self, frame: bytes) -> None:
        """Write one frame to the writer; a failure breaks this, and raises."""
        try:
            self._writer.write(frame)
        except (trio.ClosedResourceError, trio.BrokenResourceError, BufferLimitError) as exc:
            self._refused_by_writer(exc)
        self._frames_sent += 1

    def _refused_by_writer(self, exc: Exception) -> NoReturn:
        """The writer refused a frame: the frame is lost, and this breaks."""
        self._frames_lost += 1
        if isinstance(exc, trio.ClosedResourceError):
            self._break(exc, "the writer was closed")
        else:
            self._break(exc, "the writer refused a frame")
        self._raise_failure()

    def _move(self, *, everything: bool) -> None:
        """Hand waiting frames to the writer, oldest key first: all of them,
        or while it is at or below high water."""
        pending = self._pending
        writer = self._writer
        moved = False
        try:
            while pending and (everything or not writer.need_drain):
                _, (frame, _) = pending.popitem(last=False)
                self._pending_bytes -= len(frame)
                self._left += 1
                moved = True
                self._hand(frame)
        finally:
            if moved:
                self._moved_lot.unpark_all()

    def _break(self, cause: BaseException | None, message: str) -> None:
        if self._state < _CLOSED:
            self._set_failure(cause, message)
            self._finish(_BROKEN)

    def _finish(self, state: WriterState) -> None:
        """Enter CLOSED or BROKEN: what still waits is lost; wake everyone."""
        if self._pending:
            self._frames_lost += len(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        self._state = state
        self._moved_lot.unpark_all()
        if self._wakeup is not None:
            self._wakeup.set()

    def _raise_not_writable(self) -> None:
        self._raise_if_finished()
        raise trio.ClosedResourceError("the conflating writer is closing")
