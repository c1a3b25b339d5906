"""The soak (benchmarks.soak): a short real run, the pass/fail logic, the command line.

The full runs (1,000 connections for 60 s, and CI's 10 s version) are not
part of the test suite; nox and .ci/run start them.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys

import pytest
import trio

from benchmarks import soak as _soak
from benchmarks.soak import add_soak_command, run_soak
from trio_bufwriter import BufferedStream


def _summary_numbers(text: str) -> dict[str, str]:
    """The summary's "name: value" lines, by name."""
    summary = text.split("\nsummary (", 1)[1]
    return {
        name.strip(): value.strip()
        for name, value in re.findall(r"^  ([a-zA-Z /]+):\s+(.*)$", summary, re.MULTILINE)
    }


def test_a_short_soak_with_a_receiver_process_passes() -> None:
    code = "import sys; from benchmarks.soak import run_soak; sys.exit(run_soak(50, 3, 0.1, 5))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "50 loopback connections, 5 slow readers, 3 s of load, seed 5" in out
    assert "a separate process (spawn)" in out
    # Progress lines (one a second; their times are when they printed, late
    # on a busy machine), then the end of the load.
    assert re.search(r"^ +[12]\.\d s  open 50/50  sent [\d,]+ B", out, re.MULTILINE)
    assert re.search(r"^ +\d+\.\d s  open 50/50 .* \(end of load; closing\)$", out, re.MULTILINE)
    numbers = _summary_numbers(out)
    assert numbers["connections held"].startswith("50/50 open throughout")
    verified = re.fullmatch(r"([\d,]+) B in 50/50 connections .*", numbers["bytes verified"])
    assert verified
    assert int(verified[1].replace(",", "")) > 0
    assert re.fullmatch(
        r"[\d.,]+ MiB at 1\.\d s / [\d.,]+ MiB at \d+\.\d s, ratio [\d.]+ \(limit 1\.05: ok\)",
        numbers["RSS start/end"],
    )
    assert out.rstrip().endswith("result: PASS")


def test_a_soak_with_a_receiver_thread_passes_and_verifies_every_connection() -> None:
    out = io.StringIO()
    assert run_soak(20, 1.0, 0.25, 3, out, receiver="thread") == 0, out.getvalue()
    text = out.getvalue()
    assert "20 loopback connections, 5 slow readers" in text
    assert "a thread (test mode)" in text
    numbers = _summary_numbers(text)
    assert numbers["connections held"].startswith("20/20 ")
    assert " in 20/20 connections " in numbers["bytes verified"]
    assert "to slow readers" in numbers["per connection"]
    assert re.match(r"[\d.,]+ MiB / [\d.,]+ MiB at the same moments", numbers["heap in use"])
    assert "problems" not in numbers
    assert text.rstrip().endswith("result: PASS")


@pytest.fixture
def one_byte_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every connection claim one byte more than it wrote."""
    offer = _soak._Load._offer_load

    async def offer_and_miscount(
        self: _soak._Load, conn: _soak._Connection, writer: BufferedStream
    ) -> None:
        await offer(self, conn, writer)
        conn.written += 1

    monkeypatch.setattr(_soak._Load, "_offer_load", offer_and_miscount)


@pytest.mark.usefixtures("one_byte_short")
def test_a_byte_count_mismatch_fails_the_soak() -> None:
    out = io.StringIO()
    assert run_soak(3, 0.3, 0, 1, out, receiver="thread") == 1
    text = out.getvalue()
    assert re.search(
        r"connection 0: the receiver got ([\d,]+) bytes with CRC [0-9a-f]{8}, "
        r"the writer wrote [\d,]+ with CRC [0-9a-f]{8}",
        text,
    )
    assert " in 0/3 connections " in _summary_numbers(text)["bytes verified"]
    assert text.rstrip().endswith("result: FAIL")


def test_growing_rss_fails_the_soak(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter(range(100 << 20, 1 << 40, 10 << 20))
    monkeypatch.setattr(_soak, "rss_bytes", lambda: next(samples))
    out = io.StringIO()
    assert run_soak(3, 1.2, 0, 1, out, receiver="thread") == 1
    text = out.getvalue()
    rss = _summary_numbers(text)["RSS start/end"]
    assert rss.endswith("(limit 1.05: over the limit)")
    assert " in 3/3 connections " in _summary_numbers(text)["bytes verified"]
    assert text.rstrip().endswith("result: FAIL")


def test_connections_that_fail_fail_the_soak(monkeypatch: pytest.MonkeyPatch) -> None:
    open_tcp_stream = trio.open_tcp_stream
    calls = 0

    async def every_other_fails(host: str, port: int) -> trio.SocketStream:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise OSError("connection refused (test)")
        return await open_tcp_stream(host, port)

    monkeypatch.setattr(trio, "open_tcp_stream", every_other_fails)
    monkeypatch.setattr(_soak, "_ACCEPT_GRACE", 0.1)
    out = io.StringIO()
    assert run_soak(4, 0.3, 0, 1, out, receiver="thread") == 1
    text = out.getvalue()
    numbers = _summary_numbers(text)
    assert numbers["connections held"].startswith("2/4 ")
    assert " in 2/4 connections " in numbers["bytes verified"]
    assert numbers["problems"] == "3"
    assert "receiver: accepted 2 connections (0 slow), expected 4 (0 slow)" in text
    assert text.count("OSError('connection refused (test)')") == 2
    assert text.rstrip().endswith("result: FAIL")


def test_connections_not_ready_in_time_fail_the_soak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_soak, "_CONNECT_TIMEOUT", 0)
    out = io.StringIO()
    assert run_soak(3, 10, 0, 1, out, receiver="thread") == 1
    text = out.getvalue()
    assert "error: only 0 of 3 connections were open after 0 s" in text
    assert text.rstrip().endswith("result: FAIL")


def test_rss_is_measured() -> None:
    assert 1 << 20 < _soak.rss_bytes() < 1 << 40


@pytest.mark.parametrize(
    ("connections", "seconds", "slow_share"), [(0, 1, 0.1), (1, 0, 0.1), (1, 1, 1.5)]
)
def test_run_soak_rejects_bad_arguments(
    connections: int, seconds: float, slow_share: float
) -> None:
    with pytest.raises(ValueError, match="need connections"):
        run_soak(connections, seconds, slow_share, 0, io.StringIO())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    add_soak_command(parser.add_subparsers(dest="command", required=True))
    return parser


def test_the_soak_command_runs_run_soak(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, float, float, int]] = []

    def fake_run_soak(connections: int, seconds: float, slow_share: float, seed: int) -> int:
        calls.append((connections, seconds, slow_share, seed))
        return 7

    monkeypatch.setattr(_soak, "run_soak", fake_run_soak)
    args = _parser().parse_args(["soak"])
    assert args.run(args) == 7
    args = _parser().parse_args(
        ["soak", "--connections", "10", "--seconds", "2.5", "--slow-share", "0", "--seed", "9"]
    )
    assert args.run(args) == 7
    assert calls == [(1000, 60.0, 0.1, 1), (10, 2.5, 0.0, 9)]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--connections", "0"),
        ("--connections", "many"),
        ("--seconds", "0"),
        ("--seconds", "soon"),
        ("--slow-share", "1.5"),
        ("--slow-share", "some"),
    ],
)
def test_the_soak_command_rejects_bad_values(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["soak", option, value])
    assert info.value.code == 2
    assert option in capsys.readouterr().err
