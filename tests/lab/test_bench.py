"""Fast tests of the benchmark harness (``python -m benchmarks bench``).

The statistics, ratios, targets, table and JSON code run on made-up numbers;
the measuring code runs for real, on workloads small enough to take well
under a second each.  No test looks at how fast anything is.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import socket
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from benchmarks.__main__ import main
from benchmarks.bench import (
    _chart,
    _config,
    _json,
    _latency,
    _machine,
    _memory,
    _peers,
    _report,
    _run,
    _stats,
    _throughput,
)
from benchmarks.bench._config import BenchOptions, Budget, size_label
from benchmarks.bench._latency import LatencyResult, LatencySeries, Placement
from benchmarks.bench._micro import BARE, WRITE, MicroResult
from benchmarks.bench._run import run_bench
from benchmarks.bench._targets import Check, format_ratio
from benchmarks.bench._throughput import (
    BenchError,
    Series,
    ThroughputResult,
    measure_throughput,
)

TINY = Budget(
    repeat=2,
    run_seconds=0.01,
    calibrate_seconds=0.002,
    max_run_bytes=1 << 20,
    max_buffered_bytes=1 << 20,
    round_trips=20,
    warmup_round_trips=5,
    idle_writers=20,
    push_bytes=4 << 20,
    micro_calls=2_000,
    micro_repeat=3,
)


def _peer(name: str) -> _peers.Peer:
    return next(peer for peer in _peers.PEERS if peer.name == name)


# ----------------------------------------------------------------------
# Statistics


def test_median_percentile_spread() -> None:
    assert _stats.median([3.0, 1.0, 2.0]) == 2.0
    assert _stats.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    values = list(range(1, 101))  # 1..100
    assert _stats.percentile(values, 50) == 50
    assert _stats.percentile(values, 99) == 99
    assert _stats.percentile(values, 100) == 100
    assert _stats.percentile([7.0], 99) == 7.0
    assert _stats.spread([9.0, 10.0, 12.0]) == pytest.approx(0.3)
    for bad in ([], [1.0]):
        with pytest.raises(ValueError, match="percentile"):
            _stats.percentile(bad, 0 if bad else 101)
    with pytest.raises(ValueError, match="median"):
        _stats.median([])


def test_ratio_round_count_rotated() -> None:
    assert _stats.ratio(3.0, 2.0) == 1.5
    assert _stats.ratio(None, 2.0) is None
    assert _stats.ratio(3.0, None) is None
    assert _stats.ratio(3.0, 0.0) is None
    assert _stats.round_count(123_456.0, 8, 10**9) == 120_000
    assert _stats.round_count(87.4, 8, 10**9) == 87
    assert _stats.round_count(3.0, 8, 10**9) == 8
    assert _stats.round_count(5e9, 8, 1000) == 1000
    assert _stats.round_count(0.2, 1, 10) == 1
    assert _stats.rotated("abcd", 1) == ["b", "c", "d", "a"]
    assert _stats.rotated("abcd", 6) == ["c", "d", "a", "b"]
    assert _stats.rotated("", 3) == []


def test_size_labels_and_ratio_format() -> None:
    assert [size_label(n) for n in (16, 1024, 16384, 1 << 20, 1000)] == [
        "16 B",
        "1 KiB",
        "16 KiB",
        "1 MiB",
        "1000 B",
    ]
    assert [format_ratio(x) for x in (1361.2, 26.54, 0.871, 0.00073)] == [
        "1,361x",
        "26.5x",
        "0.87x",
        "0.00073x",
    ]


def test_check_cells() -> None:
    assert Check("a", 9.12, ">=", 8).cell() == "met 9.12x >= 8.00x"
    assert Check("a", 5.1, ">=", 8).cell() == "NOT MET 5.10x < 8.00x"
    assert Check("a", 1.2, "<=", 1.6).met is True
    assert Check("a", 1.7, "<=", 1.6).cell() == "NOT MET 1.70x > 1.60x"
    assert Check("a", 1.05, "<=", 1.0, stretch=True).cell() == "stretch NOT MET 1.05x > 1.00x"
    assert Check("a", 5400, "<=", 4096, " B").cell() == "NOT MET 5,400 B > 4,096 B"
    assert Check("a", 1 << 20, "<=", 18 << 20, " MiB").cell() == "met 1.00 MiB <= 18.00 MiB"
    missing = Check("a", None, ">=", 0.9)
    assert missing.met is None
    assert missing.cell() == "n/a (target >= 0.90x)"
    assert missing.to_json()["met"] is None


# ----------------------------------------------------------------------
# Rows, tables and JSON from made-up numbers


def _series(peer: str, size: int, rates: list[float], unit: int | None = None) -> Series:
    """A series whose runs went at *rates* messages (or units) per second."""
    unit = size if unit is None else unit
    count = 1000
    series = Series(peer, size, unit, count, warmups=[(100, 0.01)])
    series.seconds = [count / rate for rate in rates]
    series.socket_options = {"TCP_NODELAY": 1, "TCP_NOTSENT_LOWAT": 0}
    return series


def _fake_throughput() -> ThroughputResult:
    size = 64
    bulk_units_per_s = 5e9 / (1 << 20)  # 5 GB/s in 1 MiB sendall chunks
    series = [
        _series(_peers.RAW_BULK, size, [bulk_units_per_s] * 3, unit=1 << 20),
        _series(_peers.ASYNCIO, size, [250e3, 300e3, 200e3]),
        _series(_peers.BUFWRITER, size, [3.0e6, 2.9e6, 3.1e6]),
        _series(_peers.BUFWRITER_WRITE_ONLY, size, [3.0e6, 3.2e6, 3.3e6]),
    ]
    return ThroughputResult(
        [size],
        [s.peer for s in series],
        series,
        {_peers.UVLOOP: "uvloop is not installed"},
        None,
        3,
        ["a note"],
    )


def _fake_latency() -> LatencyResult:
    same = Placement("same CPU", 0, 0)
    series = [
        LatencySeries("same CPU", "trio send_all", [20_000] * 10, [20_000.0]),
        LatencySeries("same CPU", "asyncio", [14_000] * 10, [14_000.0]),
        LatencySeries("same CPU", "bufwriter write", [15_000] * 9 + [90_000], [15_000.0]),
    ]
    return LatencyResult([same], [s.client for s in series], series, {}, 10, 2, 1)


def _fake_memory() -> _memory.MemoryResult:
    idle = {
        "writers": 10,
        "traced_before": 1000,
        "traced_after": 41_000,
        "rss_before": 4096,
        "rss_after": 53_248,
        "top_sites": [{"site": "x.py:1", "bytes_per_writer": 760.0, "blocks_per_writer": 2.0}],
    }
    push = {
        "kind": "bytes",
        "bytes": 1 << 30,
        "received": 1 << 30,
        "start_rss": 40 << 20,
        "peak_rss": 41 << 20,
        "peak_reset_at_start": True,
        "high_water": 65536,
        "max_send_size": 1 << 20,
    }
    return _memory.MemoryResult(idle, {**idle, "traced_before": None}, [push])


def _fake_micro() -> MicroResult:
    return MicroResult(1000, 3, {BARE: [50.0, 55.0, 60.0], WRITE: [80.0, 82.0, 90.0]})


def _fake_result() -> _report.BenchResult:
    machine = {
        "date": "2026-11-25 00:00:00 UTC",
        "command": "python -m benchmarks bench",
        "cpus": 2,
        "usable_cpus": [0, 1],
        "cpu_model": "a CPU",
        "load_average_at_start": [1.0, 1.0, 1.0],
        "python": "CPython 3.11.7",
        "trio": "0.35.0",
        "trio_bufwriter": "0.1",
        "uvloop": None,
        "matplotlib": None,
        "kernel": "Linux 6",
        "tcp_notsent_lowat_default": 4294967295,
    }
    return _report.BenchResult(
        machine,
        BenchOptions(quick=True, sizes=(64,)),
        _fake_throughput(),
        _fake_latency(),
        _fake_memory(),
        _fake_micro(),
        wall_seconds=12.5,
    )


def test_throughput_rows_take_ratios_of_medians() -> None:
    rows = {row.peer: row for row in _report.throughput_rows(_fake_throughput())}
    assert list(rows) == [
        _peers.RAW_BULK,
        _peers.ASYNCIO,
        _peers.BUFWRITER,
        _peers.BUFWRITER_WRITE_ONLY,
    ]
    bulk, base, mine = rows[_peers.RAW_BULK], rows[_peers.ASYNCIO], rows[_peers.BUFWRITER]
    assert bulk.mb_per_s == pytest.approx(5000.0)
    assert bulk.msgs_per_s == pytest.approx(5e9 / 64)  # its byte rate / the size
    assert base.msgs_per_s == pytest.approx(250e3)  # the median, not the mean
    assert mine.x_asyncio == pytest.approx(3.0e6 / 250e3)
    assert mine.x_bulk == pytest.approx(3.0e6 * 64 / 5e9)
    assert base.spread == pytest.approx(100e3 / 250e3)
    [check] = mine.checks
    assert (check.op, check.bound, check.met) == (">=", 8.0, True)
    [write_only] = rows[_peers.BUFWRITER_WRITE_ONLY].checks
    assert write_only.bound == 12.0
    assert write_only.met is True  # 3.2e6 / 250e3 = 12.8
    assert bulk.checks == []


def test_report_text() -> None:
    text = "\n".join(_report.header_lines(_fake_result()) + _report.report_lines(_fake_result()))
    assert "trio_bufwriter bench (quick): throughput, latency, memory, micro" in text
    assert "uvloop not installed" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("size "))
    for column in ("msgs/s", "MB/s", "x bulk", "x asyncio", "spread", "per run", "target"):
        assert column in header
    mine = next(line for line in lines if line.startswith("64 B") and "write+drain" in line)
    assert "12.0x" in mine
    assert mine.endswith("met 12.0x >= 8.00x")
    bulk = next(line for line in lines if line.startswith("64 B") and "raw bulk" in line)
    assert "1,000 x 1 MiB" in bulk
    assert "skipped: uvloop drain each (uvloop is not installed)" in text
    assert "note: a note" in text
    assert "met 0.75x <= 1.10x; stretch NOT MET 1.07x > 1.00x" in text
    assert "tracemalloc  4,000 B per writer   met 4,000 B <= 4,096 B" in text
    assert "delta 1.00 MiB; bound 18.06 MiB" in text
    assert "writer.write(msg)" in text
    assert "== Targets: 6 of 7 met" in text


def test_json_shape() -> None:
    document = json.loads(json.dumps(_json.to_json(_fake_result())))
    assert document["schema"] == _json.SCHEMA
    assert set(document) >= {
        "machine",
        "options",
        "budget",
        "throughput",
        "latency",
        "memory",
        "micro",
        "targets",
        "wall_seconds",
    }
    assert document["options"]["repeat"] == 3
    series = document["throughput"]["series"]
    mine = next(s for s in series if s["peer"] == _peers.BUFWRITER)
    assert len(mine["seconds"]) == 3
    assert mine["x_asyncio"] == pytest.approx(12.0)
    assert mine["checks"][0]["met"] is True
    assert mine["warmups"] == [[100, 0.01]]
    peers = {p["name"]: p["skipped"] for p in document["throughput"]["peers"]}
    assert peers[_peers.UVLOOP] == "uvloop is not installed"
    latency = document["latency"]["series"]
    assert latency[2]["p99_us"] == 90.0
    assert len(latency[2]["samples_us"]) == 10
    assert document["memory"]["traced_bytes_per_writer"] == 4000.0
    assert document["memory"]["pushes"][0]["delta"] == 1 << 20
    assert document["micro"]["median_ns_per_call"][WRITE] == 82.0
    assert [t["met"] for t in document["targets"]] == [True, True, True, False, True, True, True]


def test_chart_is_written_or_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _report.throughput_rows(_fake_throughput())
    path = tmp_path / "docs" / "_static" / "bench.png"
    if _chart.optional_module("matplotlib") is not None:
        assert _chart.write_chart(rows, str(path), "title") == f"chart written to {path}"
        assert path.read_bytes().startswith(b"\x89PNG")
    monkeypatch.setattr(_chart, "optional_module", lambda name: None)
    assert "matplotlib is not installed" in _chart.write_chart(rows, str(path), "title")


# ----------------------------------------------------------------------
# Real, tiny runs


def test_one_peer_for_real() -> None:
    result = measure_throughput(
        TINY, [64], pin=False, progress=lambda _: None, peers=[_peer(_peers.BUFWRITER)]
    )
    [series] = result.series
    assert len(series.seconds) == TINY.repeat
    assert series.warmups
    assert 8 <= series.count <= (1 << 20) // 64
    assert series.socket_options["TCP_NODELAY"] == 1
    [row] = _report.throughput_rows(result)
    assert row.msgs_per_s > 0
    assert row.x_bulk is None  # raw bulk did not run


def test_every_peer_for_real_pinned() -> None:
    budget = dataclasses.replace(TINY, repeat=1)
    result = measure_throughput(budget, [1024], pin=True, progress=lambda _: None)
    ran = {series.peer for series in result.series}
    assert ran == {peer.name for peer in _peers.PEERS} - set(result.skipped)
    assert result.pinning is not None or result.notes
    rows = _report.throughput_rows(result)
    assert all(row.x_bulk and row.x_asyncio for row in rows)


def test_a_wrong_byte_count_is_an_error() -> None:
    def one_short(job: _peers.Job) -> _peers.Outcome:
        outcome = _peer(_peers.RAW_SENDALL).run(
            _peers.Job(job.port, job.message, job.count - 1, job.wait_count)
        )
        return outcome

    peer = _peers.Peer("short", "sends one message too few", one_short)
    expected = r"the receiver got 639,936 bytes from short at 64 B \(10,000 x 64 bytes\)"
    with pytest.raises(BenchError, match=expected):
        measure_throughput(TINY, [64], pin=False, progress=lambda _: None, peers=[peer])


def test_bench_command_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config, "QUICK", TINY)
    out, err = io.StringIO(), io.StringIO()
    options = BenchOptions(
        quick=True,
        sizes=(64,),
        repeat=1,
        json_path=str(tmp_path / "bench.json"),
        chart_path=str(tmp_path / "docs" / "_static" / "bench.png"),
    )
    assert run_bench(options, command="bench test", out=out, err=err) == 0
    text = out.getvalue()
    for section in ("== Throughput", "== Latency", "== Memory", "== Micro", "== Targets"):
        assert section in text
    assert "command:  bench test" in text
    assert "chart " in text
    assert text.rstrip().splitlines()[-1].startswith("wall time: ")
    for part in ("throughput: round 1/1", "latency:", "memory:", "micro:"):
        assert part in err.getvalue()
    document = json.loads((tmp_path / "bench.json").read_text())
    assert document["options"]["repeat"] == 1
    # --repeat sets rounds; the micro-benchmark keeps its own timeit repeats.
    assert len(document["micro"]["ns_per_call"][WRITE]) == TINY.micro_repeat
    memory = document["memory"]
    assert memory["idle_traced"]["writers"] == TINY.idle_writers
    assert memory["traced_bytes_per_writer"] > 0
    assert memory["idle_traced"]["top_sites"]
    assert memory["idle_rss"]["traced_before"] is None
    assert [push["kind"] for push in memory["pushes"]] == ["bytes", "bytearray"]
    for push in memory["pushes"]:
        assert push["received"] == TINY.push_bytes
        assert push["bound"] == 65536 + 2 * (1 << 20) + (16 << 20)
    assert {s["peer"] for s in document["throughput"]["series"]} >= {
        _peers.RAW_BULK,
        _peers.ASYNCIO,
        _peers.BUFWRITER,
    }
    per_placement = math.ceil(TINY.round_trips / TINY.repeat) * TINY.repeat
    for series in document["latency"]["series"]:
        assert len(series["samples_us"]) == per_placement
        assert 0 < series["p50_us"] <= series["p99_us"]
    assert document["targets"]


def test_bench_command_line_only_some_parts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_config, "QUICK", TINY)
    assert main(["bench", "--quick", "--only", "micro", "--chart", "unused.png"]) == 0
    text = capsys.readouterr().out
    assert "command:  python -m benchmarks bench --quick --only micro" in text
    assert "== Micro: 64-byte write() vs bytearray +=" in text
    assert "chart skipped: the throughput part was not run" in text
    assert "== Throughput" not in text
    assert "== Targets: " in text


def test_report_other_layouts() -> None:
    throughput = _fake_throughput()
    throughput.sizes = [64, 1024]
    throughput.series += [
        _series(_peers.ASYNCIO, 1024, [100e3]),
        _series(_peers.BUFWRITER, 1024, [200e3]),
    ]
    throughput.peers.append(_peers.TRIO_SEND_ALL)  # listed, but it did not run
    throughput.pinning = (0, 1)
    latency = _fake_latency()
    latency.series = latency.series[:2]  # no bufwriter figures
    latency.clients.append("bufwriter write")
    latency.skipped = {"uvloop": "uvloop is not installed"}
    result = _report.BenchResult(_fake_result().machine, BenchOptions(), throughput, latency)
    lines = _report.report_lines(result)
    text = "\n".join(lines)
    assert "sender on CPU 0, receiver on CPU 1" in text
    assert "trio send_all" not in text.split("peers:")[0]
    kib = next(line for line in lines if line.startswith("1 KiB") and "write+drain" in line)
    assert "2.00x" in kib  # x asyncio
    assert " - " in kib  # no raw bulk at 1 KiB: no ratio, and its target is n/a
    assert "n/a (target >= 0.40x)" in kib
    assert "" in lines  # a blank line between the sizes
    assert "skipped: uvloop (uvloop is not installed)" in text
    assert [check.met for check in _report.latency_checks(latency)] == [None, None]


def test_bench_command_goes_on_after_a_failed_part(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise BenchError("it broke")

    monkeypatch.setattr(_config, "QUICK", TINY)
    monkeypatch.setattr(_run, "measure_memory", fail)
    out, err = io.StringIO(), io.StringIO()
    options = BenchOptions(quick=True, only=("memory", "micro"))
    assert run_bench(options, command="test", out=out, err=err) == 1
    assert "error: memory: it broke\n" in err.getvalue()
    text = out.getvalue()
    assert "== Errors: these parts failed and are not reported\nmemory: it broke\n" in text
    assert "== Micro" in text
    assert "== Memory" not in text
    assert _json.to_json(_report.BenchResult({}, options, errors=["x"]))["errors"] == ["x"]


def test_bench_command_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_run, "measure_micro", interrupt)
    out, err = io.StringIO(), io.StringIO()
    assert run_bench(BenchOptions(only=("micro",)), command="test", out=out, err=err) == 130
    assert err.getvalue().endswith("interrupted\n")
    assert "== Targets" not in out.getvalue()


def test_failing_peer_and_pinning_without_two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(job: _peers.Job) -> _peers.Outcome:
        socket.create_connection(("127.0.0.1", job.port)).close()
        raise ConnectionResetError("no")

    monkeypatch.setattr(_throughput, "usable_cpus", lambda: [0])
    peer = _peers.Peer("refused", "fails", refused)
    with pytest.raises(BenchError, match=r"refused at 64 B \(10,000 x 64 bytes\) failed"):
        measure_throughput(TINY, [64], pin=True, progress=lambda _: None, peers=[peer])


def test_calibration_repeats_a_short_warmup() -> None:
    budget = dataclasses.replace(
        TINY, repeat=1, calibrate_seconds=0.03, run_seconds=0.03, max_run_bytes=1 << 30
    )
    peer = _peer(_peers.RAW_SENDALL)
    result = measure_throughput(budget, [1024], pin=False, progress=lambda _: None, peers=[peer])
    [series] = result.series
    assert len(series.warmups) >= 2
    assert series.warmups[1][0] > series.warmups[0][0]
    assert result.pinning is None
    assert not result.notes


def test_placements_without_pinning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_latency, "can_pin", lambda: False)
    where, notes = _latency.placements()
    assert [p.name for p in where] == ["unpinned"]
    assert "not available" in notes[0]
    monkeypatch.setattr(_latency, "can_pin", lambda: True)
    monkeypatch.setattr(_latency, "usable_cpus", lambda: [3])
    where, notes = _latency.placements()
    assert where == [_latency.Placement("same CPU", 3, 3)]
    assert "only CPU 3" in notes[0]


async def test_receive_rest() -> None:
    sender, receiver = trio.testing.memory_stream_pair()
    await sender.send_all(b"ab")
    await sender.send_all(b"cd")
    await _latency._receive_rest(receiver, 4)
    await sender.aclose()
    with pytest.raises(BenchError, match="closed the connection early"):
        await _latency._receive_rest(receiver, 1)


def test_helpers_for_missing_things(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _machine.optional_module("no_such_module_for_trio_bufwriter") is None
    monkeypatch.setattr(_peers, "optional_module", lambda name: None)
    with pytest.raises(RuntimeError, match="uvloop is not installed"):
        _peers.new_event_loop("uvloop")
    with _machine.watchdog(60):
        pass
    monkeypatch.setattr(sys, "__stderr__", None)
    with _machine.watchdog(60):
        pass
    trio.run(_memory.NullStream().wait_send_all_might_not_block)
    idle = {"writers": 1, "rss_before": None, "rss_after": None}
    assert _memory.MemoryResult(idle, idle, []).rss_per_writer() is None
    assert _memory.push_delta({"start_rss": None, "peak_rss": 1}) is None
    with pytest.raises(BenchError, match=r"memory benchmark push x bytes failed \(exit 1\)"):
        _memory._subprocess("push", "x", "bytes")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizes", "64,0"], "must be at least 1"),
        (["--sizes", "64,x"], "not an integer"),
        (["--only", "throughput,speed"], "unknown part 'speed'"),
        (["--repeat", "0"], "must be at least 1"),
    ],
)
def test_bench_cli_rejects_bad_options(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
