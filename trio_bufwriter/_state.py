"""The writer's lifecycle states and its statistics snapshot."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import final


@final
class WriterState(enum.IntEnum):
    """Where a writer is in its life.

    The states only ever move forward, in this order, with two exceptions:
    :attr:`BROKEN` can be entered from any state before :attr:`CLOSED`, and
    :meth:`~BufferedWriter.aclose` takes a broken writer to :attr:`CLOSED`.
    A :class:`PositionalWriter` uses :attr:`OPEN`, :attr:`CLOSING`,
    :attr:`BROKEN` and :attr:`CLOSED` (a broken one still ends CLOSED once
    :meth:`~PositionalWriter.aclose` has closed it).

    It is an :class:`enum.IntEnum` whose ``str()`` and ``format()`` give the
    name: ``f"{writer.state}"`` is ``"OPEN"``.
    """

    #: Accepting writes.
    OPEN = 0
    #: :meth:`~BufferedWriter.send_eof` was called: writes are refused, queued
    #: bytes are still being sent, then the end-of-file is sent.
    EOF_PENDING = 1
    #: The end-of-file has been sent to the wrapped stream.
    EOF_SENT = 2
    #: :meth:`~BufferedWriter.aclose` is flushing the queued bytes.
    CLOSING = 3
    #: Closed: the wrapped stream has been (or is being) closed.
    CLOSED = 4
    #: The wrapped stream failed, or the sender task was cancelled; every
    #: later call raises :exc:`trio.BrokenResourceError`.
    BROKEN = 5

    # An IntEnum (the library compares states by number), but it prints as
    # its name: f"{writer.state}" is "OPEN", not "0".
    def __str__(self) -> str:
        return self.name

    def __format__(self, format_spec: str) -> str:
        return format(self.name, format_spec)


@final
@dataclass(frozen=True)
class WriterStatistics:
    """A snapshot of a writer's counters, from :meth:`BufferedWriter.statistics`."""

    #: Bytes accepted by ``write()``/``writelines()``/``send_all()`` so far.
    bytes_written: int
    #: Bytes the wrapped stream's ``send_all`` has accepted so far.
    bytes_sent: int
    #: Calls to ``write()`` (each ``writelines()`` and ``send_all()`` counts once).
    write_calls: int
    #: Sends that took bytes: over a :class:`trio.SocketStream`, ``write(2)``
    #: calls (the sender's and the direct ones alike); over other streams,
    #: calls to its ``send_all``.  A batch may take several (a write split at
    #: ``max_send_size``, a socket that takes a part at a time), so
    #: ``bytes_sent / send_calls`` is the mean size of a send.
    send_calls: int
    #: The most bytes ever held at once (queued plus in flight).
    peak_buffered: int
    #: Bytes held now: written but not yet accepted by the wrapped stream.
    buffered: int
    #: The writer's state.
    state: WriterState
    #: Writes refused with :exc:`BufferLimitError` (the ``"raise"`` policy).
    overflows: int = 0
    #: Seconds the buffer has been over high water with nothing sent (see
    #: ``stall_timeout``); 0.0 when it is not stalled.
    stalled_for: float = 0.0
    #: Hand-overs of queued writes to the wrapped stream (by the sender, a
    #: direct send or a push) that carried at least one write none of which
    #: was handed over before; a write sent in pieces counts once.  So
    #: ``write_calls / batches`` is how many writes were coalesced per batch
    #: (at least 1 once everything written is sent), and
    #: ``send_calls / batches`` how many sends a batch took.
    batches: int = 0
    #: Why the writer broke (the message of :attr:`BufferedWriter.failure`,
    #: then its cause's type and message), or None if it never broke.  A
    #: writer closed normally has None.
    error: str | None = None


@final
@dataclass(frozen=True)
class PositionalStatistics:
    """A snapshot of a :class:`PositionalWriter`'s counters, from its ``statistics()``."""

    #: Calls to ``write_at()`` (empty writes included).
    write_at_calls: int
    #: Bytes accepted by ``write_at()`` so far.
    bytes_accepted: int
    #: Bytes accepted and not yet written (queued or in a worker thread).
    pending: int
    #: The most bytes ever pending at once.
    peak_pending: int
    #: Bytes the kernel accepted from ``pwrite``/``pwritev``.
    bytes_written: int
    #: Accepted bytes never written because a later write overwrote them first.
    bytes_superseded: int
    #: Contiguous runs written to their last byte (each one or more system calls).
    runs: int
    #: ``pwrite``/``pwritev`` calls made.
    syscalls: int
    #: Trips to a worker thread (one per batch, plus one per lone ``fsync``).
    thread_hops: int
    #: Batches of pieces written.
    batches: int
    #: Successful ``fsync`` calls.
    fsyncs: int
    #: The writer's state: ``OPEN``, ``CLOSING``, ``CLOSED`` or ``BROKEN``.
    state: WriterState
    #: Why the writer broke (the message of :attr:`PositionalWriter.failure`,
    #: then its cause's type and message), or None if it never broke.  A
    #: writer closed normally has None.
    error: str | None = None
