"""The load generators, unmodified: redis-benchmark and wrk, their command
lines, a bounded run of each, and the parsing of what they print."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

#: What redis-benchmark says on stderr to a server without CONFIG GET (all
#: but Redis itself); harmless, it only skips reporting Redis's settings.
_HARMLESS_STDERR = "WARNING: Could not fetch server CONFIG"
#: wrk's latency units, in milliseconds.
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


class LoadError(Exception):
    """The load generator failed, timed out, or reported errors from the server."""


@dataclass(frozen=True)
class LoadResult:
    """What one measured run gave: requests done, their rate and latencies (ms).

    A latency is None when the tool does not report it (redis-benchmark
    before 7.0 prints no percentiles in its CSV).
    """

    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None


def run_bounded(command: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run *command*, capturing its output; kill it after *timeout* seconds.

    Raises:
      LoadError: it did not finish in time.
    """
    try:
        return subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise LoadError(f"{command[0]} did not finish in {timeout:g} s") from None


def redis_benchmark_command(
    port: int | str, *, clients: int, requests: int, pipeline: int, tests: str
) -> list[str]:
    """``redis-benchmark`` for *tests* (``set``, ``get``, ``set,get``), CSV output."""
    return [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
        "-n", str(requests), "-P", str(pipeline), "-t", tests, "--csv",
    ]  # fmt: skip


def parse_redis_benchmark_csv(text: str, test: str) -> tuple[float, float | None, float | None]:
    """Requests/s, p50 and p99 (ms) of *test* (``SET``) in redis-benchmark's ``--csv`` output.

    Raises:
      ValueError: the output has no row for *test*.
    """
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("test", "").upper() == test.upper():
            p50, p99 = row.get("p50_latency_ms"), row.get("p99_latency_ms")
            return (
                float(row["rps"]),
                None if p50 is None else float(p50),
                None if p99 is None else float(p99),
            )
    raise ValueError(f"no {test.upper()} row in redis-benchmark's output: {text!r}")


def check_redis_benchmark(result: subprocess.CompletedProcess[str]) -> None:
    """Raise :class:`LoadError` if redis-benchmark failed or saw an error reply."""
    problems = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(_HARMLESS_STDERR)
    ]
    if result.returncode != 0 or problems:
        said = "; ".join(problems[:3]) or result.stdout.strip()[-200:]
        raise LoadError(f"redis-benchmark exited with status {result.returncode}: {said}")


def run_redis_benchmark(
    port: int, *, clients: int, requests: int, pipeline: int, test: str, timeout: float
) -> LoadResult:
    """Run redis-benchmark for one *test* against *port* and parse its result.

    Raises:
      LoadError: it failed, timed out, saw an error reply or printed no result.
    """
    command = redis_benchmark_command(
        port, clients=clients, requests=requests, pipeline=pipeline, tests=test
    )
    result = run_bounded(command, timeout)
    check_redis_benchmark(result)
    try:
        rps, p50, p99 = parse_redis_benchmark_csv(result.stdout, test)
    except ValueError as exc:
        raise LoadError(str(exc)) from None
    return LoadResult(requests, rps, p50, p99)


def wrk_command(port: int | str, *, clients: int, seconds: float, path: str = "/") -> list[str]:
    """``wrk`` with one thread for *seconds* (whole seconds), latency percentiles on.

    Its timeout is 10 s rather than 2 s: on a busy shared machine a slow
    response is a slow response, not an error.
    """
    return [
        "wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "--latency", f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip


@dataclass(frozen=True)
class WrkOutput:
    """What wrk printed: totals, percentiles, and any errors it counted."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    #: connect, read, write and timeout errors, as wrk counts them.
    socket_errors: dict[str, int]


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def _search(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {pattern!r} in wrk's output: {text!r}")
    return match


def parse_wrk(text: str) -> WrkOutput:
    """Parse wrk's ``--latency`` report.

    Raises:
      ValueError: a line it always prints is missing.
    """
    requests = int(_search(r"^\s*(\d+) requests in ", text)[1])
    rps = float(_search(r"^Requests/sec:\s+([\d.]+)", text)[1])
    p50 = _search(r"^\s+50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text)
    p99 = _search(r"^\s+99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    socket_errors = {}
    if errors is not None:
        socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
    return WrkOutput(
        requests=requests,
        rps=rps,
        p50_ms=_ms(p50[1], p50[2]),
        p99_ms=_ms(p99[1], p99[2]),
        non_2xx=0 if non_2xx is None else int(non_2xx[1]),
        socket_errors=socket_errors,
    )


def run_wrk(port: int, *, clients: int, seconds: float, timeout: float) -> LoadResult:
    """Run wrk against ``http://127.0.0.1:PORT/`` and parse its result.

    Raises:
      LoadError: it failed, timed out, or counted a non-2xx response or a
        socket error.
    """
    result = run_bounded(wrk_command(port, clients=clients, seconds=seconds), timeout)
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip())[-300:]
        raise LoadError(f"wrk exited with status {result.returncode}: {said}")
    try:
        output = parse_wrk(result.stdout)
    except ValueError as exc:
        raise LoadError(str(exc)) from None
    if output.non_2xx:
        raise LoadError(f"wrk got {output.non_2xx} non-2xx responses")
    if any(output.socket_errors.values()):
        counts = ", ".join(f"{n} {what}" for what, n in output.socket_errors.items() if n)
        raise LoadError(f"wrk counted socket errors: {counts}")
    if output.requests == 0:
        raise LoadError("wrk completed no request")
    return LoadResult(output.requests, output.rps, output.p50_ms, output.p99_ms)
