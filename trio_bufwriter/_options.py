"""The writer's keyword options: their names, and the error for a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from functools import wraps
from typing import TYPE_CHECKING, Literal, TypeVar

from ._limits import OverflowPolicy

if TYPE_CHECKING:
    from typing_extensions import ParamSpec, TypedDict

    P = ParamSpec("P")

    class WriterOptions(TypedDict, total=False):
        """The keyword arguments of :class:`BufferedWriter`, for the wrappers
        that pass them through."""

        high_water: int | None
        low_water: int | None
        max_send_size: int
        notsent_lowat: int | Literal["leave"] | None
        max_buffer: int | None
        overflow: OverflowPolicy
        stall_timeout: float | None


#: The names of :class:`BufferedWriter`'s keyword options.
WRITER_OPTIONS = (
    "high_water",
    "low_water",
    "max_send_size",
    "notsent_lowat",
    "max_buffer",
    "overflow",
    "stall_timeout",
)

R = TypeVar("R")


def check_options(where: str, options: Mapping[str, object], known: tuple[str, ...]) -> None:
    """Raise :exc:`TypeError` naming *where* for an option not in *known*,
    with the nearest known name as a suggestion."""
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"{where} got an unexpected keyword argument {name!r}{hint} "
                f"(its options: {', '.join(known)})"
            )


def named_options(where: str, known: tuple[str, ...]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a constructor so a misspelt keyword says *where* and what was meant.

    The signature shown by :func:`inspect.signature` and the docs is the
    constructor's own.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            check_options(where, kwargs, known)
            return function(*args, **kwargs)

        return checked

    return decorate
