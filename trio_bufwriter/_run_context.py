"""The only module that reads trio's private internals, and its public fallbacks.

Two questions on the hot paths:

* :func:`cancel_pending`: is the current task cancelled?  ``drain()`` and a
  read the buffer answers must be cancellation points without yielding.
  The fast answer is one attribute chain on trio's run context; the public
  one, :func:`trio.current_effective_deadline` being ``-inf``, is exact too
  but walks the cancel scopes (about 3x slower).
* :func:`current_step`: has the current task yielded since an earlier
  call?  trio counts a task's yields in ``Task._schedule_points``; without
  it every call names the same step, and the writer's direct sends fall
  back to "once per idle spell of the sender" (``DESIGN.md``).

The choice is made once, at import: the internals when this trio has them,
unless the environment variable ``TRIO_BUFWRITER_PUBLIC_ONLY`` is set to a
non-empty value (CI runs the whole suite both ways).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import trio


def _find_run_context() -> Any:
    if os.environ.get("TRIO_BUFWRITER_PUBLIC_ONLY"):
        return None
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT, CancelStatus, Task
    except ImportError:  # pragma: no cover - a trio that moved its internals
        return None
    if not (
        hasattr(Task, "_cancel_status")
        and hasattr(Task, "_schedule_points")
        and hasattr(CancelStatus, "effectively_cancelled")
    ):
        return None  # pragma: no cover - a trio that renamed them
    return GLOBAL_RUN_CONTEXT


#: Whether trio's internals are in use (else the public fallbacks).
USES_INTERNALS = _find_run_context() is not None


class _PublicCancelStatus:
    """``.effectively_cancelled`` from trio's public API."""

    __slots__ = ()

    @property
    def effectively_cancelled(self) -> bool:
        return trio.current_effective_deadline() == -math.inf


class _PublicTask:
    __slots__ = ()
    _cancel_status = _PublicCancelStatus()


class _PublicRunContext:
    """What the hot paths read of trio's run context, answered publicly."""

    __slots__ = ()
    task = _PublicTask()


#: The hot paths' one inlined idiom, ``RUN_CONTEXT.task._cancel_status.
#: effectively_cancelled`` (is the current task cancelled?), reads trio's
#: thread-local run context, or this module's public stand-in for it: the
#: switch is here, once.  (A function call would cost about 40% more than
#: the attribute chain, on drain()'s and the reads' hot paths.)
RUN_CONTEXT: Any = _find_run_context() if USES_INTERNALS else _PublicRunContext()


def cancel_pending() -> bool:
    """Whether the current task is in a cancelled scope (so a checkpoint
    would raise :exc:`trio.Cancelled`); it never yields.  The idiom above,
    as a function, for code off the hot paths."""
    return RUN_CONTEXT.task._cancel_status.effectively_cancelled  # type: ignore[no-any-return]


def _internal_step() -> tuple[object, int]:
    task = RUN_CONTEXT.task
    return task, task._schedule_points


def _public_step() -> tuple[object, int]:
    return trio.lowlevel.current_task(), 0


#: The step the current task is in: equal values mean it has not yielded in
#: between (with the public fallback, every call of a task is one step).
current_step: Callable[[], tuple[object, int]] = _internal_step if USES_INTERNALS else _public_step
