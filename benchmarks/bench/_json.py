"""The JSON document of a bench run: everything measured, as plain data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ._latency import CLIENTS, LatencyResult
from ._memory import push_bound, push_delta
from ._peers import PEERS
from ._report import (
    BenchResult,
    all_checks,
    latency_checks,
    memory_checks,
    micro_checks,
    throughput_rows,
)
from ._throughput import ThroughputResult

#: The document's format; bump it when its shape changes.
SCHEMA = "trio_bufwriter-bench/1"


def _us(values: Sequence[float], digits: int = 3) -> list[float]:
    return [round(value / 1000, digits) for value in values]


def to_json(result: BenchResult) -> dict[str, Any]:
    """Everything measured, as plain data: raw run times, medians, ratios, machine facts."""
    options = result.options
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "machine": result.machine,
        "options": {
            "quick": options.quick,
            "sizes": list(options.sizes),
            "repeat": options.budget.repeat,
            "pin": options.pin,
            "only": list(options.only),
            "json": options.json_path,
            "chart": options.chart_path,
        },
        "budget": asdict(options.budget),
        "wall_seconds": result.wall_seconds,
        "errors": result.errors,
    }
    if result.throughput is not None:
        document["throughput"] = _throughput_json(result.throughput)
    if result.latency is not None:
        document["latency"] = _latency_json(result.latency)
    if result.memory is not None:
        memory = result.memory
        document["memory"] = {
            "idle_traced": memory.idle_traced,
            "idle_rss": memory.idle_rss,
            "traced_bytes_per_writer": memory.traced_per_writer(),
            "rss_bytes_per_writer": memory.rss_per_writer(),
            "pushes": [
                {**push, "delta": push_delta(push), "bound": push_bound(push)}
                for push in memory.pushes
            ],
            "checks": [check.to_json() for check in memory_checks(memory)],
        }
    if result.micro is not None:
        micro = result.micro
        document["micro"] = {
            "calls": micro.calls,
            "repeat": micro.repeat,
            "ns_per_call": micro.ns_per_call,
            "median_ns_per_call": {name: micro.median_ns(name) for name in micro.ns_per_call},
            "checks": [check.to_json() for check in micro_checks(micro)],
        }
    document["targets"] = [check.to_json() for check in all_checks(result)]
    return document


def _throughput_json(result: ThroughputResult) -> dict[str, Any]:
    rows = {(row.peer, row.size): row for row in throughput_rows(result)}
    series_json = []
    for series in result.series:
        row = rows.get((series.peer, series.size))
        series_json.append(
            {
                "peer": series.peer,
                "size": series.size,
                "unit": series.unit,
                "count": series.count,
                "run_bytes": series.run_bytes,
                "seconds": series.seconds,
                "warmups": [list(warmup) for warmup in series.warmups],
                "msgs_per_s": None if row is None else row.msgs_per_s,
                "mb_per_s": None if row is None else row.mb_per_s,
                "x_bulk": None if row is None else row.x_bulk,
                "x_asyncio": None if row is None else row.x_asyncio,
                "spread": None if row is None else row.spread,
                "socket_options": series.socket_options,
                "checks": [] if row is None else [check.to_json() for check in row.checks],
            }
        )
    return {
        "sizes": result.sizes,
        "repeat": result.repeat,
        "pinning": None if result.pinning is None else list(result.pinning),
        "peers": [
            {
                "name": peer.name,
                "description": peer.description,
                "skipped": result.skipped.get(peer.name),
            }
            for peer in PEERS
        ],
        "series": series_json,
        "notes": result.notes,
    }


def _latency_json(result: LatencyResult) -> dict[str, Any]:
    return {
        "placements": [asdict(placement) for placement in result.placements],
        "round_trips_per_run": result.round_trips_per_run,
        "warmup_round_trips": result.warmup_round_trips,
        "repeat": result.repeat,
        "clients": [
            {"name": name, "description": description, "skipped": result.skipped.get(name)}
            for name, description, *_ in CLIENTS
        ],
        "series": [
            {
                "placement": series.placement,
                "client": series.client,
                "p50_us": series.p50_us(),
                "p99_us": series.p99_us(),
                "run_p50s_us": _us(series.run_p50s_ns),
                "samples_us": _us(series.samples_ns),
            }
            for series in result.series
            if series.samples_ns
        ],
        "checks": [check.to_json() for check in latency_checks(result)],
        "notes": result.notes,
    }
