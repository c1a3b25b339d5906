"""The issue's targets, and how a measured figure is checked against one.

Every target is a ratio (or a size) measured in the same run, never an
absolute time: on a shared machine only side-by-side figures mean anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._config import KiB, MiB
from ._peers import BUFWRITER, BUFWRITER_WRITE_ONLY

#: (peer, size) -> ((compared with "bulk" or "asyncio", op, bound), ...)
THROUGHPUT: dict[tuple[str, int], tuple[tuple[str, str, float], ...]] = {
    (BUFWRITER, 64): (("asyncio", ">=", 8.0),),
    (BUFWRITER_WRITE_ONLY, 64): (("asyncio", ">=", 12.0),),
    (BUFWRITER, KiB): (("bulk", ">=", 0.4),),
    (BUFWRITER, 16 * KiB): (("bulk", ">=", 0.85), ("asyncio", ">=", 1.0)),
    (BUFWRITER, MiB): (("bulk", ">=", 0.9),),
}
#: p50 same CPU, bufwriter / trio send_all.
LATENCY_VS_TRIO = 1.1
#: Stretch: p50 same CPU, bufwriter / asyncio.
LATENCY_VS_ASYNCIO = 1.0
#: Bytes per idle writer, sender task included (tracemalloc).
IDLE_WRITER_BYTES = 4 * KiB
#: writer.write(64 B) / bare bytearray +=.
WRITE_VS_BYTEARRAY = 1.6


@dataclass(frozen=True)
class Check:
    """One target checked: *measured* *op* *bound*."""

    #: What is compared, e.g. ``"64 B: msgs/s / asyncio drain each"``.
    what: str
    measured: float | None
    op: str
    bound: float
    #: How the figures are printed: ``"x"`` for a ratio, ``" B"`` for bytes.
    unit: str = "x"
    stretch: bool = False

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None: not measured)."""
        if self.measured is None:
            return None
        if self.op == ">=":
            return self.measured >= self.bound
        return self.measured <= self.bound

    def cell(self) -> str:
        """``met 9.12x >= 8x``, ``NOT MET 5.1x < 8x`` or ``n/a``."""
        if self.measured is None:
            return f"n/a (target {self.op} {format_figure(self.bound, self.unit)})"
        verdict = "met" if self.met else "NOT MET"
        if self.stretch:
            verdict = f"stretch {verdict}"
        op = self.op if self.met else {">=": "<", "<=": ">"}[self.op]
        return (
            f"{verdict} {format_figure(self.measured, self.unit)} {op} "
            f"{format_figure(self.bound, self.unit)}"
        )

    def to_json(self) -> dict[str, object]:
        """The check as plain data."""
        return {
            "what": self.what,
            "measured": self.measured,
            "op": self.op,
            "bound": self.bound,
            "unit": self.unit.strip(),
            "stretch": self.stretch,
            "met": self.met,
        }


def format_ratio(value: float) -> str:
    """A ratio with about three significant digits: ``12.3x``, ``0.91x``, ``0.0031x``."""
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    if value >= 0.1:
        return f"{value:.2f}x"
    return f"{value:.2g}x"


def format_figure(value: float, unit: str) -> str:
    """*value* as a ratio (unit ``x``) or with its unit (``1,234 B``, ``18.1 MiB``)."""
    if unit == "x":
        return format_ratio(value)
    if unit == " MiB":
        return f"{value / MiB:,.2f} MiB"
    return f"{value:,.0f}{unit}"


def throughput_checks(
    peer: str, size: int, x_bulk: float | None, x_asyncio: float | None
) -> list[Check]:
    """The checks that apply to *peer* at *size* (none for most rows)."""
    checks = []
    for against, op, bound in THROUGHPUT.get((peer, size), ()):
        measured = x_bulk if against == "bulk" else x_asyncio
        what = "MB/s / raw bulk" if against == "bulk" else "msgs/s / asyncio drain each"
        checks.append(Check(what, measured, op, bound))
    return checks
