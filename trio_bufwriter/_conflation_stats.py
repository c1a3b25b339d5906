"""The statistics snapshot of a ConflatingWriter (``_conflate.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from ._state import WriterState


@final
@dataclass(frozen=True)
class ConflationStatistics:
    """A snapshot from :meth:`ConflatingWriter.statistics`.

    ``frames_written == frames_sent + frames_superseded + pending_frames +
    frames_lost`` always holds.
    """

    #: Frames accepted by ``write_latest()``.
    frames_written: int
    #: Frames handed to the writer (they will not be replaced any more).
    frames_sent: int
    #: Frames replaced by a newer frame for their key before being sent.
    frames_superseded: int
    #: Frames discarded unsent because the writer broke or was closed
    #: forcefully.
    frames_lost: int
    #: Keys with a frame waiting now.
    pending_frames: int
    #: Bytes of those frames.
    pending_bytes: int
    #: The most bytes ever pending at once.
    peak_pending_bytes: int
    #: Seconds since the longest-waiting key got an update that has not been
    #: sent yet (a newer frame for the key keeps that time: the consumer's
    #: view of the key has been out of date since then); 0.0 if none waits.
    oldest_pending_age: float
    #: Plain ``write()`` calls.
    plain_writes: int
    #: ``write_latest()`` calls refused by ``max_keys``.
    refused: int
    #: The conflating writer's state: ``OPEN``, ``CLOSING``, ``CLOSED`` or
    #: ``BROKEN``.
    state: WriterState
