"""Fast tests of ``python -m benchmarks positional-bench``.

The bench runs for real, on a 4 MiB file and one round; no test looks at
how fast anything was, only at what the report says and whether the content
check catches wrong bytes.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from benchmarks import positional as _positional
from benchmarks.__main__ import main
from benchmarks.bench._config import KiB, MiB
from benchmarks.positional import (
    METHODS,
    ONE_HOP_LOOP,
    POSITIONAL,
    SEQUENTIAL,
    THREAD_EACH,
    PositionalBenchOptions,
    PositionalBenchResult,
    Workload,
    run_positional_bench,
)

SMALL = 4 * MiB
PIECE = 16 * KiB


def _options(tmp_path: Path, **changes: object) -> PositionalBenchOptions:
    settings: dict[str, object] = {
        "size": SMALL,
        "piece": PIECE,
        "tasks": 8,
        "repeat": 1,
        "directory": str(tmp_path),
        # Below the file's size, so that drain() has to wait.
        "high_water": 256 * KiB,
        **changes,
    }
    return PositionalBenchOptions(**settings)  # type: ignore[arg-type]


def _run(options: PositionalBenchOptions) -> tuple[int, PositionalBenchResult, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status, result = run_positional_bench(options, command="test", out=out, err=err)
    return status, result, out.getvalue(), err.getvalue()


def test_workload_is_seeded_and_covers_the_file_once() -> None:
    work = Workload.make(100_000, 4096, seed=7)
    assert work.size == 100_000
    assert b"".join(work.pieces) == work.data
    assert len(work.pieces) == 25
    assert len(work.pieces[-1]) == 100_000 - 24 * 4096
    assert sorted(work.order) == list(range(25))
    assert work.order != list(range(25))
    again = Workload.make(100_000, 4096, seed=7)
    assert (again.data, again.order, again.sha256) == (work.data, work.order, work.sha256)
    assert Workload.make(100_000, 4096, seed=8).data != work.data


def test_a_small_run_reports_every_method_and_checks_the_content(tmp_path: Path) -> None:
    json_path = tmp_path / "out" / "positional.json"
    options = _options(tmp_path, json_path=str(json_path))
    status, result, out, err = _run(options)
    assert status == 0, out + err
    assert result.errors == []
    assert result.content_ok
    assert [run.method for run in result.runs] == list(METHODS)
    pieces = options.pieces
    assert pieces == SMALL // PIECE

    # (b): one thread hop and at least one pwrite per piece, no more hops.
    assert result.per_piece(THREAD_EACH, "thread_hops") == 1
    assert result.per_piece(THREAD_EACH, "syscalls") == pytest.approx(1, abs=0.01)
    # (c): one hop for the whole file, one pwrite per MiB.
    (sequential,) = result.series(SEQUENTIAL)
    assert (sequential.thread_hops, sequential.syscalls) == (1, SMALL // MiB)
    # (a): one hop per batch, far fewer than pieces; every byte written once.
    (positional,) = result.series(POSITIONAL)
    stats = positional.statistics
    assert stats is not None
    assert 1 <= positional.thread_hops < pieces
    assert positional.thread_hops == stats["thread_hops"]
    assert stats["write_at_calls"] == pieces
    assert stats["bytes_accepted"] == stats["bytes_written"] == SMALL
    assert stats["bytes_superseded"] == 0
    assert stats["pending"] == 0
    assert 1 <= stats["runs"] <= stats["syscalls"] <= pieces
    assert positional.high_water == 256 * KiB
    # The writer's budget: high water plus one piece (the tasks drain()
    # before each write_at, so none holds a piece in the writer while waiting).
    assert result.pending_budget() == 256 * KiB + PIECE
    peak = result.peak_pending()
    assert peak is not None
    assert 256 * KiB < peak <= 256 * KiB + PIECE

    checks = result.checks()
    assert [check.op for check in checks] == [">=", ">=", "<="]
    assert all(check.measured is not None for check in checks)
    assert checks[2].met

    assert "== Throughput" in out
    for method in METHODS:
        assert method in out
        assert f"{method}" in err
    assert "content: every run (4) wrote exactly the source bytes" in out
    assert "== Targets: " in out
    assert f"JSON written to {json_path}" in out

    document = json.loads(json_path.read_text())
    assert document["schema"] == _positional.SCHEMA
    assert document["content_ok"] is True
    assert document["source_sha256"] == result.sha256
    assert set(document["methods"]) == set(METHODS)
    assert document["methods"][THREAD_EACH]["thread_hops_per_piece"] == 1
    assert document["options"]["pieces"] == pieces
    assert len(document["runs"]) == 4
    assert document["methods"][POSITIONAL]["positional_over_this"] == 1
    assert document["runs"][0]["statistics"]["state"]
    assert [target["op"] for target in document["targets"]] == [">=", ">=", "<="]
    # Every run's file was deleted.
    assert sorted(os.listdir(tmp_path)) == ["out"]


@pytest.mark.parametrize("fresh_file", [False, True])
def test_fsync_is_counted_in_every_method(tmp_path: Path, fresh_file: bool) -> None:
    options = _options(tmp_path, size=MiB, fsync=True, repeat=2, fresh_file=fresh_file)
    status, result, out, _ = _run(options)
    assert status == 0
    assert result.content_ok
    assert "until flushed and fsynced" in out
    assert ("a new, empty file" in out) == fresh_file
    assert os.listdir(tmp_path) == []
    assert len(result.runs) == 8
    for run in result.series(POSITIONAL):
        assert run.statistics is not None
        assert run.statistics["fsyncs"] == 1
    for run in result.series(THREAD_EACH):
        assert run.thread_hops == options.pieces + 1
    # Rounds rotate the order of the methods.
    assert [run.method for run in result.runs[4:]] == [*METHODS[1:], METHODS[0]]
    for run in result.series(ONE_HOP_LOOP):
        assert (run.thread_hops, run.syscalls) == (1, options.pieces)


async def _write_wrong_bytes(
    fd: int, work: Workload, options: PositionalBenchOptions
) -> _positional.Counts:
    data = bytearray(work.data)
    data[len(data) // 2] ^= 0xFF
    os.pwrite(fd, data, 0)
    return 1, 0, {}


def test_wrong_bytes_fail_the_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_positional.METHOD_FUNCTIONS, SEQUENTIAL, _write_wrong_bytes)
    status, result, out, err = _run(_options(tmp_path, size=MiB))
    assert status == 1
    assert not result.content_ok
    assert [run.content_ok for run in result.runs] == [True, True, False, True]
    assert "content: FAILED: round 1 sequential (limit) wrote wrong bytes" in out
    assert "WRONG in 1 of 1" in out
    assert "WRONG CONTENT" in err


async def _write_too_little(
    fd: int, work: Workload, options: PositionalBenchOptions
) -> _positional.Counts:
    os.pwrite(fd, work.data[:-1], 0)
    return 1, 0, {}


@pytest.mark.parametrize("fresh_file", [False, True])
def test_a_byte_left_unwritten_fails_the_bench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_file: bool
) -> None:
    monkeypatch.setitem(_positional.METHOD_FUNCTIONS, THREAD_EACH, _write_too_little)
    status, result, _, _ = _run(_options(tmp_path, size=MiB, repeat=2, fresh_file=fresh_file))
    assert status == 1
    # Though the run before left the right bytes in the file (in place).
    assert [run.content_ok for run in result.series(THREAD_EACH)] == [False, False]
    assert all(run.content_ok for run in result.series(POSITIONAL))
    assert all(run.content_ok for run in result.series(SEQUENTIAL))
    sizes = {run.file_size for run in result.series(THREAD_EACH)}
    assert sizes == ({MiB - 1} if fresh_file else {MiB})
    assert os.listdir(tmp_path) == []


async def _fail(fd: int, work: Workload, options: PositionalBenchOptions) -> _positional.Counts:
    raise OSError(28, "No space left on device")


def test_a_run_that_raises_is_reported_and_fails_the_bench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(_positional.METHOD_FUNCTIONS, POSITIONAL, _fail)
    status, result, out, _ = _run(_options(tmp_path, size=MiB))
    assert status == 1
    assert result.errors == [
        "round 1, positional writer: OSError: [Errno 28] No space left on device"
    ]
    assert "== Errors" in out
    assert "== Positional writer: no run completed" in out
    # The other methods were still measured, and their files checked.
    assert [run.method for run in result.runs] == [THREAD_EACH, SEQUENTIAL, ONE_HOP_LOOP]
    assert all(run.content_ok for run in result.runs)
    assert sorted(os.listdir(tmp_path)) == []


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    json_path = tmp_path / "bench.json"
    argv = ["positional-bench", "--size-mib", "1", "--piece-kib", "64", "--tasks", "3"]
    argv += ["--repeat", "1", "--dir", str(tmp_path), "--json", str(json_path), "--fresh-file"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "a 1 MiB file written as 16 pieces of 64 KiB in random order" in captured.out
    assert "from 3 tasks" in captured.out
    assert "python -m benchmarks positional-bench --size-mib 1" in captured.out
    document = json.loads(json_path.read_text())
    assert document["options"]["tasks"] == 3
    assert document["options"]["fsync"] is False
    assert document["options"]["fresh_file"] is True
    assert document["content_ok"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["--dir", "/nonexistent/directory"],
        ["--size-mib", "0"],
        ["--piece-kib", "-1"],
        ["--tasks", "x"],
    ],
)
def test_the_command_line_refuses_bad_options(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["positional-bench", *argv])
    assert exit_info.value.code == 2
    assert "positional-bench" in capsys.readouterr().err
