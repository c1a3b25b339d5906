"""A helper process (or, in tests, a thread) driven over a control pipe.

The load tests (``soak``, ``fanout``) run their far side in a process of its
own, started with "spawn" so that it shares neither the GIL nor any state,
and talk to it with picklable commands over a :func:`multiprocessing.Pipe`.
Tests may run the same code in a thread instead, to measure coverage and to
stay fast.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Literal, final

import trio

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

#: Where the far side runs: a spawned process, or (for tests) a thread.
WorkerKind = Literal["process", "thread"]


@final
class Worker:
    """The near side's handle on a worker.

    *process_main* and *thread_main* are called with the worker's end of the
    pipe followed by *args*.  Failures to talk to it raise *error* with a
    message that names it as *what*.
    """

    __slots__ = ("_control", "_error", "_what", "_worker")

    def __init__(
        self,
        kind: WorkerKind,
        process_main: Callable[..., None],
        thread_main: Callable[..., None],
        args: tuple[Any, ...],
        *,
        name: str,
        what: str,
        error: type[Exception],
    ) -> None:
        self._what = what
        self._error = error
        context = multiprocessing.get_context("spawn")
        self._control: Connection[Any, Any]
        self._control, child = context.Pipe()
        self._worker: BaseProcess | threading.Thread
        if kind == "process":
            self._worker = context.Process(
                target=process_main, args=(child, *args), name=name, daemon=True
            )
        else:
            # Only for tests: shares this process's GIL and memory.
            self._worker = threading.Thread(target=thread_main, args=(child, *args), daemon=True)
        self._worker.start()
        if kind == "process":
            # Only the child may hold its end now, so that its death reads as EOF.
            child.close()

    def send(self, command: object) -> None:
        """Send *command* to the worker."""
        try:
            self._control.send(command)
        except OSError as exc:  # pragma: no cover
            raise self._error(f"the {self._what} is gone: {exc!r}") from exc

    def recv(self, timeout: float) -> object:
        """Wait (blocking this thread) up to *timeout* seconds for the next answer."""
        try:
            if not self._control.poll(timeout):
                raise self._error(f"the {self._what} did not answer within {timeout:g} s")
            return self._control.recv()
        except (EOFError, OSError) as exc:  # pragma: no cover
            raise self._error(f"the {self._what} died") from exc

    async def ask(self, command: object, within: float) -> object:
        """Send *command* and wait, in Trio, up to *within* seconds for the answer."""
        self.send(command)
        with trio.move_on_after(within):
            await trio.lowlevel.wait_readable(self._control.fileno())
            return self.recv(0)
        raise self._error(  # pragma: no cover - it hung
            f"the {self._what} did not answer {command!r} within {within:g} s"
        )

    def close(self) -> None:
        """Ask the worker to stop (by sending None), and make sure it has."""
        with suppress(OSError):
            self._control.send(None)
        self._worker.join(10)
        if not isinstance(self._worker, threading.Thread):
            if self._worker.is_alive():  # pragma: no cover
                self._worker.terminate()
                self._worker.join()
            self._worker.close()
        self._control.close()


def ensure_fd_limit(needed: int, error: type[Exception], fewer: str) -> None:
    """Raise this process's soft limit on open files to *needed*, if it is lower.

    Raises *error* if the hard limit is lower still; *fewer* names the option
    that asks for fewer connections.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:  # pragma: no cover
        raise error(
            f"needs {needed:,} open files per process, but the hard limit is {hard:,} "
            f"(raise it with ulimit -n, or use fewer {fewer})"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))  # pragma: no cover
