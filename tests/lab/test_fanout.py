"""The fan-out load test (benchmarks.fanout): a short real run, the verdicts, the helpers.

The full run (500 clients, 10 s per phase) and CI's short one are not part of
the test suite; nox and .ci/run start them.
"""

from __future__ import annotations

import argparse
import io
import re
import struct
import subprocess
import sys

import pytest
import trio

from benchmarks import fanout as _fanout
from benchmarks.fanout import (
    add_fanout_command,
    batch_size,
    check_sequence,
    drop_reason,
    make_message,
    memory_bound,
    quorum,
    run_fanout,
    warmup_seconds,
)
from trio_bufwriter import DEFAULT_NOTSENT_LOWAT, BufferLimitError, StallTimeoutError

# Thread mode: the clients share the GIL with the server, so an unpaced
# publisher can starve them (worse under coverage), and a fast client would
# reach its limit.  Paced at 50,000 messages a second (12.8 MB/s a client),
# a GIL switch interval is 64 kB behind at most.  The stuck client is cut off
# by amount: phase b goes on until it is.  Speed is reported, never judged:
# a fraction-of-a-second run with its clients in the same process is at the
# mercy of whatever else the machine is doing.
_SMALL = {
    "max_buffer": 1024 * 1024,
    "high_water": 16 * 1024,
    "rate": 50_000,
    "client_side": "thread",
    "speed_verdict": "report",
}


def _summary_numbers(text: str) -> dict[str, str]:
    """The summary's "name: value" lines, by name."""
    summary = text.split("\nsummary (", 1)[1]
    return {
        name.strip(): value.strip()
        for name, value in re.findall(r"^  ([a-z /]+):\s+(.*)$", summary, re.MULTILINE)
    }


def _assert_passed(status: int, out: str) -> None:
    """Every verdict that counts passed (speed is only reported in these runs)."""
    numbers = _summary_numbers(out)
    for name in ("stuck client", "server memory", "delivery"):
        assert numbers[name].endswith(": PASS"), out
    assert "problems" not in numbers, out
    assert status == 0, out
    assert out.rstrip().endswith("result: PASS")


def _thread_run(clients: int = 6, seconds: float = 0.5, **options: object) -> tuple[int, str]:
    out = io.StringIO()
    status = run_fanout(clients, seconds, out=out, **{**_SMALL, **options})  # type: ignore[arg-type]
    return status, out.getvalue()


# ----------------------------------------------------------------------
# Real runs


def test_a_short_run_with_a_client_process_passes() -> None:
    # The speed verdict is printed but not judged here: a ratio of two rates
    # on a shared machine says how busy it was that minute.  (CI runs the
    # command with --speed-verdict report too; nox -s fanout judges it.)
    code = (
        "import sys; from benchmarks.fanout import run_fanout; "
        "sys.exit(run_fanout(50, 2, speed_verdict='report'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    out = result.stdout
    numbers = _summary_numbers(out)
    assert result.returncode == 0, out + result.stderr
    assert out.startswith("trio_bufwriter fanout: 50 clients (49 fast, 1 stuck), 2 s per phase")
    assert "clients: a separate process (spawn)" in out
    assert "warm-up (49 fast clients, no stuck client, 1 s, not measured)" in out
    assert "phase a (49 fast clients, no stuck client):" in out
    assert "phase b (49 fast clients + 1 stuck client):" in out
    # A progress line a second (its time is when it printed, on a busy
    # machine a little late).
    assert re.search(r"^ +\d+\.\d s  subscribers 49/49  sent [\d.,]+ MB/s", out, re.MULTILINE)
    assert re.search(r"^ +[\d.]+ s  dropped client 49 \(stuck\): BufferLimitError: ", out, re.M)
    assert re.fullmatch(r"49 fast clients alone: [\d.,]+ MB/s received .*", numbers["phase a"])
    assert re.fullmatch(r"49 fast clients \+ 1 stuck: [\d.,]+ MB/s received .*", numbers["phase b"])
    assert re.fullmatch(
        r"[\d.]+ \(per server CPU-second: [\d.]+; target >= 0\.90\): "
        r"(PASS|FAIL \(reported, not judged: --speed-verdict report\))",
        numbers["throughput b/a"],
    )
    assert re.fullmatch(
        r"cut off [\d.]+ s into phase b by BufferLimitError \(a write of 256 bytes would hold "
        r"\d+ bytes, over max_buffer=1048576\); [\d,]+ B had reached its socket \([\d,]+ "
        r"messages, in order\), then end-of-file: PASS",
        numbers["stuck client"],
    )
    assert re.fullmatch(
        r"peak RSS [\d.]+ MiB above start .*; bound 50 x 65,536 B \+ 1,048,576 B \+ 32 MiB "
        r"= 36\.1 MiB: PASS",
        numbers["server memory"],
    )
    assert numbers["delivery"] == (
        "0 sequence violations; every fast client got every message, in order: PASS"
    )
    assert "problems" not in numbers
    assert out.rstrip().endswith("result: PASS")


def test_a_paced_run_with_client_threads_passes() -> None:
    status, out = _thread_run(
        rate=8000, max_buffer=64 * 1024, stall_timeout=None, notsent_lowat=32 * 1024
    )
    _assert_passed(status, out)
    assert "256-byte messages at 8,000 a second" in out
    assert "stall_timeout none, notsent_lowat 32,768 B" in out
    assert "clients: a thread (test mode)" in out
    numbers = _summary_numbers(out)
    # Paced: a phase never sends more than rate x its window (plus a batch
    # and the marks' slack); how many fewer a slow machine manages is not
    # judged here.
    for name in ("phase a", "phase b"):
        counts = re.search(r" in ([\d.]+) s, ([\d,]+) messages\)", numbers[name])
        assert counts
        assert 0 < int(counts[2].replace(",", "")) <= 8000 * (float(counts[1]) + 0.5) + 128
    assert numbers["stuck client"].startswith("cut off ")


def test_every_subscriber_gets_the_limits_and_the_writers_notsent_lowat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, object]] = []
    real = _fanout.open_buffered_stream

    def recording(stream: trio.abc.Stream, **options: object) -> object:
        seen.append(options)
        return real(stream, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(_fanout, "open_buffered_stream", recording)
    status, out = _thread_run(clients=3, seconds=0.3, stall_timeout=5.0, notsent_lowat=None)
    _assert_passed(status, out)
    assert "notsent_lowat 1,048,576 B (the writer's default)" in out
    # The writer's own default, not None (which would leave trio's 16 KiB).
    assert len(seen) == 2 + 2 + 3
    assert all(
        options
        == {
            "high_water": 16 * 1024,
            "max_buffer": 1024 * 1024,
            "overflow": "abort",
            "stall_timeout": 5.0,
            "notsent_lowat": DEFAULT_NOTSENT_LOWAT,
        }
        for options in seen
    )


def test_a_stuck_client_that_is_never_cut_off_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pause whenever anyone is over high water: the stuck client then holds
    # the publisher back, and never reaches its limit.
    monkeypatch.setattr(_fanout, "quorum", lambda subscribers: 0)
    monkeypatch.setattr(_fanout, "_CLOSE_TIMEOUT", 0.2)
    # Phase b waits this long past its end for the cut-off that never comes.
    monkeypatch.setattr(_fanout, "CUT_OFF_TIMEOUT", 0.2)
    status, out = _thread_run(seconds=0.3, stall_timeout=None)
    assert status == 1
    numbers = _summary_numbers(out)
    assert re.match(r"not cut off; [\d,]+ B had reached its socket", numbers["stuck client"])
    assert numbers["stuck client"].endswith(": FAIL")
    assert re.search(r"publisher paused [1-9][\d,]* times", numbers["phase b"] + out)
    assert "server: the connections did not close within 0.2 s" in out
    assert out.rstrip().endswith("result: FAIL")


def test_a_gap_in_the_sequence_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def skip_seven(seq: int, filler: bytes) -> bytes:
        return make_message(seq + (seq >= 7), filler)

    monkeypatch.setattr(_fanout, "make_message", skip_seven)
    status, out = _thread_run(clients=3, seconds=0.3)
    assert status == 1
    numbers = _summary_numbers(out)
    assert numbers["delivery"].endswith(": FAIL")
    assert re.match(r"[1-9]\d* sequence violations", numbers["delivery"])
    assert re.search(r"client 0: 1 sequence violations, the first: a wrong sequence number", out)
    # The count is still right, so only the order is wrong.
    assert "expected" not in out


def test_a_byte_count_mismatch_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    publish = _fanout._Phase.publish

    async def publish_and_miscount(self: _fanout._Phase, clients: object) -> None:
        await publish(self, clients)  # type: ignore[arg-type]
        self.phase.messages += 1

    monkeypatch.setattr(_fanout._Phase, "publish", publish_and_miscount)
    status, out = _thread_run(clients=3, seconds=0.3)
    assert status == 1
    assert re.search(r"client 0: received ([\d,]+) B, expected [\d,]+ B \([\d,]+ messages\)", out)
    assert _summary_numbers(out)["delivery"].endswith(": FAIL")


def test_a_throughput_miss_is_only_reported_with_speed_verdict_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_fanout, "THROUGHPUT_TARGET", 100.0)
    status, out = _thread_run(clients=3, seconds=0.3)
    assert _summary_numbers(out)["throughput b/a"].endswith(
        "; target >= 100.00): FAIL (reported, not judged: --speed-verdict report)"
    )
    _assert_passed(status, out)


def test_a_throughput_or_memory_miss_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fanout, "THROUGHPUT_TARGET", 100.0)
    monkeypatch.setattr(_fanout, "memory_bound", lambda clients, high_water, max_buffer: 0)
    status, out = _thread_run(clients=3, seconds=0.3, speed_verdict="fail")
    assert status == 1
    numbers = _summary_numbers(out)
    assert numbers["throughput b/a"].endswith("; target >= 100.00): FAIL")
    assert numbers["server memory"].endswith("= 0.0 MiB: FAIL")
    assert numbers["stuck client"].endswith(": PASS")
    assert numbers["delivery"].endswith(": PASS"), out


def test_clients_that_cannot_connect_fail_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, port: int, fast: int, stuck: int, message_size: int) -> None:
        raise ConnectionRefusedError(111, "refused (test)")

    monkeypatch.setattr(_fanout._Clients, "_connect", refuse)
    status, out = _thread_run(clients=3, seconds=0.3)
    assert status == 1
    assert "error: the client process: connecting failed: ConnectionRefusedError(111" in out
    numbers = _summary_numbers(out)
    assert numbers["throughput b/a"].startswith(
        "- (per server CPU-second: -; target >= 0.90): FAIL"
    )
    assert out.rstrip().endswith("result: FAIL")


def test_clients_that_do_not_all_subscribe_fail_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(stream: trio.abc.ReceiveStream, size: int) -> bytes:
        await trio.sleep_forever()

    monkeypatch.setattr(_fanout, "_CONNECT_TIMEOUT", 0.2)
    monkeypatch.setattr(_fanout, "_receive_exactly", never)  # no header ever arrives
    status, out = _thread_run(clients=3, seconds=0.3)
    assert status == 1
    assert "error: only 0 of 2 clients subscribed within 0.2 s" in out


# ----------------------------------------------------------------------
# Helpers


def _messages(first: int, count: int, size: int = 16) -> memoryview:
    filler = b"." * (size - 8)
    return memoryview(b"".join(make_message(seq, filler) for seq in range(first, first + count)))


def test_check_sequence_accepts_consecutive_numbers() -> None:
    assert check_sequence(_messages(5, 10), 16, 5) == (15, None)
    assert check_sequence(_messages(0, 3, size=8), 8, 0) == (3, None)
    assert check_sequence(memoryview(b""), 16, 7) == (7, None)


@pytest.mark.parametrize(
    ("seqs", "expected", "result"),
    [
        ([0, 1, 3, 4], 0, (5, 2)),  # a gap
        ([0, 1, 1, 2], 0, (3, 2)),  # a duplicate
        ([0, 2, 1, 3], 0, (4, 1)),  # out of order
        ([4, 5], 3, (6, 0)),  # starts late
    ],
)
def test_check_sequence_finds_the_first_wrong_number(
    seqs: list[int], expected: int, result: tuple[int, int]
) -> None:
    chunk = memoryview(b"".join(make_message(seq, b"\0" * 8) for seq in seqs))
    assert check_sequence(chunk, 16, expected) == result


def test_make_message_starts_with_the_sequence_number() -> None:
    message = make_message(258, b"abc")
    assert len(message) == 11
    assert struct.unpack("=Q", message[:8]) == (258,)
    assert message.endswith(b"abc")


def _broken_by(cause: BaseException) -> trio.BrokenResourceError:
    error = trio.BrokenResourceError("aborted")
    error.__cause__ = cause
    return error


def test_drop_reason_names_the_limit_or_the_failure() -> None:
    assert drop_reason(BufferLimitError("over")) == "BufferLimitError"
    assert drop_reason(_broken_by(BufferLimitError("over"))) == "BufferLimitError"
    assert drop_reason(_broken_by(StallTimeoutError("stuck"))) == "StallTimeoutError"
    assert (
        drop_reason(_broken_by(ConnectionResetError()))
        == "BrokenResourceError (ConnectionResetError)"
    )
    assert drop_reason(trio.ClosedResourceError()) == "ClosedResourceError"


def test_the_sizes() -> None:
    assert memory_bound(500, 65536, 1 << 20) == 500 * 65536 + (1 << 20) + (32 << 20)
    assert batch_size(65536, 256) == 128
    assert batch_size(100, 256) == 1
    assert quorum(500) == 5
    assert quorum(50) == 1
    assert quorum(1) == 1
    assert warmup_seconds(10) == 1.0
    assert warmup_seconds(0.5) == 0.25


def test_process_facts() -> None:
    assert _fanout.fix_malloc_thresholds() in (True, False)
    assert _fanout.reset_peak_rss()
    peak = _fanout.peak_rss_bytes()
    assert peak is not None
    assert peak >= _fanout.rss_bytes() // 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clients": 1}, "need clients >= 2"),
        ({"seconds": 0}, "need clients >= 2"),
        ({"rate": 0}, "need clients >= 2"),
        ({"message_size": 12}, "multiple of 8"),
        ({"message_size": 0}, "multiple of 8"),
        ({"max_buffer": 100}, "need max_buffer >= message_size"),
        ({"high_water": 0}, "need max_buffer >= message_size"),
        ({"speed_verdict": "maybe"}, "speed_verdict must be 'fail' or 'report'"),
    ],
)
def test_run_fanout_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_fanout(**{"clients": 4, "seconds": 1.0, **kwargs, "out": io.StringIO()})  # type: ignore[arg-type]


# ----------------------------------------------------------------------
# The command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    add_fanout_command(parser.add_subparsers(dest="command", required=True))
    return parser


def test_the_fanout_command_runs_run_fanout(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []

    def fake_run_fanout(*args: object, **kwargs: object) -> int:
        calls.append((*args, kwargs))
        return 7

    monkeypatch.setattr(_fanout, "run_fanout", fake_run_fanout)
    args = _parser().parse_args(["fanout"])
    assert args.run(args) == 7
    args = _parser().parse_args(
        [
            "fanout",
            "--clients",
            "20",
            "--seconds",
            "2.5",
            "--message-size",
            "64",
            "--rate",
            "1000",
            "--max-buffer",
            "4096",
            "--high-water",
            "1024",
            "--stall-timeout",
            "none",
            "--notsent-lowat",
            "16384",
            "--speed-verdict",
            "report",
            "--malloc-as-is",
        ]
    )
    assert args.run(args) == 7
    defaults = {
        "stall_timeout": 2.0,
        "notsent_lowat": 65536,
        "speed_verdict": "fail",
        "malloc_as_is": False,
    }
    given = {
        "stall_timeout": None,
        "notsent_lowat": 16384,
        "speed_verdict": "report",
        "malloc_as_is": True,
    }
    assert calls == [
        (500, 10.0, 256, None, 1 << 20, 65536, defaults),
        (20, 2.5, 64, 1000.0, 4096, 1024, given),
    ]
    assert _parser().parse_args(["fanout", "--notsent-lowat", "default"]).notsent_lowat is None


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--clients", "1"),
        ("--clients", "many"),
        ("--seconds", "0"),
        ("--seconds", "soon"),
        ("--message-size", "12"),
        ("--rate", "-5"),
        ("--max-buffer", "0"),
        ("--stall-timeout", "0"),
        ("--notsent-lowat", "lots"),
        ("--speed-verdict", "maybe"),
    ],
)
def test_the_fanout_command_rejects_bad_values(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["fanout", option, value])
    assert info.value.code == 2
    assert option in capsys.readouterr().err
