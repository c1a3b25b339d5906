"""What a bench run prints and saves: the tables, the targets, the JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ._config import BenchOptions, MiB, size_label
from ._latency import ASYNCIO as LATENCY_ASYNCIO
from ._latency import BUFWRITER as LATENCY_BUFWRITER
from ._latency import CLIENTS, LatencyResult, LatencySeries
from ._latency import TRIO_SEND_ALL as LATENCY_TRIO
from ._memory import MemoryResult, push_bound, push_delta
from ._micro import BARE, EMPTY, WRITE, MicroResult
from ._peers import ASYNCIO, PEERS, RAW_BULK
from ._stats import ratio
from ._targets import (
    IDLE_WRITER_BYTES,
    LATENCY_VS_ASYNCIO,
    LATENCY_VS_TRIO,
    WRITE_VS_BYTEARRAY,
    Check,
    format_ratio,
    throughput_checks,
)
from ._throughput import ThroughputResult


@dataclass
class BenchResult:
    """Everything one ``bench`` run measured, with where and how."""

    machine: dict[str, object]
    options: BenchOptions
    throughput: ThroughputResult | None = None
    latency: LatencyResult | None = None
    memory: MemoryResult | None = None
    micro: MicroResult | None = None
    wall_seconds: float | None = None
    #: ``"part: message"`` for each part that failed.
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ThroughputRow:
    """One line of the throughput table, ratios included."""

    size: int
    peer: str
    msgs_per_s: float
    mb_per_s: float
    x_bulk: float | None
    x_asyncio: float | None
    spread: float
    count: int
    unit: int
    checks: list[Check] = field(default_factory=list)


def align(rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Lay *rows* out as a table: the first *left* columns left-aligned, the rest right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


# ----------------------------------------------------------------------
# Throughput


def throughput_rows(result: ThroughputResult) -> list[ThroughputRow]:
    """The table's rows, size by size in the peers' order, ratios from medians."""
    rows = []
    for size in result.sizes:
        bulk = result.get(RAW_BULK, size)
        baseline = result.get(ASYNCIO, size)
        bulk_mb = bulk.mb_per_s() if bulk is not None and bulk.seconds else None
        base_msgs = baseline.msgs_per_s() if baseline is not None and baseline.seconds else None
        for peer in result.peers:
            series = result.get(peer, size)
            if series is None or not series.seconds:
                continue
            msgs, mb = series.msgs_per_s(), series.mb_per_s()
            x_bulk, x_asyncio = ratio(mb, bulk_mb), ratio(msgs, base_msgs)
            rows.append(
                ThroughputRow(
                    size,
                    peer,
                    msgs,
                    mb,
                    x_bulk,
                    x_asyncio,
                    series.spread(),
                    series.count,
                    series.unit,
                    throughput_checks(peer, size, x_bulk, x_asyncio),
                )
            )
    return rows


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else format_ratio(value)


def _options_text(options: dict[str, int | None]) -> str:
    return " ".join(f"{name}={value}" for name, value in options.items())


def throughput_lines(result: ThroughputResult, machine: dict[str, object]) -> list[str]:
    """The throughput section: how, the table, the legend, the socket options."""
    if result.pinning is None:
        pinning = "sender and receiver unpinned (pass --pin to pin them)"
    else:
        pinning = f"sender on CPU {result.pinning[0]}, receiver on CPU {result.pinning[1]}"
    lines = [
        "== Throughput: loopback TCP to a receiver process (blocking recv_into, 1 MiB buffer)",
        f"   {result.repeat} interleaved rounds, peer order rotated each round, a fresh "
        f"connection per run; {pinning}",
        "   clock: from connected until closed and the receiver's byte count is in "
        "(every count verified)",
        "",
    ]
    table = [
        [
            "size",
            "peer",
            "msgs/s",
            "MB/s",
            "x bulk",
            "x asyncio",
            "spread",
            "per run",
            "target",
        ]
    ]
    previous = None
    for row in throughput_rows(result):
        if previous is not None and row.size != previous:
            table.append([""] * len(table[0]))
        previous = row.size
        per_run = f"{row.count:,}" + (f" x {size_label(row.unit)}" if row.unit != row.size else "")
        table.append(
            [
                size_label(row.size),
                row.peer,
                f"{row.msgs_per_s:,.0f}",
                f"{row.mb_per_s:,.1f}",
                _ratio_cell(row.x_bulk),
                _ratio_cell(row.x_asyncio),
                f"{row.spread:.0%}",
                per_run,
                "; ".join(check.cell() for check in row.checks),
            ]
        )
    lines += align(table, left=2)
    lines += ["", "peers:"]
    names = [peer.name for peer in PEERS]
    width = max(map(len, names))
    lines += [f"  {peer.name.ljust(width)}  {peer.description}" for peer in PEERS]
    lines += [
        "columns: x bulk = MB/s / raw bulk's MB/s at the same size; x asyncio = msgs/s / "
        "asyncio drain each's msgs/s at the same size;",
        "         spread = (max - min) / median of the runs' rates; per run = messages "
        "(or sendall chunks) per timed run",
    ]
    lines += _socket_option_lines(result, machine)
    for name, reason in result.skipped.items():
        lines.append(f"skipped: {name} ({reason})")
    lines += [f"note: {note}" for note in result.notes]
    return lines


def _socket_option_lines(result: ThroughputResult, machine: dict[str, object]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for peer in result.peers:
        seen = {
            _options_text(series.socket_options)
            for series in result.series
            if series.peer == peer and series.socket_options
        }
        key = " | ".join(sorted(seen)) or "not read"
        groups.setdefault(key, []).append(peer)
    default = machine.get("tcp_notsent_lowat_default")
    lines = [
        "socket options read from each peer's socket after set-up (TCP_NOTSENT_LOWAT=0: "
        f"not set, the system default {default} applies):"
    ]
    lines += [f"  {', '.join(peers)}: {options}" for options, peers in groups.items()]
    return lines


# ----------------------------------------------------------------------
# Latency


def latency_checks(result: LatencyResult) -> list[Check]:
    """bufwriter's same-CPU p50 against trio send_all's (and, stretch, asyncio's)."""
    mine = result.get("same CPU", LATENCY_BUFWRITER)
    trio_p50 = result.get("same CPU", LATENCY_TRIO)
    asyncio_p50 = result.get("same CPU", LATENCY_ASYNCIO)

    def p50_ratio(other: LatencySeries | None) -> float | None:
        if mine is None or other is None:
            return None
        return ratio(mine.p50_us(), other.p50_us())

    return [
        Check(
            "64 B ping-pong p50, same CPU / trio send_all",
            p50_ratio(trio_p50),
            "<=",
            LATENCY_VS_TRIO,
        ),
        Check(
            "64 B ping-pong p50, same CPU / asyncio",
            p50_ratio(asyncio_p50),
            "<=",
            LATENCY_VS_ASYNCIO,
            stretch=True,
        ),
    ]


def latency_lines(result: LatencyResult) -> list[str]:
    """The latency section: how, the table, the clients."""
    total = result.round_trips_per_run * result.repeat
    where = "; ".join(
        f"{p.name}: client on CPU {p.client_cpu}, echo peer on CPU {p.echo_cpu}"
        if p.client_cpu is not None
        else f"{p.name}: client and echo peer wherever the OS runs them"
        for p in result.placements
    )
    lines = [
        "== Latency: 64-byte ping-pong with an echo process (blocking socket, TCP_NODELAY)",
        f"   {total:,} timed round trips per client and placement ({result.repeat} rounds x "
        f"{result.round_trips_per_run:,}, each after {result.warmup_round_trips:,} untimed), "
        "clients rotated each round",
        f"   {where}",
        "",
    ]
    table = [
        [
            "placement",
            "client",
            "p50 us",
            "p99 us",
            "p50 / trio send_all",
            "p50 / asyncio",
            "target",
        ]
    ]
    checks = latency_checks(result)
    for placement in result.placements:
        trio_series = result.get(placement.name, LATENCY_TRIO)
        asyncio_series = result.get(placement.name, LATENCY_ASYNCIO)
        for client in result.clients:
            series = result.get(placement.name, client)
            if series is None or not series.samples_ns:
                continue
            p50 = series.p50_us()
            target = ""
            if placement.name == "same CPU" and client == LATENCY_BUFWRITER:
                target = "; ".join(check.cell() for check in checks)
            table.append(
                [
                    placement.name,
                    client,
                    f"{p50:,.1f}",
                    f"{series.p99_us():,.1f}",
                    _ratio_cell(ratio(p50, trio_series.p50_us() if trio_series else None)),
                    _ratio_cell(ratio(p50, asyncio_series.p50_us() if asyncio_series else None)),
                    target,
                ]
            )
    lines += align(table, left=2)
    lines += ["", "clients:"]
    width = max(len(name) for name, *_ in CLIENTS)
    lines += [f"  {name.ljust(width)}  {description}" for name, description, *_ in CLIENTS]
    for name, reason in result.skipped.items():
        lines.append(f"skipped: {name} ({reason})")
    lines += [f"note: {note}" for note in result.notes]
    return lines


# ----------------------------------------------------------------------
# Memory and micro


def memory_checks(result: MemoryResult) -> list[Check]:
    """Bytes per idle writer, and each push's peak RSS delta against its bound."""
    checks = [
        Check(
            "bytes per idle writer with its sender task (tracemalloc)",
            result.traced_per_writer(),
            "<=",
            IDLE_WRITER_BYTES,
            " B",
        )
    ]
    for push in result.pushes:
        delta = push_delta(push)
        checks.append(
            Check(
                f"peak RSS above start, 1 GiB in 1 MiB {push['kind']} writes",
                None if delta is None else float(delta),
                "<=",
                float(push_bound(push)),
                " MiB",
            )
        )
    return checks


def _mib(value: float | None) -> str:
    return "?" if value is None else f"{value / MiB:,.2f} MiB"


def memory_lines(result: MemoryResult) -> list[str]:
    """The memory section."""
    traced, checks = result.idle_traced, memory_checks(result)
    rss = result.rss_per_writer()
    sites = ", ".join(
        f"{site['site']} {site['bytes_per_writer']:,.0f}" for site in traced["top_sites"][:5]
    )
    lines = [
        "== Memory (each figure from a fresh subprocess)",
        f"idle writers: {traced['writers']:,} BufferedWriters over null SendStream stubs "
        "(the stubs not counted), each with its sender task parked",
        f"  tracemalloc  {result.traced_per_writer():,.0f} B per writer   {checks[0].cell()}",
        f"  RSS          {'?' if rss is None else f'{rss:,.0f}'} B per writer   "
        "(a second process, without tracemalloc; includes allocator slack)",
        f"  largest sites, bytes per writer: {sites}",
        "peak RSS while pushing 1 GiB in 1 MiB write(); await drain() steps through "
        "open_buffered_writer over loopback TCP:",
    ]
    for push, check in zip(result.pushes, checks[1:], strict=True):
        reset = "" if push["peak_reset_at_start"] else " (peak since process start)"
        lines.append(
            f"  {push['kind']:<9}  start {_mib(push['start_rss'])}, peak {_mib(push['peak_rss'])}"
            f"{reset}, delta {_mib(push_delta(push))}; bound {_mib(push_bound(push))} = "
            f"high_water {push['high_water']:,} + 2 x max_send_size {push['max_send_size']:,} "
            f"+ 16 MiB: {check.cell()}"
        )
    return lines


def micro_checks(result: MicroResult) -> list[Check]:
    """writer.write(msg) against a bare bytearray +=."""
    measured = ratio(result.median_ns(WRITE), result.median_ns(BARE))
    return [
        Check("writer.write(64 B) / bytearray += (ns per call)", measured, "<=", WRITE_VS_BYTEARRAY)
    ]


def micro_lines(result: MicroResult) -> list[str]:
    """The micro-benchmark section."""
    bare = result.median_ns(BARE)
    check = micro_checks(result)[0]
    table = [["statement", "ns/call", "x bare", "target"]]
    for name in result.ns_per_call:
        value = result.median_ns(name)
        table.append(
            [
                name,
                f"{value:,.1f}",
                "" if name == EMPTY else _ratio_cell(ratio(value, bare)),
                check.cell() if name == WRITE else "",
            ]
        )
    return [
        f"== Micro: 64-byte write() vs bytearray +=, timeit-style (loop included, gc off), "
        f"median of {result.repeat} x {result.calls:,} calls",
        *align(table),
    ]


# ----------------------------------------------------------------------
# The whole report


def all_checks(result: BenchResult) -> list[Check]:
    """Every target checked in this run, in report order."""
    checks: list[Check] = []
    if result.throughput is not None:
        for row in throughput_rows(result.throughput):
            checks += [
                Check(f"{size_label(row.size)} {row.peer}: {c.what}", c.measured, c.op, c.bound)
                for c in row.checks
            ]
    if result.latency is not None:
        checks += latency_checks(result.latency)
    if result.memory is not None:
        checks += memory_checks(result.memory)
    if result.micro is not None:
        checks += micro_checks(result.micro)
    return checks


def header_lines(result: BenchResult) -> list[str]:
    """What is measured, how, and where: printed before the measuring starts."""
    facts, options = result.machine, result.options
    budget = options.budget
    cpus = facts["usable_cpus"]
    usable = ", ".join(map(str, cpus)) if isinstance(cpus, list) and cpus else "?"
    load = facts["load_average_at_start"]
    load_text = " ".join(f"{x:.2f}" for x in load) if isinstance(load, list) else "?"
    versions = ", ".join(
        f"{name} {facts[name] or 'not installed'}"
        for name in ("trio", "trio_bufwriter", "uvloop", "matplotlib")
    )
    return [
        f"trio_bufwriter bench ({'quick' if options.quick else 'full'}): {', '.join(options.only)}",
        f"command:  {facts['command']}",
        f"date:     {facts['date']}",
        f"machine:  {facts['cpus']} CPUs (usable: {usable}), {facts['cpu_model'] or '?'}, "
        f"{facts['kernel']}; load average at start {load_text}",
        f"software: {facts['python']}, {versions}",
        f"source:   {facts.get('source') or 'not a git checkout'}",
        f"method:   medians of {budget.repeat} interleaved rounds; every ratio compares "
        "medians measured side by side in this run",
    ]


def report_lines(result: BenchResult) -> list[str]:
    """Every section measured, then the targets."""
    lines: list[str] = []
    if result.throughput is not None:
        lines += [*throughput_lines(result.throughput, result.machine), ""]
    if result.latency is not None:
        lines += [*latency_lines(result.latency), ""]
    if result.memory is not None:
        lines += [*memory_lines(result.memory), ""]
    if result.micro is not None:
        lines += [*micro_lines(result.micro), ""]
    if result.errors:
        lines += ["== Errors: these parts failed and are not reported", *result.errors, ""]
    checks = all_checks(result)
    met = sum(1 for check in checks if check.met)
    lines.append(f"== Targets: {met} of {len(checks)} met (ratios of medians from this run)")
    lines += (
        align(
            [
                ["met" if c.met else "n/a" if c.met is None else "NOT MET", c.what, c.cell()]
                for c in checks
            ],
            left=3,
        )
        if checks
        else ["  (none of the measured parts has a target)"]
    )
    return lines
