"""The few statistics the benchmarks need, as small pure functions."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TypeVar

_T = TypeVar("_T")


def median(values: Sequence[float]) -> float:
    """The median of *values* (the mean of the middle two for an even count)."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The *q*-th percentile (0 < q <= 100) of *values*, by the nearest-rank method.

    Nearest rank always returns one of the measured values: p99 of 3,000
    round trips is the 2,970th smallest, not an interpolation.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return float(ordered[max(rank, 1) - 1])


def spread(values: Sequence[float]) -> float:
    """``(max - min) / median`` of *values*: how far apart the repeated runs were."""
    middle = median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None if either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def round_count(value: float, minimum: int, maximum: int) -> int:
    """*value* rounded to two significant digits and clamped to [minimum, maximum]."""
    if value < 1:
        return max(minimum, min(maximum, 1))
    digits = int(10 ** max(0, math.floor(math.log10(value)) - 1))
    return max(minimum, min(maximum, round(value / digits) * digits))


def rotated(items: Sequence[_T], by: int) -> list[_T]:
    """*items* rotated left by *by* places (modulo their number): a round's run order."""
    shift = by % len(items) if items else 0
    return [*items[shift:], *items[:shift]]
