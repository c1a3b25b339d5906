"""The reads benchmark (benchmarks.reads): every reader reads the same results, the
report has a row per reader and workload, and the command is wired in.

Correctness only: the times are printed, never judged.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest

from benchmarks import reads as _reads
from benchmarks.__main__ import main
from benchmarks.reads import READERS, Workload, run_reader, run_reads

#: Small versions of the three workloads.
_SMALL: dict[str, Callable[[], Workload]] = {
    "lines": lambda: _reads.lines_workload(count=500, chunk=700),
    "frames": lambda: _reads.frames_workload(count=500, chunk=700),
    "big-line": lambda: _reads.big_line_workload(size=20_000, count=2, piece=1500),
}


@pytest.mark.parametrize("workload", list(_SMALL))
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("yields", [True, False], ids=["yields", "no-yield"])
def test_every_reader_reads_the_workloads_results(reader: str, workload: str, yields: bool) -> None:
    assert run_reader(reader, _SMALL[workload](), yields=yields) > 0


def test_a_reader_that_reads_wrong_results_fails_the_run() -> None:
    workload = _SMALL["lines"]()
    wrong = Workload(
        workload.name, workload.description, workload.chunks, workload.kind, workload.expected[1:]
    )
    with pytest.raises(AssertionError, match="read wrong results on lines"):
        run_reader(READERS[0], wrong)


def test_the_report_has_a_row_per_reader_and_workload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reads, "WORKLOADS", _SMALL)
    out = io.StringIO()
    result = run_reads(("lines", "frames"), rounds=2, out=out)
    text = out.getvalue()
    assert text.startswith("reads: median of 2 interleaved rounds")
    for workload in ("lines", "frames"):
        assert all(len(result.seconds[workload][reader]) == 2 for reader in READERS)
    row = r"^\s*(?:lines|frames)?\s+(\S.*?\S)\s+[\d.]+\s+\d+%\s+[\d,]+\s+([\d.]+)x$"
    rows = re.findall(row, text, re.MULTILINE)
    assert [reader for reader, _ in rows] == list(READERS) * 2
    # Each workload's first row is ours, the column's unit.
    assert [ratio for _, ratio in rows][:: len(READERS)] == ["1.00", "1.00"]


def test_the_command_is_wired_in(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake(workloads: tuple[str, ...], *, rounds: int, yields: bool) -> None:
        seen.update(workloads=workloads, rounds=rounds, yields=yields)

    monkeypatch.setattr(_reads, "run_reads", fake)
    assert main(["reads", "--rounds", "2", "--workloads", "frames,lines", "--no-yield"]) == 0
    assert seen == {"workloads": ("frames", "lines"), "rounds": 2, "yields": False}


def test_an_unknown_workload_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["reads", "--workloads", "lines,nope"])
    assert exited.value.code == 2
    assert "unknown workload 'nope'" in capsys.readouterr().err
