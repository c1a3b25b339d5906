"""examples/ticker_server.py: real loopback clients, one slow; FIFO against conflated.

Correctness and the output's structure only: how stale the slow client's
data is, and how much conflation saves, depend on the machine's speed and
are printed, never judged.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from functools import partial

import trio
from script_testing import EXAMPLES, ROOT, load_script

TICKER = EXAMPLES / "ticker_server.py"

ticker = load_script(TICKER, "ticker_server_example")

_SMALL = {"keys": 40, "rate": 4000.0, "seconds": 0.3, "clients": 3, "slow_read": 512}


def _run(conflate: bool) -> object:
    async def bounded() -> object:
        with trio.fail_after(60):
            return await ticker.run_mode(conflate, slow_pause=0.005, **_SMALL)

    return trio.run(bounded)


def test_fifo_delivers_every_update_to_every_client_in_order() -> None:
    result = _run(False)
    assert result.problems() == []
    assert result.published > 0
    assert len(result.last) == _SMALL["keys"]
    assert [c.frames for c in result.clients] == [result.published] * (_SMALL["clients"] + 1)
    assert result.slow_superseded == 0
    assert all(age >= 0 for c in result.clients for age in c.ages)


def test_conflated_every_update_is_delivered_or_superseded_never_reordered() -> None:
    result = _run(True)
    assert result.problems() == []
    slow = result.slow
    # Each update the slow client did not get was replaced by a newer one
    # for its key, and every client ends with the last value of every key.
    assert slow.frames + result.slow_superseded == result.published
    assert slow.last == result.last
    assert result.slow_peak_held > 0


def test_the_report_has_a_row_per_mode_and_a_passing_check() -> None:
    out = io.StringIO()
    argv = ["--keys", "30", "--rate", "3000", "--seconds", "0.3", "--clients", "2"]
    status = ticker.main(argv, out)
    text = out.getvalue()
    assert status == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("ticker: 30 keys, 3,000 updates/s for 0.3 s")
    assert lines[1].split() == [
        "mode", "slow", "got", "age", "p50", "age", "p99", "age", "max",
        "held", "peak", "superseded", "fast", "got", "RSS", "peak+",
    ]  # fmt: skip
    row = r"\s+[\d,]+\s+[\d.]+ms\s+[\d.]+ms\s+[\d.]+ms\s+[\d,]+ B\s+[\d,]+\s+[\d,]+\s+[\d.]+MiB"
    assert re.fullmatch("fifo" + row, lines[2]), lines[2]
    assert re.fullmatch("conflated" + row, lines[3]), lines[3]
    assert lines[4].endswith(": OK")


def test_a_problem_fails_the_check() -> None:
    result = ticker.ModeResult(conflate=True, published=2, last={0: 2})
    result.clients = [
        ticker.ClientReport(slow=True, frames=2, last={0: 1}, out_of_order=1, leftover=5)
    ]
    out = io.StringIO()
    assert not ticker.render([result], out)
    text = out.getvalue()
    assert ": FAILED" in text
    assert "1 updates out of order" in text
    assert "5 bytes of a torn frame" in text
    assert "1 keys without their last value" in text
    assert ticker.percentile([], 0.5) == 0.0


def test_the_script_runs() -> None:
    command = [sys.executable, str(TICKER), "--keys", "20", "--seconds", "0.2", "--clients", "2"]
    run = partial(subprocess.run, capture_output=True, text=True, timeout=120, cwd=ROOT)
    done = run(command)
    assert done.returncode == 0, done.stderr
    assert "check: " in done.stdout
