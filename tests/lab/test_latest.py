"""The latest-value benchmark (benchmarks.latest): a short real run, its verdicts, its command.

Correctness verdicts only: staleness and throughput are printed, never judged.
"""

from __future__ import annotations

import io
import re

import pytest

from benchmarks import latest as _latest
from benchmarks.__main__ import main
from benchmarks.latest import Client, Phase, _Options, _report, _verify, percentile, run_latest

_SMALL = {"keys": 30, "rate": 3000.0, "seconds": 0.3, "clients": 3, "slow_read": 512}


def test_a_short_run_passes_and_prints_a_row_per_phase() -> None:
    out = io.StringIO()
    status = run_latest(**_SMALL, slow_pause=0.005, out=out)  # type: ignore[arg-type]
    text = out.getvalue()
    assert status == 0, text
    for name in ("fast only", "fifo", "conflated"):
        assert re.search(rf"^{name}\s+[-\d,]+\s+[\d.]+ms", text, re.MULTILINE), text
    assert "memory within its bound: PASS" in text
    assert text.rstrip().endswith("result: PASS")


def test_the_command_is_wired_in(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake(*args: object) -> int:
        seen["args"] = args
        return 0

    monkeypatch.setattr(_latest, "run_latest", fake)
    assert main(["latest", "--keys", "7", "--seconds", "0.5", "--frame-size", "32"]) == 0
    assert seen["args"] == (7, 20_000, 0.5, 20, 32, 4096, 0.01)


def test_correctness_problems_fail_the_run() -> None:
    options = _Options(2, 100.0, 1.0, 1, 32, 512, 0.01)
    fifo = Phase("fifo", True, False, published=4, last={0: 2, 1: 2})
    fifo.clients = [
        Client(slow=False, frames=4, last={0: 2, 1: 2}),
        Client(slow=True, frames=3, last={0: 2}, problems=["key 1: update 1 after 1"]),
    ]
    _verify(fifo, options)
    conflated = Phase("conflated", True, True, published=4, last={0: 2, 1: 2})
    conflated.clients = [Client(slow=True, frames=2, last={0: 2, 1: 2})]
    conflated.slow_superseded = 1
    conflated.slow_pending_peak = 1000
    conflated.slow_writer_peak = _latest.HIGH_WATER + 33
    _verify(conflated, options)
    out = io.StringIO()
    assert not _report([fifo, conflated], options, out)
    text = out.getvalue()
    assert "slow client: 1 keys without their last value" in text
    assert "slow client: 3 of 4 updates" in text
    assert "2 received + 1 superseded != 4 published" in text
    assert "pending peak 1,000 B > 64 B" in text
    assert "writer peak" in text
    assert text.rstrip().endswith("result: FAIL")
    assert percentile([], 0.5) == 0.0
    with pytest.raises(ValueError, match="frame_size"):
        run_latest(frame_size=8)


def test_bad_options_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["latest", "--keys", "0"])
