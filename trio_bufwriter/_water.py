"""The checks both writers make of their size settings, and their water marks."""

from __future__ import annotations


def check_size(name: str, value: object, minimum: int) -> int:
    """*value*, if it is an int of at least *minimum*.

    Raises:
      TypeError: it is not an int (a bool is not one here).
      ValueError: it is below *minimum*.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def water_marks(high: int | None, low: int | None, default_high: int) -> tuple[int, int]:
    """The ``(high, low)`` water marks from what was given, as asyncio fills them in.

    With neither given, *high* is *default_high*; with only *low* given,
    *high* is ``4 * low``; with only *high* given, *low* is ``high // 4``.

    Raises:
      TypeError: a mark is not an int.
      ValueError: a mark is negative, or *low* is above *high*.
    """
    if high is not None:
        check_size("high_water", high, 0)
    if low is not None:
        check_size("low_water", low, 0)
    if high is None:
        high = default_high if low is None else 4 * low
    if low is None:
        low = high // 4
    if low > high:
        raise ValueError(f"low_water ({low}) must not be above high_water ({high})")
    return high, low
