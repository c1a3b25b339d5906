"""A cancellation check cheap enough for drain()'s per-message fast path.

``drain()`` must be a cancellation point, yet must not yield when it does not
wait (a yield per message would run the sender per message and defeat
coalescing).  ``trio.lowlevel.checkpoint_if_cancelled()`` is exactly that, but
costs about 160 ns a call (a coroutine, ``current_task()``, a counter), which
is more than ``write()`` itself.  The check it makes is one attribute chain on
trio's run context; we read the same chain directly when this trio has it,
and fall back to the public function when it does not.
"""

from __future__ import annotations

from typing import Any


def _find_run_context() -> Any:
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT, CancelStatus, Task
    except ImportError:  # pragma: no cover - a trio that moved its internals
        return None
    if not (hasattr(Task, "_cancel_status") and hasattr(CancelStatus, "effectively_cancelled")):
        return None  # pragma: no cover
    return GLOBAL_RUN_CONTEXT


#: trio's thread-local run context, or None to use the public fallback.  While
#: a task runs, ``RUN_CONTEXT.task._cancel_status.effectively_cancelled`` is
#: what ``checkpoint_if_cancelled()`` tests (it also looks for a pending
#: KeyboardInterrupt in KI-protected code, which drain() is not).
RUN_CONTEXT: Any = _find_run_context()
