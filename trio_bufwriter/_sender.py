"""The sender task: sends everything queued, merged into as few ``send_all`` calls as it can.

``run()`` loops: send what is queued (unless a cork holds it), or else park
until a write, an uncork, a wait or a close wakes it (``_wake_sender``).
Each send takes the whole buffer and leaves a fresh one for the writers, so
they keep appending while it is sent; ``_progress`` counts what the stream
accepted and wakes the waiters that lets go (``_waiting.py``).
"""

from __future__ import annotations

import trio
from trio.lowlevel import Abort, RaiseCancelT, current_task, reschedule, wait_task_rescheduled

from ._buffers import BytesLike
from ._core import _BROKEN, _CLOSED, _CLOSING, _EOF_PENDING, _EOF_SENT, _OPEN
from ._limits import StallTimeoutError
from ._waiting import _Waiting


class _Sender(_Waiting):
    """The background sender task, and how it is parked and woken.

    Only the sender calls the wrapped stream's ``send_all`` and ``send_eof``
    (the socket fast paths write to the socket only while it holds
    nothing), so sends never overlap and bytes go out in the order written.
    """

    __slots__ = ()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the background sender task; returns once the writer is closed.

        Start it in a nursery that outlives your use of the writer::

            writer = BufferedWriter(stream)
            await nursery.start(writer.run)

        (:func:`open_buffered_writer` does this for you.)  It may only be
        run once.  It sends whatever is queued, merging everything written
        since its last send into one ``send_all`` (split at
        :attr:`max_send_size`), with no timer delay.

        It returns when the writer is closed, after ``send_eof``, or when the
        wrapped stream fails: a failure does not escape into your nursery,
        it is raised by the writer's methods instead.  If it is cancelled
        (say, your nursery is), the writer becomes broken: ``write()`` and
        the waiters raise :exc:`trio.BrokenResourceError` from then on, and a
        ``send_all`` it was in the middle of may have sent any part of its
        bytes.

        Raises:
          RuntimeError: it was already started once.
        """
        if self._sender_started:
            raise RuntimeError("this writer's sender task was already started")
        self._sender_started = True
        task_status.started()
        try:
            stream = self._stream
            while True:
                state = self._state
                if (self._buf or self._segments) and (
                    not self._corks
                    or state
                    or self._flush_waiting
                    or self._drain_lot
                    or self._room_event is not None
                ):
                    if not await self._send_buffer(stream):
                        break
                elif state is _OPEN or state is _CLOSING:
                    self._sender_wants_data = not self._corks
                    self._direct_step = None
                    self._parked_sender = current_task()
                    try:
                        await wait_task_rescheduled(self._abort_park)
                    finally:
                        self._sender_wants_data = False
                elif state is _EOF_PENDING:
                    assert isinstance(stream, trio.abc.HalfCloseableStream)
                    try:
                        await stream.send_eof()
                    except Exception as exc:
                        if self._state < _CLOSED:
                            self._finish(_BROKEN, exc, "the wrapped stream's send_eof failed")
                        break
                    if self._state is _EOF_PENDING:
                        self._state = _EOF_SENT
                    self._eof_sent = True
                    assert self._eof_event is not None
                    self._eof_event.set()
                    break
                else:  # EOF_SENT, CLOSED, BROKEN: nothing more will ever be sent
                    break
            if self._aborted:
                # Aborting means the connection goes, not just the writer.
                await trio.aclose_forcefully(self._stream)
        except BaseException as exc:
            # Errors from the wrapped stream are handled inside the loop; this
            # is Cancelled or KeyboardInterrupt, and we do not keep those.
            if self._state < _CLOSED:
                what = "cancelled" if isinstance(exc, trio.Cancelled) else "interrupted"
                message = f"the writer's sender task was {what}"
                if self._inflight:
                    message += (
                        f" in the middle of a send: an unknown part of its "
                        f"{self._inflight} bytes reached the stream"
                    )
                self._finish(_BROKEN, None, message)
            raise

    async def _send_buffer(self, stream: trio.abc.SendStream) -> bool:
        """Send everything queued; return False if the writer finished meanwhile."""
        if self._probe is not None:
            # wait_send_all_might_not_block is asking the wrapped stream; it
            # must be out of that call before we send (trio forbids the two
            # at once).  The bytes to send are still counted as buffered, so
            # it will not ask again until they are accepted.
            await self._end_probe()
            if self._state >= _CLOSED:
                return False
        self._count_batch()
        # Swap rather than copy: the writers start filling a fresh buffer
        # while this one is sent.
        buf = self._buf
        self._buf = bytearray()
        self._inflight += len(buf)
        segments = self._segments
        if segments:
            self._segments = []
            if buf:
                segments.append(buf)
        else:
            segments = [buf]
        guard = self._guard
        self._sending = True
        try:
            if guard is None:
                return await self._send_segments(stream, segments)
            with guard.start_send(self._backpressured()) as scope:
                done = await self._send_segments(stream, segments)
            guard.end_send()
        finally:
            self._sending = False
        if scope.cancelled_caught:
            if self._state < _CLOSED:
                # The stall clock ran out.  (An overflow abort broke the
                # writer before cancelling.)
                timeout = guard.timeout
                self._abort(
                    StallTimeoutError(
                        f"over high water ({self._high_water} bytes) with nothing "
                        f"sent for {timeout} s"
                    ),
                    f"aborted: the peer took nothing for {timeout} s (stall_timeout)",
                )
            return False
        return done

    async def _send_segments(self, stream: trio.abc.SendStream, segments: list[BytesLike]) -> bool:
        max_send = self._max_send_size
        send_all = stream.send_all if self._sink is None else self._sink.send_all
        try:
            for data in segments:
                size = len(data)
                if size <= max_send:
                    self._send_calls += 1  # (over a socket, the sink counts its own)
                    await send_all(data)
                    if not self._sent_some(size):
                        return False
                    continue
                with memoryview(data) as view:
                    for start in range(0, size, max_send):
                        with view[start : start + max_send] as chunk:
                            self._send_calls += 1
                            await send_all(chunk)
                            if not self._sent_some(len(chunk)):
                                return False
            return True
        except Exception as exc:
            # trio #889: a failed send_all sent an unknown amount; never retry.
            if self._state < _CLOSED:
                self._finish(_BROKEN, exc, "the wrapped stream's send_all failed")
            return False

    def _sent_some(self, size: int) -> bool:
        if self._state >= _CLOSED:
            # Closed (or broken) while that send was in flight: the counters
            # were settled by _finish, and nothing more is to be sent.
            return False
        self._progress(size, size)
        return True

    async def _end_probe(self) -> None:
        """Take the wrapped stream back from wait_send_all_might_not_block:
        cancel its call to the stream's own, and wait until that has ended."""
        while self._probe is not None:
            done = self._probe_done
            assert done is not None
            self._probe.cancel()
            await done.wait()

    def _progress(self, sent: int, taken: int) -> None:
        """*sent* more bytes were accepted, *taken* of them counted in _inflight;
        wake whoever that lets go."""
        buffered = len(self._buf) + self._inflight
        if buffered > self._peak:
            self._peak = buffered
        self._sent += sent
        self._inflight -= taken
        if self._guard is not None:
            self._guard.progress(self._backpressured())
        if self._flush_waiters:
            self._wake_flushers()
        self._wake_drainers_if_low()
        if self._room_event is not None:
            self._room_event.set()

    def _wake_sender(self) -> None:
        self._sender_wants_data = False
        task = self._parked_sender
        if task is not None:
            self._parked_sender = None
            reschedule(task)

    def _abort_park(self, _: RaiseCancelT) -> Abort:
        self._parked_sender = None
        return Abort.SUCCEEDED
