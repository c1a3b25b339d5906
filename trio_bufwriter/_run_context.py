"""What the writer reads of trio's run context, cheaply.

Two questions on the hot paths, each answered by one attribute chain on
trio's thread-local run context where this trio has it, and by a public
function where it does not:

* *Is the current task cancelled?*  ``drain()`` must be a cancellation
  point, yet must not yield when it does not wait (a yield per message
  would run the sender per message and defeat coalescing).
  ``trio.lowlevel.checkpoint_if_cancelled()`` is exactly that, but costs
  about 160 ns a call (a coroutine, ``current_task()``, a counter), which
  is more than ``write()`` itself.  Its test is
  ``RUN_CONTEXT.task._cancel_status.effectively_cancelled`` (it also looks
  for a pending KeyboardInterrupt in KI-protected code, which drain() is
  not).
* *Has the current task yielded since some earlier moment?*  The socket
  fast path sends one write per task step directly (see
  ``_socket_fast_path.py``): a burst of writes made without yielding is
  coalesced, while the next write after a yield goes straight out again.
  trio counts every time a task yields in ``Task._schedule_points``, so
  ``(task, task._schedule_points)`` names the step a task is in.
"""

from __future__ import annotations

from typing import Any

import trio


def _find_run_context() -> Any:
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT, CancelStatus, Task
    except ImportError:  # pragma: no cover - a trio that moved its internals
        return None
    if not (
        hasattr(Task, "_cancel_status")
        and hasattr(Task, "_schedule_points")
        and hasattr(CancelStatus, "effectively_cancelled")
    ):
        return None  # pragma: no cover
    return GLOBAL_RUN_CONTEXT


#: trio's thread-local run context, or None to use the public fallbacks.
RUN_CONTEXT: Any = _find_run_context()


def current_step() -> tuple[object, int]:
    """Name the step the current task is in: equal values mean it has not
    yielded in between.

    Without trio's internals, every call of one task names the same step
    (the writer then resets its direct send only when its sender parks).
    """
    if RUN_CONTEXT is not None:
        task = RUN_CONTEXT.task
        return task, task._schedule_points
    return trio.lowlevel.current_task(), 0  # pragma: no cover
