"""Turning a batch of positional writes into a few large, ordered writes.

A batch is every ``(offset, data)`` piece accepted since the owner task's last
trip to a worker thread, in call order.  Applying them one by one in call
order defines the result; :func:`plan_batch` produces the same result with as
few system calls as it can: pieces sorted by offset, bytes a later piece
overwrites dropped, and pieces that meet end to start gathered into one
*run* that a single ``pwritev`` writes.
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, final


def _iov_max() -> int:
    try:
        value = os.sysconf("SC_IOV_MAX")
    except (AttributeError, ValueError, OSError):  # not Linux
        value = -1
    # POSIX guarantees 16; Linux says 1024.  -1 means "no limit known".
    return value if value > 0 else 16


#: Buffers one ``pwritev`` may gather (the kernel refuses more with EINVAL).
IOV_MAX: Final = _iov_max()

#: The most bytes one run holds.  Linux writes at most 0x7ffff000 bytes a
#: call anyway; a run well below that keeps each call's work bounded.
MAX_RUN_BYTES: Final = 1 << 30

#: A byte range ``(start, end)``, end exclusive.
Range = tuple[int, int]


@final
@dataclass(slots=True)
class Run:
    """Contiguous bytes starting at :attr:`offset`, as a list of buffers."""

    offset: int
    buffers: list[memoryview] = field(default_factory=list)
    length: int = 0

    @property
    def end(self) -> int:
        return self.offset + self.length


@final
@dataclass(frozen=True, slots=True)
class Plan:
    """What :func:`plan_batch` decided for one batch."""

    #: Disjoint runs in offset order.
    runs: list[Run]
    #: Bytes of the batch that a later piece overwrote, so are never written.
    superseded: int


def plan_batch(
    pieces: Sequence[tuple[int, bytes]],
    *,
    iov_max: int = IOV_MAX,
    max_run_bytes: int = MAX_RUN_BYTES,
) -> Plan:
    """Plan the writes for *pieces* (non-empty ``(offset, data)`` in call order).

    Writing the returned runs, in any order, leaves the file exactly as
    writing the pieces one by one in call order would.
    """
    order = sorted(range(len(pieces)), key=lambda i: pieces[i][0])
    segments: list[tuple[int, memoryview]] = []
    overlap = False
    prev_end = -1
    for i in order:
        offset, data = pieces[i]
        if offset < prev_end:
            overlap = True
            break
        prev_end = offset + len(data)
        segments.append((offset, memoryview(data)))
    superseded = 0
    if overlap:
        segments, superseded = _resolve_overlaps(pieces)
    return Plan(_gather(segments, iov_max, max_run_bytes), superseded)


def _resolve_overlaps(
    pieces: Sequence[tuple[int, bytes]],
) -> tuple[list[tuple[int, memoryview]], int]:
    """Keep, of every byte, the copy from the last piece that wrote it.

    Walks the pieces from the last call to the first, keeping a sorted list of
    the disjoint ranges already claimed by later pieces; each piece keeps only
    the gaps between them.
    """
    starts: list[int] = []
    ends: list[int] = []
    segments: list[tuple[int, memoryview]] = []
    superseded = 0
    for offset, data in reversed(pieces):
        end = offset + len(data)
        view = memoryview(data)
        # Claimed ranges [starts[k], ends[k]) with i <= k < j overlap this piece.
        i = bisect_right(ends, offset)
        j = bisect_left(starts, end)
        cursor = offset
        for k in range(i, j):
            if starts[k] > cursor:
                segments.append((cursor, view[cursor - offset : starts[k] - offset]))
            cursor = max(cursor, ends[k])
        if cursor < end:
            segments.append((cursor, view[cursor - offset :]))
        kept_start = offset if i == j else min(offset, starts[i])
        kept_end = end if i == j else max(end, ends[j - 1])
        superseded += sum(min(end, ends[k]) - max(offset, starts[k]) for k in range(i, j))
        starts[i:j] = [kept_start]
        ends[i:j] = [kept_end]
    segments.sort(key=lambda segment: segment[0])
    return segments, superseded


def _gather(segments: list[tuple[int, memoryview]], iov_max: int, max_run_bytes: int) -> list[Run]:
    """Join segments that meet end to start into runs of at most *iov_max* buffers."""
    runs: list[Run] = []
    run: Run | None = None
    for offset, view in segments:
        size = len(view)
        if (
            run is None
            or offset != run.end
            or len(run.buffers) >= iov_max
            or run.length + size > max_run_bytes
        ):
            run = Run(offset)
            runs.append(run)
        run.buffers.append(view)
        run.length += size
    return runs


def coalesce(ranges: list[Range]) -> list[Range]:
    """Sort *ranges* and join the ones that overlap or touch."""
    merged: list[Range] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
