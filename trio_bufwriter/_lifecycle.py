"""The lifecycle every writer shares: its state, its failure, and its task.

:class:`BufferedWriter`, :class:`ConflatingWriter` and
:class:`PositionalWriter` each have a background task (``run()``, started
once), an explicit :class:`WriterState`, and a failure that every later call
raises as a fresh :exc:`trio.BrokenResourceError` chained to the original
cause, counted as *reported* once a call has raised it (``aclose()`` raises
a failure that lost data and that no call reported).  That is written here,
once.
"""

from __future__ import annotations

from typing import NoReturn

import trio

from ._state import WriterState

_OPEN = WriterState.OPEN
_CLOSED = WriterState.CLOSED
_BROKEN = WriterState.BROKEN

#: What a user who forgot to start a writer's task is told to do.
START_ADVICE = (
    "start it in a nursery that outlives the writer (await nursery.start(writer.run)), "
    "or use the open_* context manager, which does"
)


class Lifecycle:
    """State, failure and run-once guard, for a writer class to inherit.

    Subclasses set ``_state`` themselves as they move through the open
    states; they enter :attr:`~WriterState.BROKEN` with :meth:`_set_failure`
    and raise with the ``_raise_*`` methods.  ``if self._state:`` is the
    cheapest "is it no longer OPEN?" test: OPEN is the only state that is 0.
    """

    __slots__ = ("_cause", "_message", "_reported", "_run_entered", "_state")

    def __init__(self) -> None:
        self._state = _OPEN
        #: The failure's message ("" while there is none) and its cause.
        self._message = ""
        self._cause: BaseException | None = None
        self._reported = False
        self._run_entered = False

    @property
    def state(self) -> WriterState:
        """The writer's :class:`WriterState`."""
        return self._state

    @property
    def failure(self) -> trio.BrokenResourceError | None:
        """Why the writer broke, or None if it never did.

        A new :exc:`trio.BrokenResourceError` on each read, with the message
        and ``__cause__`` that calls raise; it stays set after ``aclose()``.
        Reading it does not count as reporting the failure.
        """
        if not self._message:
            return None
        error = self._make_failure(self._message)
        error.__cause__ = self._cause
        return error

    def _make_failure(self, message: str) -> trio.BrokenResourceError:
        """The exception a failure is raised as (a subclass may add detail)."""
        return trio.BrokenResourceError(message)

    def _describe_failure(self) -> str | None:
        """The ``error`` of a statistics snapshot: the message and its cause."""
        if not self._message:
            return None
        if self._cause is None:
            return self._message
        return f"{self._message}: {type(self._cause).__name__}: {self._cause}"

    @staticmethod
    def _how_task_ended(exc: BaseException) -> str:
        """The word for a task that *exc* ended: ``"cancelled"`` or ``"interrupted"``."""
        return "cancelled" if isinstance(exc, trio.Cancelled) else "interrupted"

    def _enter_run(self) -> None:
        """``run()`` starts: only once."""
        if self._run_entered:
            raise RuntimeError(f"this {type(self).__name__}'s task was already started")
        self._run_entered = True

    async def _check_started(self, what: str) -> None:
        """Before waiting for a task that has not entered ``run()``: make sure it will.

        ``nursery.start_soon(writer.run)`` followed at once by a wait is
        legal, so a task not yet entered gets two scheduler passes (a task
        started in one batch has run by the end of the next) before this
        raises :exc:`RuntimeError`.  The caller looks at the writer again
        afterwards.
        """
        await trio.lowlevel.checkpoint()
        await trio.lowlevel.cancel_shielded_checkpoint()
        if not self._run_entered:
            raise RuntimeError(
                f"{what} would wait forever: this {type(self).__name__}'s run() was never "
                f"started; {START_ADVICE}"
            )

    def _set_failure(self, cause: BaseException | None, message: str) -> None:
        """Enter BROKEN with this failure (the caller discards and wakes); a
        CLOSED writer (whose close failed) stays CLOSED, with the failure."""
        self._cause = cause
        self._message = message
        self._reported = False
        if self._state is not _CLOSED:
            self._state = _BROKEN

    def _raise_failure(self, message: str | None = None) -> NoReturn:
        """Raise the failure (a fresh exception each time), now reported."""
        self._reported = True
        error = self._make_failure(self._message if message is None else message)
        raise error from self._cause

    def _raise_if_finished(self) -> None:
        """Raise for a BROKEN or CLOSED writer; return otherwise."""
        if self._state is _BROKEN:
            self._raise_failure()
        if self._state is _CLOSED:
            raise trio.ClosedResourceError(f"the {type(self).__name__} is closed")

    def _raise_for_waiter(self) -> NoReturn:
        """Raise for a call that was waiting when the writer finished: the
        failure if it broke meanwhile (even if closed since), else closed."""
        if self._message:
            self._raise_failure()
        self._raise_if_finished()
        raise trio.ClosedResourceError(f"the {type(self).__name__} is closing")

    def _lost_unreported(self, lost: int) -> bool:
        """Whether ``aclose()`` must raise the failure: it lost *lost* items
        and no call has reported it."""
        return self._state is _BROKEN and not self._reported and lost > 0
