"""Turning concurrent misuse of trio's one-caller-at-a-time methods into errors."""

from __future__ import annotations

from types import TracebackType
from typing import final

import trio


@final
class ConflictDetector:
    """Raise :exc:`trio.BusyResourceError` when two tasks are inside at once.

    Trio's stream contract says ``send_all``, ``wait_send_all_might_not_block``
    and ``send_eof`` may not run concurrently; this is the same tool trio uses
    internally for that (``trio._util.ConflictDetector``), kept here because
    that one is private.
    """

    __slots__ = ("_held", "_msg")

    def __init__(self, msg: str) -> None:
        self._msg = msg
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(self._msg)
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._held = False
