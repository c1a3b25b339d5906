"""The docs' chart: throughput as a fraction of raw bulk, grouped by message size.

matplotlib is optional (the ``bench`` extra); without it the chart is skipped
with a note, and everything else still runs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

from ._config import size_label
from ._machine import optional_module
from ._peers import BUFWRITER, BUFWRITER_WRITE_ONLY, RAW_BULK
from ._report import ThroughputRow


def write_chart(rows: Sequence[ThroughputRow], path: str, title: str) -> str:
    """Save a PNG of grouped bars (one per peer) of MB/s / raw bulk per size to *path*.

    Creates the directory if needed.  Returns a line for the report: where the
    chart went, or why there is none.
    """
    matplotlib = optional_module("matplotlib")
    if matplotlib is None:
        return "chart skipped: matplotlib is not installed (pip install 'trio-bufwriter[bench]')"
    plotted = [row for row in rows if row.peer != RAW_BULK and row.x_bulk]
    if not plotted:
        return "chart skipped: no throughput ratios to raw bulk were measured"
    matplotlib.use("Agg")
    _draw(importlib.import_module("matplotlib.pyplot"), plotted, path, title)
    return f"chart written to {path}"


def _draw(
    pyplot: Any, rows: Sequence[ThroughputRow], path: str, title: str
) -> None:  # pragma: no cover - needs matplotlib, which CI does not install
    """Draw *rows* with matplotlib's *pyplot* and save the figure to *path*."""
    sizes = sorted({row.size for row in rows})
    peers = list(dict.fromkeys(row.peer for row in rows))
    by_key = {(row.peer, row.size): row for row in rows}
    width = 0.84 / len(peers)
    figure, axes = pyplot.subplots(figsize=(13, 5.5))
    for i, peer in enumerate(peers):
        xs, ys = [], []
        for j, size in enumerate(sizes):
            row = by_key.get((peer, size))
            if row is not None:
                xs.append(j - 0.42 + width * (i + 0.5))
                ys.append(row.x_bulk)
        ours = peer in (BUFWRITER, BUFWRITER_WRITE_ONLY)
        axes.bar(xs, ys, width, label=peer, edgecolor="black" if ours else None, linewidth=0.8)
    axes.axhline(1.0, color="black", linestyle="--", linewidth=1, label="raw bulk (the limit)")
    axes.set_yscale("log")
    axes.set_xticks(range(len(sizes)), [size_label(size) for size in sizes])
    axes.set_xlabel("message size")
    axes.set_ylabel("MB/s / raw bulk MB/s (log scale)")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
