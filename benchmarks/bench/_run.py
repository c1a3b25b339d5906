"""``python -m benchmarks bench``: run the chosen parts, print, save."""

from __future__ import annotations

import json
import os
import sys
from time import perf_counter
from typing import TextIO

from trio_bufwriter._loopback import ReceiverError

from ._chart import write_chart
from ._config import BenchOptions
from ._json import to_json
from ._latency import measure_latency
from ._machine import machine_facts
from ._memory import measure_memory
from ._micro import measure_micro
from ._report import BenchResult, header_lines, report_lines, throughput_rows
from ._throughput import BenchError, measure_throughput


def _measure(result: BenchResult, err: TextIO) -> None:
    """Fill in *result* with every part asked for, in :data:`~._config.PARTS` order.

    A part that fails (a run raised, a byte count was wrong) is reported on
    *err* and recorded in ``result.errors``; the other parts still run.
    """
    options, budget = result.options, result.options.budget
    started = perf_counter()

    def progress(message: str) -> None:
        print(f"[{perf_counter() - started:6.1f} s] {message}", file=err, flush=True)

    for part in options.only:
        try:
            if part == "throughput":
                result.throughput = measure_throughput(
                    budget, options.sizes, pin=options.pin, progress=progress
                )
            elif part == "latency":
                result.latency = measure_latency(budget, progress=progress)
            elif part == "memory":
                result.memory = measure_memory(budget, progress=progress)
            else:
                result.micro = measure_micro(budget, progress=progress)
        except (BenchError, ReceiverError) as exc:
            result.errors.append(f"{part}: {exc}")
            print(f"error: {part}: {exc}", file=err, flush=True)


def _save_json(result: BenchResult, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(to_json(result), file, separators=(",", ":"))
        file.write("\n")
    return f"JSON written to {path}"


def _chart_title(result: BenchResult) -> str:
    facts = result.machine
    return (
        f"trio_bufwriter {facts['trio_bufwriter']}: loopback TCP throughput as a fraction of "
        f"raw bulk, medians of {result.options.budget.repeat} interleaved runs\n"
        f"{facts['date']}, {facts['cpus']} CPUs, {facts['python']}, trio {facts['trio']}, "
        f"{facts['kernel']}"
    )


def run_bench(
    options: BenchOptions,
    *,
    command: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the bench, print the report to *out* (stdout), progress to *err* (stderr).

    Returns the exit status: 0 when everything was measured (whether or not
    the targets were met: the numbers are for people to read); 1 if a part
    failed (a run raised or a byte count was wrong: the other parts are
    still measured and reported, with ``error: ...`` lines); 130 if
    interrupted.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    started = perf_counter()
    result = BenchResult(machine_facts(command), options)
    print("\n".join(header_lines(result)), end="\n\n", file=out, flush=True)
    try:
        _measure(result, err)
    except KeyboardInterrupt:
        print("interrupted", file=err, flush=True)
        return 130
    result.wall_seconds = perf_counter() - started
    lines = report_lines(result)
    if options.json_path is not None:
        lines.append(_save_json(result, options.json_path))
    if options.chart_path is not None:
        if result.throughput is None:
            lines.append("chart skipped: the throughput part was not run")
        else:
            rows = throughput_rows(result.throughput)
            lines.append(write_chart(rows, options.chart_path, _chart_title(result)))
    lines.append(f"wall time: {perf_counter() - started:.1f} s")
    print("\n".join(lines), file=out, flush=True)
    return 1 if result.errors else 0
