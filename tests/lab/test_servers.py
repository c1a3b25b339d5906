"""benchmarks/servers: the parsing of redis-benchmark's and wrk's real output,
the report's arithmetic and verdicts, CPU time from /proc, the skipping of
missing tools, and every server variant answering over a real socket.

No test here asserts on a speed or a ratio: the machine is shared.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# ``benchmarks`` is a folder of the checkout, not an installed package.
from benchmarks.servers import (
    _loadgen,
    _process,
    _report,
    _sanity,
    _serving,
    resp_bufwriter_hand,
    resp_trio_floor,
    run,
)
from benchmarks.servers._hello import BODY, HelloConnection
from benchmarks.servers._options import Settings
from benchmarks.servers._variants import VARIANTS, Requirement, Variant

ROOT = _serving.ROOT

# Recorded from redis-benchmark 7.0.15 against examples/resp_server.py:
# -c 50 -n 20000 -P 1 -t set,get --csv.
REDIS_BENCHMARK_CSV = """\
"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","41322.31","1.200","0.064","1.159","2.063","2.455","38.943"
"GET","42643.92","1.162","0.024","1.119","2.023","2.623","24.655"
"""
REDIS_BENCHMARK_STDERR = "WARNING: Could not fetch server CONFIG\n"
# ... and its stderr, with status 1, for a command the server refuses.
REDIS_BENCHMARK_ERROR_STDERR = """\
WARNING: Could not fetch server CONFIG
Error from server: ERR unknown command 'FOOBAR', with args beginning with: 'x'
"""

# Recorded from wrk 4.1.0 (-t1 -c50 -d3s --latency) against examples/http_server.py.
WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:7381/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.51ms    2.44ms  65.15ms   92.23%
    Req/Sec    11.39k     0.90k   12.26k    90.00%
  Latency Distribution
     50%    4.22ms
     75%    4.85ms
     90%    6.05ms
     99%    9.27ms
  34050 requests in 3.00s, 5.29MB read
Requests/sec:  11337.01
Transfer/sec:      1.76MB
"""
# ... with one connection against http_uvloop_h11.py: microseconds and milliseconds.
WRK_OUTPUT_US = """\
Running 1s test @ http://127.0.0.1:37749/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.32ms   27.04ms 148.13ms   91.68%
    Req/Sec     6.64k     3.50k   11.18k    60.00%
  Latency Distribution
     50%  117.00us
     75%  237.00us
     90%   12.57ms
     99%  134.61ms
  6721 requests in 1.09s, 1.01MB read
Requests/sec:   6184.22
Transfer/sec:      0.93MB
"""
# ... against a path the example does not have (-d2s).
WRK_OUTPUT_404 = """\
Running 2s test @ http://127.0.0.1:7381/nothere
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.57ms    2.60ms  59.81ms   93.16%
    Req/Sec    11.28k   647.70    12.19k    55.00%
  Latency Distribution
     50%    4.29ms
     75%    4.96ms
     90%    5.98ms
     99%    9.42ms
  22456 requests in 2.00s, 3.56MB read
  Non-2xx or 3xx responses: 22456
Requests/sec:  11221.83
Transfer/sec:      1.78MB
"""
# ... against a server that closes each connection after one response (-c10 -d1s).
WRK_OUTPUT_SOCKET_ERRORS = """\
Running 1s test @ http://127.0.0.1:7391/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    14.52ms   29.39ms 162.80ms   87.54%
    Req/Sec     3.98k     2.52k    6.41k    77.78%
  Latency Distribution
     50%    1.51ms
     75%    8.01ms
     90%   55.01ms
     99%  132.12ms
  3565 requests in 1.00s, 142.74KB read
  Socket errors: connect 0, read 3564, write 0, timeout 0
Requests/sec:   3554.01
Transfer/sec:    142.30KB
"""


def _completed(stdout: str, stderr: str, status: int) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["redis-benchmark"], status, stdout, stderr)


# --- redis-benchmark -------------------------------------------------------


def test_redis_benchmark_csv_gives_each_tests_rate_and_percentiles() -> None:
    assert _loadgen.parse_redis_benchmark_csv(REDIS_BENCHMARK_CSV, "set") == (
        41322.31,
        1.159,
        2.455,
    )
    assert _loadgen.parse_redis_benchmark_csv(REDIS_BENCHMARK_CSV, "GET") == (
        42643.92,
        1.119,
        2.623,
    )


def test_redis_benchmark_csv_without_percentiles_gives_none() -> None:
    assert _loadgen.parse_redis_benchmark_csv('"test","rps"\n"SET","1000.5"\n', "set") == (
        1000.5,
        None,
        None,
    )


def test_redis_benchmark_csv_without_the_test_is_an_error() -> None:
    with pytest.raises(ValueError, match="no GET row"):
        _loadgen.parse_redis_benchmark_csv(REDIS_BENCHMARK_CSV.splitlines()[0], "get")


def test_redis_benchmark_config_warning_is_harmless_but_an_error_reply_is_not() -> None:
    _loadgen.check_redis_benchmark(_completed(REDIS_BENCHMARK_CSV, REDIS_BENCHMARK_STDERR, 0))
    with pytest.raises(_loadgen.LoadError, match="Error from server: ERR unknown command"):
        _loadgen.check_redis_benchmark(_completed("", REDIS_BENCHMARK_ERROR_STDERR, 1))
    with pytest.raises(_loadgen.LoadError, match="status 1"):
        _loadgen.check_redis_benchmark(_completed("", "", 1))


def test_redis_benchmark_command_is_the_documented_one() -> None:
    command = _loadgen.redis_benchmark_command(
        6380, clients=50, requests=40000, pipeline=16, tests="set"
    )
    assert " ".join(command) == (
        "redis-benchmark -h 127.0.0.1 -p 6380 -c 50 -n 40000 -P 16 -t set --csv"
    )


# --- wrk -------------------------------------------------------------------


def test_wrk_output_gives_requests_rate_and_percentiles() -> None:
    output = _loadgen.parse_wrk(WRK_OUTPUT)
    assert output == _loadgen.WrkOutput(34050, 11337.01, 4.22, 9.27, 0, {})


def test_wrk_latencies_in_microseconds_are_converted_to_milliseconds() -> None:
    output = _loadgen.parse_wrk(WRK_OUTPUT_US)
    assert output.p50_ms == pytest.approx(0.117)
    assert output.p99_ms == pytest.approx(134.61)
    assert output.requests == 6721


def test_wrk_counts_non_2xx_responses_and_socket_errors() -> None:
    assert _loadgen.parse_wrk(WRK_OUTPUT_404).non_2xx == 22456
    errors = _loadgen.parse_wrk(WRK_OUTPUT_SOCKET_ERRORS).socket_errors
    assert errors == {"connect": 0, "read": 3564, "write": 0, "timeout": 0}


def test_wrk_output_without_a_result_is_an_error() -> None:
    with pytest.raises(ValueError, match="requests in"):
        _loadgen.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_wrk_command_is_bounded_and_asks_for_percentiles() -> None:
    command = _loadgen.wrk_command(8080, clients=50, seconds=5)
    assert " ".join(command) == ("wrk -t1 -c50 -d5s --timeout 10s --latency http://127.0.0.1:8080/")


def test_a_load_generator_that_overruns_its_time_is_stopped() -> None:
    with pytest.raises(_loadgen.LoadError, match=r"did not finish in 0\.2 s"):
        _loadgen.run_bounded([sys.executable, "-c", "import time; time.sleep(30)"], 0.2)


# --- the report ------------------------------------------------------------


def _sample(variant: str, rps: float, cpu: float | None = 1.0, number: int = 1) -> _report.Sample:
    return _report.Sample("RESP SET -P1", variant, number, 10_000, rps, 1.0, 2.0, cpu)


def test_summary_takes_the_median_of_each_measure_over_rounds() -> None:
    samples = [
        _report.Sample("w", "v", 1, 1000, 300.0, 1.0, 9.0, 0.5),
        _report.Sample("w", "v", 2, 1000, 100.0, 3.0, 7.0, None),
        _report.Sample("w", "v", 3, 1000, 200.0, None, 8.0, 0.1),
    ]
    summary = _report.summarize(samples)
    assert summary.rounds == 3
    assert summary.rps == 200.0
    assert summary.p50_ms == 2.0  # the median of those reported
    assert summary.p99_ms == 8.0
    assert summary.cpu_us_per_request == pytest.approx(300.0)  # of 500 and 100 us
    assert summary.spread == pytest.approx(1.0)  # (300 - 100) / 200
    assert summary.seconds == pytest.approx(5.0)  # of 1000 requests at 300, 100, 200/s


def test_cpu_per_request_is_none_without_cpu_time_or_requests() -> None:
    assert _sample("v", 1.0, cpu=None).cpu_us_per_request is None
    assert _report.Sample("w", "v", 1, 0, 1.0, None, None, 1.0).cpu_us_per_request is None
    assert _sample("v", 1.0, cpu=0.25).cpu_us_per_request == pytest.approx(25.0)


def test_ratio_is_none_when_a_side_is_missing() -> None:
    assert _report.ratio(3.0, 2.0) == 1.5
    assert _report.ratio(None, 2.0) is None
    assert _report.ratio(3.0, None) is None
    assert _report.ratio(3.0, 0.0) is None


def test_table_has_a_row_per_variant_and_a_ratio_against_the_baseline() -> None:
    rows = [_report.summarize([_sample("bufwriter", 30_000.0)])]
    rows.append(_report.summarize([_sample("trio-send-all", 20_000.0, cpu=None)]))
    table = _report.format_table("RESP SET -P1", rows, "trio-send-all").splitlines()
    assert table[0] == "RESP SET -P1"
    assert table[2].split() == [
        "variant", "req/s", "x", "trio-send-all", "p50", "ms", "p99", "ms",
        "CPU", "us/req", "spread", "run", "s", "rounds",
    ]  # fmt: skip
    assert table[4].split() == [
        "bufwriter", "30,000", "1.50x", "1.000", "2.000", "100.0", "0%", "0.33", "1",
    ]  # fmt: skip
    assert table[5].split() == [
        "trio-send-all", "20,000", "1.00x", "1.000", "2.000", "n/a", "0%", "0.50", "1",
    ]  # fmt: skip
    # Every line of the table is as wide as its rules.
    assert len({len(table[1]), len(table[2])}) == 1


def test_table_without_the_baseline_says_n_a() -> None:
    rows = [_report.summarize([_sample("bufwriter", 30_000.0)])]
    table = _report.format_table("t", rows, "trio-send-all")
    assert table.splitlines()[4].split()[2] == "n/a"


def test_verdicts_say_met_not_met_and_not_measured() -> None:
    medians = {
        ("RESP SET -P1", "bufwriter"): 110.0,
        ("RESP SET -P1", "trio-send-all"): 100.0,
        ("RESP GET -P1", "bufwriter"): 90.0,
        ("RESP GET -P1", "trio-send-all"): 100.0,
        ("HTTP GET /", "bufwriter"): 100.0,
        ("HTTP GET /", "hypercorn-trio"): 25.0,
    }
    lines = {(v.workload, v.target.other, v.target.level): v for v in _report.verdicts(medians)}
    met = lines["RESP SET -P1", "trio-send-all", "must"]
    assert (met.ratio, met.met) == (pytest.approx(1.1), True)
    assert met.line().endswith("bufwriter vs trio-send-all >= 1.0x: 1.10x  met")
    assert met.line().startswith("[must]")
    missed = lines["RESP GET -P1", "trio-send-all", "must"]
    assert missed.met is False
    assert missed.line().endswith("0.90x  NOT MET")
    absent = lines["RESP SET -P16", "uvloop", "target"]
    assert (absent.ratio, absent.met) == (None, None)
    assert absent.line().endswith("n/a  not measured")
    info = lines["HTTP GET /", "hypercorn-trio", "info"]
    assert (info.ratio, info.met) == (4.0, None)
    assert ">=" not in info.line()


def test_the_targets_are_the_ones_asked_for() -> None:
    wanted = {
        (target.variant, target.other, target.minimum, target.level) for target in _report.TARGETS
    }
    assert wanted == {
        ("bufwriter", "trio-send-all", 1.0, "must"),
        ("bufwriter", "asyncio", 1.0, "goal"),
        ("bufwriter", "uvloop", 1.3, "target"),
        ("bufwriter", "trio-joined", 1.0, "target"),
        ("bufwriter", "trio-send-all", 1.3, "target"),
        ("bufwriter", "bufwriter-hand", 0.95, "target"),
        ("bufwriter", "trio-floor", 0.8, "target"),
        ("bufwriter", "trio-floor", 0.0, "info"),
        ("bufwriter", "trio-h11", 1.2, "target"),
        ("bufwriter-h11", "trio-h11", 1.2, "info"),
        ("bufwriter", "hypercorn-trio", 0.0, "info"),
    }


# --- CPU time --------------------------------------------------------------


def test_proc_stat_cpu_is_utime_plus_stime_even_with_odd_command_names() -> None:
    # A real line of /proc/PID/stat, its command name made awkward.
    line = (
        "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 5124 0 0 0 "
        "137 42 0 0 20 0 3 0 123456 123456789 2345 18446744073709551615 "
        "1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0\n"
    )
    assert _process.parse_proc_stat(line) == 137 + 42


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc here")
def test_cpu_seconds_of_a_process_grow_as_it_works() -> None:
    before = _process.read_cpu_seconds(os.getpid())
    assert before is not None
    assert before >= 0
    sum(range(3_000_000))  # some CPU work
    after = _process.read_cpu_seconds(os.getpid())
    assert after is not None
    assert after >= before


def test_cpu_seconds_of_no_process_is_none() -> None:
    assert _process.read_cpu_seconds(2**22 + 12345) is None  # beyond Linux's pid_max


# --- options, missing tools, the command line -----------------------------


def test_quick_gives_small_defaults_and_options_given_win() -> None:
    quick = Settings.resolve(quick=True)
    assert (quick.rounds, quick.requests, quick.seconds) == (1, 20000, 2.0)
    full = Settings.resolve()
    assert (full.rounds, full.requests, full.seconds, full.clients) == (3, 40000, 5.0, 50)
    assert Settings.resolve(quick=True, rounds=2).rounds == 2


def test_pipelined_runs_ask_for_more_requests_so_that_they_last_as_long() -> None:
    settings = Settings.resolve()
    assert [settings.requests_for(depth) for depth in (1, 2, 16)] == [40000, 40000, 200000]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="no variant named nginx"):
        Settings.resolve(variants=["bufwriter", "nginx"])
    with pytest.raises(ValueError, match="--only takes resp or http"):
        Settings.resolve(only="grpc")
    with pytest.raises(ValueError, match="rounds must be more than 0"):
        Settings.resolve(rounds=0)
    assert run.run_servers(variants=["nginx"], out=io.StringIO()) == 2


def test_a_missing_tool_is_named_with_how_to_install_it() -> None:
    tool = Requirement("no-such-benchmark-tool", True, "apt-get install redis-tools")
    assert tool.missing()
    assert tool.skip_message() == "no-such-benchmark-tool not found; apt-get install redis-tools"
    module = Requirement("no_such_module_here", False, "pip install uvloop")
    assert module.missing()
    assert module.skip_message() == "no_such_module_here not installed; pip install uvloop"
    assert not Requirement(sys.executable, True, "").missing()


def test_a_missing_load_generator_skips_its_rows_and_is_no_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = Requirement("no-such-redis-benchmark", True, "apt-get install redis-tools")
    monkeypatch.setitem(run.LOAD_GENERATORS, "resp", missing)
    out = io.StringIO()
    assert run.run_servers(only="resp", quick=True, out=out) == 0
    text = out.getvalue()
    assert "skipped RESP: no-such-redis-benchmark not found; apt-get install redis-tools" in text
    assert "RESP SET -P1" not in text  # no table, no command: nothing ran


def test_servers_subcommand_parses_its_options_and_runs_run_servers() -> None:
    parser = argparse.ArgumentParser(prog="lab")
    run.add_servers_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["servers", "--quick", "--only", "http", "--variants", "bufwriter"])
    assert args.command == "servers"
    assert (args.quick, args.only, args.variants, args.rounds) == (
        True,
        "http",
        ["bufwriter"],
        None,
    )
    assert callable(args.run)
    with pytest.raises(SystemExit):
        parser.parse_args(["servers", "--variants", "nginx"])


def test_module_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.servers", "--help"],
        cwd=ROOT, env=run.server_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout


# --- the variants' shared protocol code ------------------------------------


def test_resp_commands_answer_complete_commands_and_keep_a_partial_one() -> None:
    resp = _serving.load_example("resp_server")
    commands = _serving.RespCommands(resp, resp.RespServer())
    first = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1"
    assert list(commands.replies(first)) == [b"+OK\r\n"]
    assert list(commands.replies(b"\r\nk\r\n")) == [b"$1\r\nv\r\n"]
    assert not commands.closing
    assert list(commands.replies(b"*1\r\n!x\r\n")) == [
        b"-ERR Protocol error: expected '$', got '!'\r\n"
    ]
    assert commands.closing


def _redis_benchmark_stream(count: int) -> tuple[bytes, list[bytes]]:
    """*count* commands shaped like redis-benchmark's (SET and GET of
    ``key:000000000042``, 3-byte values), and the floor's canned replies."""
    commands = []
    replies = []
    for i in range(count):
        key = b"key:%012d" % i
        if i % 3:
            commands.append(_sanity._command(b"GET", key))
            replies.append(resp_trio_floor.GET_REPLY)
        else:
            commands.append(_sanity._command(b"SET", key, b"xxx"))
            replies.append(resp_trio_floor.OTHER_REPLY)
    return b"".join(commands), replies


@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
@settings(deadline=None)
def test_the_floor_answers_each_command_once_however_the_stream_is_cut(cuts: list[int]) -> None:
    stream, replies = _redis_benchmark_stream(40)
    points = sorted({cut % len(stream) for cut in cuts} | {0, len(stream)})
    kept = b"\n"
    answered = b""
    for start, end in itertools.pairwise(points):
        out, kept = resp_trio_floor.canned_replies(kept + stream[start:end])
        answered += out
    assert answered == b"".join(replies)


@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
@settings(deadline=None)
def test_the_hand_parser_finds_the_examples_commands_however_the_stream_is_cut(
    cuts: list[int],
) -> None:
    resp = _serving.load_example("resp_server")
    stream, _ = _redis_benchmark_stream(20)
    stream += _sanity._command(b"SET", b"k", b"a\r\nvalue with a CRLF") + _sanity._command(b"X")
    expected = []
    pos = 0
    while pos < len(stream):
        parsed = resp.parse_command(stream, pos)
        assert type(parsed) is tuple
        expected.append(parsed[0])
        pos = parsed[1]
    points = sorted({cut % len(stream) for cut in cuts} | {0, len(stream)})
    pending = b""
    found = []
    for start, end in itertools.pairwise(points):
        data = pending + stream[start:end]
        commands, pos = resp_bufwriter_hand.parse_commands(data, 0)
        found += commands
        pending = data[pos:]
    assert (found, pending) == (expected, b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PING\r\n", "expected '*', got b'P'"),
        (b"*1\r\n+OK\r\n", "expected '$', got b'+'"),
        (b"*1\r\n$-2\r\n", "invalid bulk length -2"),
        (b"*1\r\n$1\r\nab\r\n", "bulk string not followed by CRLF"),
    ],
)
def test_the_hand_parser_refuses_what_is_not_an_array_of_bulk_strings(
    data: bytes, message: str
) -> None:
    with pytest.raises(resp_bufwriter_hand.BadCommand, match=re.escape(message)):
        resp_bufwriter_hand.parse_commands(data, 0)
    with pytest.raises(ValueError, match="invalid literal"):
        resp_bufwriter_hand.parse_commands(b"*x\r\n", 0)


def test_hello_connection_answers_pipelined_requests_in_order() -> None:
    http = HelloConnection(b"test")
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    responses = list(http.responses(request + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert len(responses) == 2
    assert responses[0][0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert responses[0][1] == BODY
    assert responses[1][0].startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert list(http.responses(b"")) == []
    assert http.closing


# --- every variant, for real -----------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.kind}-{v.name}")
def test_each_variant_starts_answers_correctly_and_stops(variant: Variant, tmp_path: Path) -> None:
    missing = variant.missing()
    if missing:
        pytest.skip("; ".join(need.skip_message() for need in missing))
    port = None if variant.announces_port else _process.free_port()
    command = variant.command(0 if port is None else port)
    ready = None if port is None else "Ready to accept connections"
    with _process.running_server(
        variant.name, command, log=tmp_path / "log", env=run.server_env(), cwd=ROOT,
        port=port, ready_text=ready,
    ) as server:  # fmt: skip
        run.check_answers(variant, server.port)
        server.check_alive()
        process = server.process
    assert process.returncode is not None  # stopped on leaving the block


def _answer_once(listener: socket.socket, reply: bytes) -> None:
    """Accept one connection on *listener*, read a request, send *reply*, close."""
    connection, _ = listener.accept()
    with connection:
        connection.recv(65536)
        connection.sendall(reply)


@pytest.mark.parametrize(
    ("check", "reply", "said"),
    [
        (_sanity.check_resp, b"-ERR nope\r\n", "got b'-ERR nope"),
        (_sanity.check_resp, b"+O", "closed the connection after b'\\+O'"),
        (_sanity.check_resp_canned, b"-ERR nope\r\n", "got b'-ERR nope"),
        (_sanity.check_http, b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno", "got 500 b'no'"),
        (_sanity.check_http, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HTTP check"),
    ],
)
def test_sanity_checks_catch_a_wrong_or_missing_answer(
    check: Callable[[int], None], reply: bytes, said: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        server = threading.Thread(target=_answer_once, args=(listener, reply))
        server.start()
        try:
            with pytest.raises(_sanity.SanityError, match=said):
                check(listener.getsockname()[1])
        finally:
            server.join(10)


def test_a_server_that_exits_or_says_no_port_fails_to_start(tmp_path: Path) -> None:
    env = run.server_env()
    log = tmp_path / "log"
    crash = [sys.executable, "-c", "import sys; sys.exit('no luck')"]
    with (
        pytest.raises(_process.ServerFailed, match=r"exited before it was ready(.|\n)*no luck"),
        _process.running_server("crash", crash, log=log, env=env, cwd=ROOT),
    ):
        pass
    chatty = [sys.executable, "-c", "print('hello')"]
    with (
        pytest.raises(_process.ServerFailed, match="first line is not a port: 'hello'"),
        _process.running_server("chatty", chatty, log=log, env=env, cwd=ROOT),
    ):
        pass


@pytest.mark.skipif(
    shutil.which("redis-benchmark") is None or shutil.which("wrk") is None,
    reason="needs redis-benchmark (apt-get install redis-tools) and wrk (apt-get install wrk)",
)
def test_a_tiny_run_measures_every_workload_and_reports_without_judging(tmp_path: Path) -> None:
    out = io.StringIO()
    status = run.run_servers(
        rounds=1, requests=200, seconds=1, clients=4,
        variants=["bufwriter", "bufwriter-hand", "trio-floor", "trio-send-all", "trio-h11"],
        json_path=tmp_path / "results.json", out=out,
    )  # fmt: skip
    text = out.getvalue()
    assert status == 0, text
    for title in ("RESP SET -P1", "RESP GET -P1", "RESP SET -P16", "RESP GET -P16", "HTTP GET /"):
        assert f"\n{title}\n" in text
    assert "Targets (ratios of median req/s; reported, never a failure):" in text
    results = json.loads((tmp_path / "results.json").read_text())
    measured = {(sample["workload"], sample["variant"]) for sample in results["samples"]}
    assert len(measured) == 4 * 4 + 2
    assert results["problems"] == []
