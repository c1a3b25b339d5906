"""``python -m benchmarks positional-bench``: assembling a file from pieces in random order.

The workload of a parallel-range download: a file of ``size`` bytes written
as ``piece``-byte pieces, in a seeded random order, by ``tasks`` tasks that
share one queue of pieces.  Three ways of writing the same bytes, measured in
one run, side by side, in ``repeat`` interleaved rounds (the order of the
methods rotated every round):

(a) :data:`POSITIONAL`: one :func:`~trio_bufwriter.open_positional_writer`;
    each task calls ``await drain()`` then ``write_at(offset, piece)`` (the
    order that keeps the writer within high water plus one piece);
(b) :data:`THREAD_EACH`: each task calls
    ``await trio.to_thread.run_sync(os.pwrite, fd, piece, offset)`` per piece;
(c) :data:`SEQUENTIAL`, the limit: the whole file, in order, in one worker
    thread hop that calls ``os.pwrite`` on :data:`SEQUENTIAL_CHUNK` bytes at a
    time;
(d) :data:`ONE_HOP_LOOP`, a reference without a target: every piece, in the
    same random order, written by one ``os.pwrite`` each in a single worker
    thread hop: what the kernel alone charges for the pieces in this order,
    with no Python, task switch or thread hop between them.

Every run overwrites one file in place, filled beforehand (untimed) with a
pattern that is not the source; with ``fresh_file`` (``--fresh-file``),
every run writes a new, empty file instead.  In place is the default because
it measures the write path itself: on a VM, the time the page cache takes
to get fresh memory for a new file varied from run to run by 4x (1.0 to 4.3
GB/s for the same sequential write), more than everything else measured.

The clock runs from the opened file until every byte has reached the OS
(the writer's final flush included); with ``fsync`` it also includes an
``os.fsync`` in all three.  Opening, closing and deleting the file are not
timed.  After every run the file is read back and its SHA-256 compared with
the source's: a run that wrote wrong bytes (or left any byte unwritten)
makes the command fail.

The report: MB/s (medians), syscalls and thread hops per piece, the
writer's peak pending bytes against its budget (high water plus one piece),
and the ratios a/b
and a/c checked against :data:`TARGET_VS_THREAD_EACH` and
:data:`TARGET_VS_SEQUENTIAL`.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import random
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from time import perf_counter
from typing import Any, TextIO

import trio

from trio_bufwriter import DEFAULT_POSITIONAL_HIGH_WATER, open_positional_writer
from trio_bufwriter._cli import positive_int

from .bench._config import KiB, MiB
from .bench._machine import machine_facts
from .bench._report import align
from .bench._stats import median, ratio, rotated, spread
from .bench._targets import Check, format_ratio

POSITIONAL = "positional writer"
THREAD_EACH = "to_thread pwrite each"
SEQUENTIAL = "sequential (limit)"
ONE_HOP_LOOP = "pwrite loop, one hop"
#: The methods, in the order of the first round (later rounds rotate it).
METHODS = (POSITIONAL, THREAD_EACH, SEQUENTIAL, ONE_HOP_LOOP)

#: Target: MB/s of (a) over (b).
TARGET_VS_THREAD_EACH = 5.0
#: Target: MB/s of (a) over (c).
TARGET_VS_SEQUENTIAL = 0.7
#: Bytes per ``os.pwrite`` in the sequential run.
SEQUENTIAL_CHUNK = MiB

DEFAULT_SIZE_MIB = 256
DEFAULT_PIECE_KIB = 16
DEFAULT_TASKS = 8
DEFAULT_REPEAT = 3
DEFAULT_SEED = 1

#: The JSON document's format; bump it when its shape changes.
SCHEMA = "trio_bufwriter-positional-bench/1"


@dataclass(frozen=True)
class PositionalBenchOptions:
    """What to measure: the command's options."""

    #: The file's size in bytes.
    size: int = DEFAULT_SIZE_MIB * MiB
    #: Bytes per piece (the last piece may be shorter).
    piece: int = DEFAULT_PIECE_KIB * KiB
    #: Tasks writing pieces concurrently, in (a) and (b).
    tasks: int = DEFAULT_TASKS
    #: Timed rounds; each round runs every method once.
    repeat: int = DEFAULT_REPEAT
    #: Where the file is written (None: :func:`tempfile.gettempdir`).
    directory: str | None = None
    #: Also ``os.fsync`` the file before stopping the clock, in every method.
    fsync: bool = False
    #: Also save everything measured there, as JSON.
    json_path: str | None = None
    #: A new, empty file for every run, instead of overwriting one file in place.
    fresh_file: bool = False
    #: Seeds the source bytes and the order of the pieces.
    seed: int = DEFAULT_SEED
    #: The writer's high water (None: its default); not a command-line option.
    high_water: int | None = None

    @property
    def pieces(self) -> int:
        """How many pieces the file is cut into."""
        return -(-self.size // self.piece)

    def where(self) -> str:
        """The directory the file is written in."""
        return self.directory if self.directory is not None else tempfile.gettempdir()


@dataclass
class Workload:
    """The source bytes, cut into pieces, and the order the pieces are written in."""

    data: bytes
    #: ``data`` cut into pieces: separate ``bytes`` objects, as received ones would be.
    pieces: list[bytes]
    piece: int
    #: Piece indices, shuffled.
    order: list[int]
    sha256: str

    @classmethod
    def make(cls, size: int, piece: int, seed: int) -> Workload:
        """*size* seeded random bytes in *piece*-byte pieces, in a seeded random order."""
        rng = random.Random(seed)
        data = b"".join(rng.randbytes(min(MiB, size - start)) for start in range(0, size, MiB))
        pieces = [data[start : start + piece] for start in range(0, size, piece)]
        order = list(range(len(pieces)))
        rng.shuffle(order)
        return cls(data, pieces, piece, order, hashlib.sha256(data).hexdigest())

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Run:
    """One timed run of one method."""

    method: str
    round: int
    seconds: float
    #: Write syscalls (pwrite/pwritev) made.
    syscalls: int
    #: Round trips to a worker thread.
    thread_hops: int
    #: Whether the file held exactly the source bytes afterwards.
    content_ok: bool
    #: The file's SHA-256 and size after the run.
    sha256: str
    file_size: int
    #: (a) only: the writer's statistics and water marks.
    statistics: dict[str, Any] | None = None
    high_water: int | None = None
    low_water: int | None = None


@dataclass
class PositionalBenchResult:
    """Everything one run of the command measured, with where and how."""

    options: PositionalBenchOptions
    machine: dict[str, object]
    sha256: str = ""
    runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_seconds: float | None = None

    def series(self, method: str) -> list[Run]:
        """The runs of *method*, in the order they ran."""
        return [run for run in self.runs if run.method == method]

    def median_seconds(self, method: str) -> float | None:
        runs = self.series(method)
        return median([run.seconds for run in runs]) if runs else None

    def mb_per_s(self, method: str) -> float | None:
        """Median MB/s (10^6 bytes a second) of *method*."""
        seconds = self.median_seconds(method)
        return self.options.size / seconds / 1e6 if seconds else None

    def spread(self, method: str) -> float | None:
        runs = self.series(method)
        return spread([run.seconds for run in runs]) if runs else None

    def per_piece(self, method: str, what: str) -> float | None:
        """Median of *what* (``"syscalls"`` or ``"thread_hops"``) per piece for *method*."""
        runs = self.series(method)
        if not runs:
            return None
        return median([getattr(run, what) for run in runs]) / self.options.pieces

    def peak_pending(self) -> int | None:
        """The highest peak pending of the positional writer over its runs."""
        peaks = [
            int(run.statistics["peak_pending"])
            for run in self.series(POSITIONAL)
            if run.statistics is not None
        ]
        return max(peaks) if peaks else None

    def pending_budget(self) -> int | None:
        """The writer's budget: high water plus one piece."""
        waters = [run.high_water for run in self.series(POSITIONAL) if run.high_water is not None]
        return max(waters) + self.options.piece if waters else None

    @property
    def content_ok(self) -> bool:
        """Every run wrote exactly the source bytes, and there was at least one run."""
        return bool(self.runs) and all(run.content_ok for run in self.runs)

    def checks(self) -> list[Check]:
        """The targets, from the medians of this run."""
        positional = self.mb_per_s(POSITIONAL)
        checks = [
            Check(
                f"MB/s: {POSITIONAL} / {THREAD_EACH}",
                ratio(positional, self.mb_per_s(THREAD_EACH)),
                ">=",
                TARGET_VS_THREAD_EACH,
            ),
            Check(
                f"MB/s: {POSITIONAL} / {SEQUENTIAL}",
                ratio(positional, self.mb_per_s(SEQUENTIAL)),
                ">=",
                TARGET_VS_SEQUENTIAL,
            ),
        ]
        budget = self.pending_budget()
        if budget is not None:
            checks.append(
                Check(
                    f"{POSITIONAL}: peak pending / high water + one piece",
                    self.peak_pending(),
                    "<=",
                    budget,
                    unit=" B",
                )
            )
        return checks


# ----------------------------------------------------------------------
# The methods.  Each writes work's pieces to the open *fd* and returns
# (syscalls, thread hops, details); the caller times it.

Counts = tuple[int, int, dict[str, Any]]
Method = Callable[[int, Workload, PositionalBenchOptions], Awaitable[Counts]]


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    """Write all of *data* at *offset* with ``os.pwrite``; return the calls made."""
    calls = 0
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        calls += 1
        if written <= 0:  # never spin
            raise OSError(errno.EIO, f"pwrite at {offset} wrote nothing")
        view, offset = view[written:], offset + written
    return calls


def _shared_order(work: Workload) -> Iterator[int]:
    """One iterator over the shuffled pieces, shared by every task: a work queue."""
    return iter(work.order)


async def _positional(fd: int, work: Workload, options: PositionalBenchOptions) -> Counts:
    queue, piece, pieces = _shared_order(work), work.piece, work.pieces
    high_water = DEFAULT_POSITIONAL_HIGH_WATER if options.high_water is None else options.high_water
    async with open_positional_writer(fd, high_water=high_water) as writer:

        async def feed() -> None:
            for index in queue:
                # drain() first: a task waiting for room then holds its piece
                # itself, so pending passes high water by one piece at most.
                await writer.drain()
                writer.write_at(index * piece, pieces[index])

        async with trio.open_nursery() as nursery:
            for _ in range(options.tasks):
                nursery.start_soon(feed)
        await writer.flush(fsync=options.fsync)
    stats = writer.statistics()
    details = {
        "statistics": {
            name: value.name if hasattr(value, "name") else value
            for name, value in asdict(stats).items()
        },
        "high_water": writer.high_water,
        "low_water": writer.low_water,
    }
    return stats.syscalls, stats.thread_hops, details


async def _thread_each(fd: int, work: Workload, options: PositionalBenchOptions) -> Counts:
    queue, piece, pieces = _shared_order(work), work.piece, work.pieces
    syscalls = hops = 0

    async def feed() -> None:
        nonlocal syscalls, hops
        for index in queue:
            # (Not `syscalls += await ...`: that would read syscalls before the await.)
            calls = await trio.to_thread.run_sync(_pwrite_all, fd, pieces[index], index * piece)
            syscalls += calls
            hops += 1

    async with trio.open_nursery() as nursery:
        for _ in range(options.tasks):
            nursery.start_soon(feed)
    if options.fsync:
        await trio.to_thread.run_sync(os.fsync, fd)
        hops += 1
    return syscalls, hops, {}


def _write_sequentially(fd: int, data: bytes, fsync: bool) -> int:
    view = memoryview(data)
    calls = sum(
        _pwrite_all(fd, view[start : start + SEQUENTIAL_CHUNK], start)
        for start in range(0, len(data), SEQUENTIAL_CHUNK)
    )
    if fsync:
        os.fsync(fd)
    return calls


async def _sequential(fd: int, work: Workload, options: PositionalBenchOptions) -> Counts:
    syscalls = await trio.to_thread.run_sync(_write_sequentially, fd, work.data, options.fsync)
    return syscalls, 1, {}


def _write_pieces(fd: int, work: Workload, fsync: bool) -> int:
    piece, pieces = work.piece, work.pieces
    calls = sum(_pwrite_all(fd, pieces[index], index * piece) for index in work.order)
    if fsync:
        os.fsync(fd)
    return calls


async def _one_hop_loop(fd: int, work: Workload, options: PositionalBenchOptions) -> Counts:
    syscalls = await trio.to_thread.run_sync(_write_pieces, fd, work, options.fsync)
    return syscalls, 1, {}


#: The methods measured, by name (tests may swap one for a broken one).
METHOD_FUNCTIONS: dict[str, Method] = {
    POSITIONAL: _positional,
    THREAD_EACH: _thread_each,
    SEQUENTIAL: _sequential,
    ONE_HOP_LOOP: _one_hop_loop,
}


# ----------------------------------------------------------------------
# Measuring


def _file_digest(path: str) -> tuple[str, int]:
    """The SHA-256 and size of the file at *path*."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        while chunk := file.read(4 * MiB):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _run_timeout(size: int) -> float:
    """Seconds after which a run is taken to hang: a minute, plus a second per MiB."""
    return 60.0 + size / MiB


def _new_file(directory: str) -> str:
    """Create an empty file in *directory*; return its path."""
    fd, path = tempfile.mkstemp(prefix="positional-bench-", suffix=".bin", dir=directory)
    os.close(fd)
    return path


def _scrub(path: str, size: int, piece: int) -> None:
    """Overwrite the file at *path* with *size* bytes of a pattern that is not the source.

    So that a run which leaves any byte unwritten fails the content check,
    though the file already held the source from the run before.

    It writes *piece* bytes a call, because the first fill decides the size
    of the page-cache folios that every later run writes into: Linux makes
    large folios for large writes, and then each small random write dirties
    a whole large folio, which made every small-write method here 3x slower
    (a real file assembled from pieces gets its folios from piece-sized
    writes).  Sequential 1 MiB writes are as fast either way.
    """
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        pattern = b"\xa5" * min(size, piece)
        for start in range(0, size, piece):
            _pwrite_all(fd, pattern[: min(piece, size - start)], start)
    finally:
        os.close(fd)


async def _measure_one(
    method: str, round_: int, work: Workload, options: PositionalBenchOptions, path: str
) -> Run:
    """Time one run of *method* writing the file at *path*; check the file's bytes after."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        with trio.fail_after(_run_timeout(work.size)):
            started = perf_counter()
            syscalls, hops, details = await METHOD_FUNCTIONS[method](fd, work, options)
            seconds = perf_counter() - started
    finally:
        os.close(fd)
    sha256, file_size = await trio.to_thread.run_sync(_file_digest, path)
    return Run(
        method,
        round_,
        seconds,
        syscalls,
        hops,
        sha256 == work.sha256 and file_size == work.size,
        sha256,
        file_size,
        details.get("statistics"),
        details.get("high_water"),
        details.get("low_water"),
    )


async def _measure(
    result: PositionalBenchResult, work: Workload, progress: Callable[[str], None]
) -> None:
    options = result.options
    path = _new_file(options.where())
    try:
        for round_ in range(options.repeat):
            for method in rotated(METHODS, round_):
                # Untimed: a new empty file, or the same file with other bytes in it.
                if options.fresh_file:
                    os.unlink(path)
                    path = _new_file(options.where())
                else:
                    await trio.to_thread.run_sync(_scrub, path, work.size, work.piece)
                try:
                    run = await _measure_one(method, round_, work, options, path)
                # Whatever a run raised (an OSError, a write error, a group of them
                # from the tasks, a timeout) is reported; the other runs go on.
                except Exception as exc:
                    message = f"round {round_ + 1}, {method}: {type(exc).__name__}: {exc}"
                    result.errors.append(message)
                    progress(f"error: {message}")
                    continue
                result.runs.append(run)
                verdict = "content ok" if run.content_ok else "WRONG CONTENT"
                progress(
                    f"round {round_ + 1}/{options.repeat}: {method:<22} "
                    f"{options.size / run.seconds / 1e6:9,.1f} MB/s  {verdict}"
                )
    finally:
        os.unlink(path)


# ----------------------------------------------------------------------
# The report


def _mb_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _per_piece_cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def header_lines(result: PositionalBenchResult) -> list[str]:
    """What is measured, how and where: printed before the measuring starts."""
    options, facts = result.options, result.machine
    load = facts["load_average_at_start"]
    load_text = " ".join(f"{x:.2f}" for x in load) if isinstance(load, list) else "?"
    clock = "until flushed and fsynced" if options.fsync else "until flushed (no fsync)"
    if options.fresh_file:
        where = f"a new, empty file in {options.where()} for every run"
    else:
        where = (
            f"one file in {options.where()}, overwritten in place by every run "
            "(and with other bytes before it, untimed)"
        )
    return [
        f"trio_bufwriter positional-bench: a {options.size / MiB:g} MiB file written as "
        f"{options.pieces:,} pieces of {options.piece / KiB:g} KiB in random order "
        f"(seed {options.seed}) from {options.tasks} tasks",
        f"command:  {facts['command']}",
        f"date:     {facts['date']}",
        f"machine:  {facts['cpus']} CPUs, {facts['cpu_model'] or '?'}, {facts['kernel']}; "
        f"load average at start {load_text}",
        f"software: {facts['python']}, trio {facts['trio']}, "
        f"trio_bufwriter {facts['trio_bufwriter']}",
        f"source:   {facts.get('source') or 'not a git checkout'}",
        f"file:     {where}; clock from the open file {clock}",
        f"method:   medians of {options.repeat} interleaved round(s) (method order rotated "
        "every round); the file's SHA-256 checked after every run",
    ]


def report_lines(result: PositionalBenchResult) -> list[str]:
    """The table, the writer's memory, the targets and the content check."""
    head = ["method", "MB/s", "(a) / this", "median s", "spread", "syscalls/piece", "hops/piece"]
    rows = [[*head, "content"]]
    positional = result.mb_per_s(POSITIONAL)
    for letter, method in zip("abcd", METHODS, strict=True):
        runs = result.series(method)
        if not runs:
            rows.append([f"({letter}) {method}", "-", "-", "-", "-", "-", "-", "not measured"])
            continue
        x_this = ratio(positional, result.mb_per_s(method))
        seconds, run_spread = result.median_seconds(method), result.spread(method)
        wrong = sum(not run.content_ok for run in runs)
        rows.append(
            [
                f"({letter}) {method}",
                _mb_cell(result.mb_per_s(method)),
                "-" if x_this is None else format_ratio(x_this),
                f"{seconds:.3f}" if seconds is not None else "-",
                f"{run_spread:.0%}" if run_spread is not None else "-",
                _per_piece_cell(result.per_piece(method, "syscalls")),
                _per_piece_cell(result.per_piece(method, "thread_hops")),
                "ok" if not wrong else f"WRONG in {wrong} of {len(runs)}",
            ]
        )
    lines = ["== Throughput (MB = 10^6 bytes)", *align(rows)]
    lines += ["", *_writer_lines(result)]
    if result.errors:
        lines += ["", "== Errors: these runs failed and are not counted", *result.errors]
    checks = result.checks()
    met = sum(1 for check in checks if check.met)
    lines += ["", f"== Targets: {met} of {len(checks)} met (ratios of medians from this run)"]
    lines += align(
        [
            ["met" if c.met else "n/a" if c.met is None else "NOT MET", c.what, c.cell()]
            for c in checks
        ],
        left=3,
    )
    lines.append("")
    if result.content_ok:
        lines.append(
            f"content: every run ({len(result.runs)}) wrote exactly the source bytes "
            f"(SHA-256 {result.sha256[:16]}...)"
        )
    else:
        bad = [f"round {run.round + 1} {run.method}" for run in result.runs if not run.content_ok]
        lines.append(
            "content: FAILED: "
            + (", ".join(bad) + " wrote wrong bytes" if bad else "no run completed")
        )
    return lines


def _writer_lines(result: PositionalBenchResult) -> list[str]:
    runs = [run for run in result.series(POSITIONAL) if run.statistics is not None]
    if not runs:
        return ["== Positional writer: no run completed"]
    stats = [run.statistics for run in runs if run.statistics is not None]
    peak, budget = result.peak_pending(), result.pending_budget()

    def med(name: str) -> float:
        return median([float(s[name]) for s in stats])

    return [
        f"== Positional writer (medians of {len(runs)} run(s))",
        f"  peak pending {peak:,} B; budget {budget:,} B (high water {runs[0].high_water:,} "
        f"+ one {result.options.piece:,}-byte piece); "
        f"low water {runs[0].low_water:,} B",
        f"  batches {med('batches'):,.0f}, thread hops {med('thread_hops'):,.0f}, "
        f"syscalls {med('syscalls'):,.0f}, runs written {med('runs'):,.0f}, "
        f"bytes superseded {med('bytes_superseded'):,.0f}, fsyncs {med('fsyncs'):,.0f}",
        f"  pieces per thread hop {result.options.pieces / med('thread_hops'):,.0f}"
        if med("thread_hops")
        else "  no thread hop",
    ]


def to_json(result: PositionalBenchResult) -> dict[str, Any]:
    """Everything measured, as plain data."""
    options = result.options
    return {
        "schema": SCHEMA,
        "machine": result.machine,
        "options": {**asdict(options), "pieces": options.pieces, "directory": options.where()},
        "source_sha256": result.sha256,
        "wall_seconds": result.wall_seconds,
        "errors": result.errors,
        "runs": [asdict(run) for run in result.runs],
        "methods": {
            method: {
                "positional_over_this": ratio(result.mb_per_s(POSITIONAL), result.mb_per_s(method)),
                "median_seconds": result.median_seconds(method),
                "mb_per_s": result.mb_per_s(method),
                "spread": result.spread(method),
                "syscalls_per_piece": result.per_piece(method, "syscalls"),
                "thread_hops_per_piece": result.per_piece(method, "thread_hops"),
            }
            for method in METHODS
        },
        "peak_pending": result.peak_pending(),
        "pending_budget": result.pending_budget(),
        "content_ok": result.content_ok,
        "targets": [check.to_json() for check in result.checks()],
    }


def run_positional_bench(
    options: PositionalBenchOptions,
    *,
    command: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> tuple[int, PositionalBenchResult]:
    """Run the bench; print the report to *out* (stdout), progress to *err* (stderr).

    Returns the exit status and the result.  The status is 1 if any run
    wrote wrong bytes or failed, 130 if interrupted, else 0 (met targets or
    not: the numbers are for people to read).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if options.size < 1 or options.piece < 1 or options.tasks < 1 or options.repeat < 1:
        raise ValueError("size, piece, tasks and repeat must all be at least 1")
    started = perf_counter()
    result = PositionalBenchResult(options, machine_facts(command))
    print("\n".join(header_lines(result)), end="\n\n", file=out, flush=True)

    def progress(message: str) -> None:
        print(f"[{perf_counter() - started:6.1f} s] {message}", file=err, flush=True)

    progress(f"making {options.size:,} bytes of source data")
    work = Workload.make(options.size, options.piece, options.seed)
    result.sha256 = work.sha256
    try:
        trio.run(_measure, result, work, progress)
    except KeyboardInterrupt:
        print("interrupted", file=err, flush=True)
        return 130, result
    result.wall_seconds = perf_counter() - started
    lines = report_lines(result)
    if options.json_path is not None:
        path = options.json_path
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as file:
            json.dump(to_json(result), file, indent=1)
            file.write("\n")
        lines.append(f"JSON written to {path}")
    lines.append(f"wall time: {result.wall_seconds:.1f} s")
    print("\n".join(lines), file=out, flush=True)
    return (0 if result.content_ok and not result.errors else 1), result


# ----------------------------------------------------------------------
# The command line


def _directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"not a directory: {text!r}")
    return text


def _run_command(args: argparse.Namespace) -> int:
    options = PositionalBenchOptions(
        size=args.size_mib * MiB,
        piece=args.piece_kib * KiB,
        tasks=args.tasks,
        repeat=args.repeat,
        directory=args.dir,
        fsync=args.fsync,
        json_path=args.json,
        fresh_file=args.fresh_file,
    )
    status, _ = run_positional_bench(options, command=args.command_line)
    return status


def add_positional_bench_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add the ``positional-bench`` command."""
    parser = commands.add_parser(
        "positional-bench",
        help="assemble a file from pieces in random order: PositionalWriter vs a thread per piece",
        description=(
            "Write a file as pieces in a seeded random order from several tasks, "
            "in interleaved rounds: (a) open_positional_writer with write_at + drain, "
            "(b) one trio.to_thread.run_sync(os.pwrite) per piece, (c) the whole file "
            "in order in one thread hop (the limit), (d) one os.pwrite per piece in the "
            "same order, all in one thread hop (a reference).  Prints median MB/s, "
            "syscalls and thread hops per piece, the writer's peak pending bytes, and "
            f"the ratios a/b (target >= {TARGET_VS_THREAD_EACH:g}x) and a/c (target >= "
            f"{TARGET_VS_SEQUENTIAL:g}x).  Every run's file is checked against the "
            "source's SHA-256; wrong bytes make the command fail."
        ),
    )
    parser.add_argument(
        "--size-mib",
        type=positive_int,
        default=DEFAULT_SIZE_MIB,
        metavar="MIB",
        help="the file's size in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--piece-kib",
        type=positive_int,
        default=DEFAULT_PIECE_KIB,
        metavar="KIB",
        help="bytes per piece in KiB (default: %(default)s)",
    )
    parser.add_argument(
        "--tasks",
        type=positive_int,
        default=DEFAULT_TASKS,
        metavar="N",
        help="tasks writing pieces concurrently (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=DEFAULT_REPEAT,
        metavar="R",
        help="timed rounds of each method (default: %(default)s)",
    )
    parser.add_argument(
        "--dir",
        type=_directory,
        default=None,
        metavar="DIR",
        help=f"where to write the file (default: {tempfile.gettempdir()})",
    )
    parser.add_argument(
        "--fsync",
        action="store_true",
        help="also fsync the file before stopping the clock, in all three methods",
    )
    parser.add_argument(
        "--fresh-file",
        action="store_true",
        help="write a new, empty file in every run instead of overwriting one in place "
        "(adds the page cache's allocation, which varies a lot on some VMs, to every run)",
    )
    parser.add_argument("--json", metavar="PATH", help="also save everything measured as JSON")
    parser.set_defaults(run=_run_command)
