"""``python -m benchmarks sendfile``: files and large payloads over loopback.

Four parts (``--parts``), each in ``--rounds`` interleaved rounds (every
variant once per round, the order rotated), reported as medians with the
spread (min-max):

* ``bulk``: one file of ``--size-mib`` MiB (1 GiB by default, in the page
  cache) sent over loopback to this process, which reads it.  Variants (see
  ``sendfile_servers/bulk_sender.py``): plain trio reading the file in the
  event loop and calling ``send_all`` (the baseline), asyncio's
  ``loop.sendfile``, ``write_file()`` (and ``write_file(thread=True)``).
  Reported: GB/s, and the sender's user and system CPU seconds per GiB,
  separately (``getrusage`` in the sender process).
* ``bytes``: the same number of bytes as 1 MiB ``bytes`` objects:
  ``write(); await drain()`` against a blocking socket's ``sendall``.
* ``cold``: the file evicted from the page cache before every run
  (``posix_fadvise(DONTNEED)``), ``write_file()`` in the event loop against
  ``thread=True``, with the longest stall of the sender's event loop (a 1 ms
  ticker).  First it reads the file cold and warm once, to show whether this
  machine's disk can be seen at all (a VM's host may cache it).
* ``wrk``: ``wrk -c50`` against ``examples/static_server.py``, against the
  same server on plain trio (read + ``send_all``) and on asyncio
  (``loop.sendfile``), for a 1 MiB and a 64 KiB file; requests/s, p99, the
  server's CPU microseconds per request and its resident memory after the
  run.

Correctness fails the command (exit status 1): every bulk and bytes run's
byte count is checked, and the first run of each variant also its CRC-32;
each static server's answer is checked byte for byte before ``wrk`` runs.
Speed is reported against :data:`TARGETS`, never failed on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trio_bufwriter._cli import positive_int

from .sendfile_servers.bulk_sender import CHUNK, chunk
from .servers._loadgen import LoadError, parse_wrk, run_bounded, wrk_command
from .servers._process import running_server

ROOT = Path(__file__).resolve().parents[1]
SENDER = ROOT / "benchmarks" / "sendfile_servers" / "bulk_sender.py"
STATIC_SERVERS = {
    "bufwriter": ROOT / "examples" / "static_server.py",
    "trio-read": ROOT / "benchmarks" / "sendfile_servers" / "static_trio.py",
    "asyncio-sendfile": ROOT / "benchmarks" / "sendfile_servers" / "static_asyncio.py",
}
BULK_VARIANTS = ("trio-read", "asyncio-sendfile", "bufwriter", "bufwriter-thread")
BYTES_VARIANTS = ("raw-sendall", "bufwriter-bytes")
COLD_VARIANTS = ("bufwriter", "bufwriter-thread")
PARTS = ("bulk", "bytes", "cold", "wrk")
DEFAULT_PARTS = ("bulk", "bytes", "wrk")
WRK_FILES = {"1m.bin": 1024 * 1024, "64k.bin": 64 * 1024}
GIB = 1024**3

#: What the issue asks of us, reported (never failed on): (what, ratio, target).
TARGETS = (
    ("bulk: user CPU/GiB, bufwriter / trio-read", "user", "bufwriter", "trio-read", "<=", 0.1),
    ("bulk: total CPU/GiB, bufwriter / trio-read", "cpu", "bufwriter", "trio-read", "<=", 0.7),
    ("bulk: GB/s, bufwriter / trio-read", "gbps", "bufwriter", "trio-read", ">=", 1.3),
    ("bulk: GB/s, bufwriter / asyncio", "gbps", "bufwriter", "asyncio-sendfile", ">=", 0.95),
    ("bytes: GB/s, bufwriter / raw sendall", "gbps", "bufwriter-bytes", "raw-sendall", ">=", 0.95),
)
WRK_TARGETS = (("trio-read", 1.3), ("asyncio-sendfile", 0.95))


class WrongBytes(Exception):
    """A transfer delivered the wrong bytes, or the wrong number of them."""


@dataclass
class Options:
    size_mib: int = 1024
    rounds: int = 3
    parts: tuple[str, ...] = DEFAULT_PARTS
    wrk_seconds: int = 5
    wrk_clients: int = 50
    cold_size_mib: int = 256
    json_path: str | None = None
    workdir: str | None = None


@dataclass
class Samples:
    """Measurements of one variant, one list per quantity."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, **quantities: float | None) -> None:
        for name, value in quantities.items():
            if value is not None:
                self.values.setdefault(name, []).append(value)

    def median(self, name: str) -> float | None:
        values = self.values.get(name)
        return statistics.median(values) if values else None

    def spread(self, name: str) -> str:
        values = self.values.get(name)
        if not values:
            return "-"
        return f"{min(values):.3g}-{max(values):.3g}"


# ----------------------------------------------------------------------
# The files


def make_file(path: Path, size: int) -> int:
    """Write *size* bytes (the 1 MiB chunk, repeated) to *path*, fsync'd;
    return their CRC-32."""
    data = chunk()
    crc = 0
    with path.open("wb") as file:
        for start in range(0, size, CHUNK):
            piece = data[: size - start]
            file.write(piece)
            crc = zlib.crc32(piece, crc)
        file.flush()
        os.fsync(file.fileno())
    return crc


def evict(path: Path) -> None:
    """Drop *path*'s pages from the page cache (it was fsync'd: they are clean)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_speed(path: Path) -> float:
    """GB/s of reading *path* once, 1 MiB at a time."""
    buffer = bytearray(CHUNK)
    start = time.perf_counter()
    total = 0
    with path.open("rb", buffering=0) as file:
        while got := file.readinto(buffer):
            total += got
    return total / (time.perf_counter() - start) / 1e9


# ----------------------------------------------------------------------
# One bulk transfer


def transfer(variant: str, path: Path, *, verify: int | None, lag: bool = False) -> dict[str, Any]:
    """Run one transfer of *variant*; return GB/s, the sender's CPU and lag.

    Raises:
      WrongBytes: the byte count (or, with *verify*, the CRC-32) is wrong.
    """
    size = path.stat().st_size
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        command = [sys.executable, str(SENDER), variant, "--file", str(path), "--port", str(port)]
        if lag:
            command.append("--lag")
        sender = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            listener.settimeout(30)
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(120)
                buffer = bytearray(CHUNK)
                received = 0
                crc = 0
                start = time.perf_counter()
                with memoryview(buffer) as view:
                    while got := connection.recv_into(buffer):
                        received += got
                        if verify is not None:
                            crc = zlib.crc32(view[:got], crc)
                seconds = time.perf_counter() - start
            output, _ = sender.communicate(timeout=60)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
    if sender.returncode:
        raise WrongBytes(f"{variant}: the sender exited with status {sender.returncode}")
    if received != size:
        raise WrongBytes(f"{variant}: {received} bytes received, {size} sent")
    if verify is not None and crc != verify:
        raise WrongBytes(f"{variant}: the bytes received are not the file's (CRC-32)")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    gib = size / GIB
    return {
        "gbps": size / seconds / 1e9,
        "user": result["user"] / gib,
        "sys": result["sys"] / gib,
        "cpu": (result["user"] + result["sys"]) / gib,
        "lag_ms": result["lag_ms"],
    }


def rotated(variants: Sequence[str], round_number: int) -> list[str]:
    shift = round_number % len(variants)
    return [*variants[shift:], *variants[:shift]]


def run_transfers(
    variants: Sequence[str], path: Path, crc: int, rounds: int, *, cold: bool = False
) -> dict[str, Samples]:
    """Every variant once (verified, untimed), then *rounds* interleaved timed rounds."""
    results = {variant: Samples() for variant in variants}
    for variant in variants:
        transfer(variant, path, verify=crc)
    for number in range(rounds):
        for variant in rotated(variants, number):
            if cold:
                evict(path)
            results[variant].add(**transfer(variant, path, verify=None, lag=cold))
    return results


# ----------------------------------------------------------------------
# wrk against the static servers


def rss_kib(pid: int) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) of process *pid* in KiB, from /proc."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def kib(name: str) -> int | None:
        value = fields.get(name)
        return None if value is None else int(value.split()[0])

    return kib("VmRSS"), kib("VmHWM")


def check_static(port: int, name: str, expected: bytes) -> None:
    """GET *name* twice on one keep-alive connection; raise :class:`WrongBytes`
    unless both bodies are *expected*."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(2):
            connection.request("GET", f"/{name}")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or body != expected:
                raise WrongBytes(
                    f"GET /{name}: status {response.status}, {len(body)} bytes "
                    f"({'right' if body == expected else 'wrong'} bytes)"
                )
    finally:
        connection.close()


def run_wrk_part(options: Options, root: Path) -> dict[str, dict[str, Samples]]:
    """wrk against each static server, for each file, in interleaved rounds."""
    results: dict[str, dict[str, Samples]] = {name: {} for name in WRK_FILES}
    data = chunk()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    servers = list(STATIC_SERVERS)
    for number in range(options.rounds):
        for variant in rotated(servers, number):
            script = STATIC_SERVERS[variant]
            command = [sys.executable, str(script), "--root", str(root), "--port", "0"]
            log = root.parent / f"{variant}.log"
            with running_server(variant, command, log=log, env=env, cwd=ROOT) as server:
                for name, size in WRK_FILES.items():
                    check_static(server.port, name, data[:size])
                    wrk = wrk_command(
                        server.port,
                        clients=options.wrk_clients,
                        seconds=options.wrk_seconds,
                        path=f"/{name}",
                    )
                    before = server.cpu_seconds()
                    result = run_bounded(wrk, options.wrk_seconds + 60)
                    after = server.cpu_seconds()
                    if result.returncode != 0:
                        raise LoadError(f"wrk failed: {result.stderr.strip()[-300:]}")
                    output = parse_wrk(result.stdout)
                    if output.non_2xx or any(output.socket_errors.values()):
                        raise WrongBytes(
                            f"{variant} {name}: {output.non_2xx} non-2xx, "
                            f"socket errors {output.socket_errors}"
                        )
                    server.check_alive()
                    rss, hwm = rss_kib(server.process.pid)
                    samples = results[name].setdefault(variant, Samples())
                    cpu_us = None
                    if before is not None and after is not None and output.requests:
                        cpu_us = (after - before) / output.requests * 1e6
                    samples.add(rps=output.rps, p99_ms=output.p99_ms, rss_mib=_mib(rss))
                    samples.add(cpu_us_per_req=cpu_us)
                    samples.add(peak_rss_mib=_mib(hwm))
    return results


def _mib(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024


# ----------------------------------------------------------------------
# The report


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def print_transfers(title: str, results: dict[str, Samples], quantities: Sequence[str]) -> None:
    print(f"\n== {title}")
    print(f"{'variant':<18}" + "".join(f"{q:>22}" for q in quantities))
    for variant, samples in results.items():
        cells = "".join(
            f"{_fmt(samples.median(q)) + ' (' + samples.spread(q) + ')':>22}" for q in quantities
        )
        print(f"{variant:<18}{cells}")


def ratio(results: dict[str, Samples], quantity: str, ours: str, theirs: str) -> float | None:
    a = results.get(ours, Samples()).median(quantity)
    b = results.get(theirs, Samples()).median(quantity)
    if a is None or b is None or b == 0:
        return None
    return a / b


def report_targets(transfers: dict[str, Samples], wrk: dict[str, dict[str, Samples]]) -> list[str]:
    lines = []
    for what, quantity, ours, theirs, sense, target in TARGETS:
        value = ratio(transfers, quantity, ours, theirs)
        if value is None:
            continue
        met = value <= target if sense == "<=" else value >= target
        lines.append(
            f"{what}: {value:.2f}x (target {sense} {target}x: {'met' if met else 'NOT met'})"
        )
    for name, results in wrk.items():
        for theirs, target in WRK_TARGETS:
            value = ratio(results, "rps", "bufwriter", theirs)
            if value is None:
                continue
            met = value >= target
            lines.append(
                f"wrk {name}: req/s, bufwriter / {theirs}: {value:.2f}x "
                f"(target >= {target}x: {'met' if met else 'NOT met'})"
            )
    return lines


# ----------------------------------------------------------------------
# The command


def run_sendfile(options: Options, *, command: str = "") -> int:
    """Run the parts asked for; print the report; return the exit status."""
    print(f"$ {command}" if command else "python -m benchmarks sendfile")
    print(f"file: {options.size_mib} MiB, {options.rounds} rounds, parts {','.join(options.parts)}")
    transfers: dict[str, Samples] = {}
    wrk: dict[str, dict[str, Samples]] = {}
    everything: dict[str, Any] = {"options": options.__dict__}
    workdir = Path(tempfile.mkdtemp(prefix="sendfile-bench-", dir=options.workdir))
    try:
        if "bulk" in options.parts or "bytes" in options.parts:
            path = workdir / "bulk.bin"
            crc = make_file(path, options.size_mib * 1024 * 1024)
            read_speed(path)  # in the page cache for the warm parts
            if "bulk" in options.parts:
                bulk = run_transfers(BULK_VARIANTS, path, crc, options.rounds)
                print_transfers("bulk: a file over loopback", bulk, ("gbps", "user", "sys", "cpu"))
                print("(gbps: GB/s; user, sys, cpu: the sender's CPU seconds per GiB)")
                transfers.update(bulk)
            if "bytes" in options.parts:
                bytes_part = run_transfers(BYTES_VARIANTS, path, crc, options.rounds)
                print_transfers("bytes: 1 MiB bytes objects", bytes_part, ("gbps", "user", "sys"))
                transfers.update(bytes_part)
            path.unlink()
        if "cold" in options.parts:
            path = workdir / "cold.bin"
            crc = make_file(path, options.cold_size_mib * 1024 * 1024)
            evict(path)
            cold_read = read_speed(path)
            warm_read = read_speed(path)
            print(
                f"\n== cold: reading the file evicted {cold_read:.3g} GB/s,"
                f" cached {warm_read:.3g} GB/s"
            )
            if cold_read > warm_read / 2:
                print("(the eviction barely slows a read: the host's cache hides the disk)")
            cold = run_transfers(COLD_VARIANTS, path, crc, options.rounds, cold=True)
            print_transfers("cold: evicted before every run", cold, ("gbps", "lag_ms", "cpu"))
            print("(lag_ms: the longest stall of the sender's event loop)")
            everything["cold"] = {
                "read_gbps": {"evicted": cold_read, "cached": warm_read},
                **{v: s.values for v, s in cold.items()},
            }
            path.unlink()
        if "wrk" in options.parts:
            if shutil.which("wrk") is None:
                print("\n== wrk: not installed (apt-get install wrk); skipped")
            else:
                root = workdir / "root"
                root.mkdir()
                data = chunk()
                for name, size in WRK_FILES.items():
                    (root / name).write_bytes(data[:size])
                wrk = run_wrk_part(options, root)
                for name, results in wrk.items():
                    print_transfers(
                        f"wrk -c{options.wrk_clients} GET /{name}",
                        results,
                        ("rps", "p99_ms", "cpu_us_per_req", "rss_mib", "peak_rss_mib"),
                    )
    except WrongBytes as exc:
        print(f"\nFAILED: {exc}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n== targets (reported, not enforced)")
    for line in report_targets(transfers, wrk):
        print(line)
    everything["transfers"] = {v: s.values for v, s in transfers.items()}
    everything["wrk"] = {n: {v: s.values for v, s in r.items()} for n, r in wrk.items()}
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(everything, indent=2))
    return 0


def _parts(text: str) -> tuple[str, ...]:
    chosen = {part.strip() for part in text.split(",")}
    unknown = sorted(chosen - set(PARTS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown part {', '.join(unknown)}: choose from {','.join(PARTS)}"
        )
    return tuple(part for part in PARTS if part in chosen)


def add_sendfile_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sendfile`` command."""
    parser = commands.add_parser(
        "sendfile",
        help="files and large payloads: write_file against read+send_all and asyncio sendfile",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--size-mib",
        type=positive_int,
        default=1024,
        metavar="MIB",
        help="the bulk file's size in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        metavar="N",
        help="interleaved timed rounds (default: %(default)s)",
    )
    parser.add_argument(
        "--parts",
        type=_parts,
        default=DEFAULT_PARTS,
        metavar="PART,...",
        help=f"parts to run, of {','.join(PARTS)} (default: {','.join(DEFAULT_PARTS)})",
    )
    parser.add_argument(
        "--wrk-seconds",
        type=positive_int,
        default=5,
        metavar="S",
        help="seconds per wrk run (default: %(default)s)",
    )
    parser.add_argument(
        "--wrk-clients",
        type=positive_int,
        default=50,
        metavar="C",
        help="wrk connections (default: %(default)s)",
    )
    parser.add_argument(
        "--cold-size-mib",
        type=positive_int,
        default=256,
        metavar="MIB",
        help="the cold part's file size in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--json", dest="json_path", metavar="PATH", help="also save everything measured as JSON"
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="where the files go (default: the temporary folder; must be a disk, "
        "not tmpfs, for the cold part)",
    )
    parser.set_defaults(run=_run)  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    options = Options(
        size_mib=args.size_mib,
        rounds=args.rounds,
        parts=args.parts,
        wrk_seconds=args.wrk_seconds,
        wrk_clients=args.wrk_clients,
        cold_size_mib=args.cold_size_mib,
        json_path=args.json_path,
        workdir=args.workdir,
    )
    return run_sendfile(options, command=args.command_line)
