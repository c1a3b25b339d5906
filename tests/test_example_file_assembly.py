"""examples/file_assembly.py: pieces from loopback peers, assembled with a PositionalWriter."""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
from pathlib import Path

import pytest
import trio
from script_testing import EXAMPLES, load_script

FILE_ASSEMBLY = EXAMPLES / "file_assembly.py"
KiB = 1024
MiB = 1024 * KiB
#: A final short piece, too.
SOURCE_SIZE = 2 * MiB + 1000
#: A progress line: "  1,024/1,024 pieces ...".
PROGRESS = re.compile(r"^\s*([\d,]+)/([\d,]+) pieces .* MB/s", re.MULTILINE)


example = load_script(FILE_ASSEMBLY, "file_assembly_example")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(os.urandom(SOURCE_SIZE))
    return path


def _progress_lines(text: str) -> list[tuple[int, int]]:
    return [
        (int(done.replace(",", "")), int(total.replace(",", "")))
        for done, total in PROGRESS.findall(text)
    ]


async def test_the_file_is_assembled_exactly(source: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "assembled.bin"
    out = io.StringIO()
    settings = example.Settings(
        piece=16 * KiB, peers=3, connections=5, max_delay=0.0005, progress=0.01, seed=1
    )
    with trio.fail_after(30):
        ok = await example.assemble(str(source), str(out_path), settings, out)
    text = out.getvalue()
    assert ok, text
    expected = source.read_bytes()
    assert out_path.read_bytes() == expected
    digest = hashlib.sha256(expected).hexdigest()
    assert f"SHA-256 ok: {digest}" in text
    pieces = -(-SOURCE_SIZE // (16 * KiB))
    # The last progress line is printed when every piece is in.
    progress = _progress_lines(text)
    assert progress, text
    assert progress[-1] == (pieces, pieces)
    assert all(total == pieces and 0 <= done <= pieces for done, total in progress)
    served = re.search(r"pieces served: (.*)", text)
    assert served is not None
    counts = [int(part.split()[1]) for part in served.group(1).split(", ")]
    assert len(counts) == 3
    assert sum(counts) == pieces
    # One write_at per chunk received: at least one per piece.
    calls = re.search(r"writer: ([\d,]+) write_at calls, ([\d,]+) bytes", text)
    assert calls is not None
    assert int(calls.group(1).replace(",", "")) >= pieces
    assert int(calls.group(2).replace(",", "")) == SOURCE_SIZE


async def test_a_wrong_digest_fails(source: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    with trio.fail_after(30):
        ok = await example.assemble(
            str(source),
            str(tmp_path / "out.bin"),
            example.Settings(max_delay=0, connections=2, seed=2),
            out,
            expected_sha256="0" * 64,
        )
    assert not ok
    assert "SHA-256 MISMATCH" in out.getvalue()


async def test_a_peer_serves_ranges_and_hangs_up_on_bad_requests() -> None:
    data = bytes(range(256)) * 4
    peer = example.Peer("p", data, 0.0, example.random.Random(0))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await example.start_peer(nursery, peer)
            for bad in (b"nonsense\n", b"1000 100\n", b"-1 5\n", b"0 0\n", b"x" * 100):
                async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                    await stream.send_all(b"10 3\n" + bad)
                    received = b""
                    while chunk := await stream.receive_some():
                        received += chunk
                    # The good request was answered, then the peer hung up.
                    assert received == data[10:13]
            nursery.cancel_scope.cancel()
    assert peer.pieces_served == 5


async def test_a_short_answer_is_an_error() -> None:
    async def hang_up_early(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some()
            await stream.send_all(b"abc")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, hang_up_early, 0)
            port = listeners[0].socket.getsockname()[1]
            written: list[tuple[int, bytes]] = []

            class Recorder:
                def write_at(self, offset: int, data: bytes) -> None:
                    written.append((offset, data))

                async def drain(self) -> None:
                    raise AssertionError("not reached")

            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                with pytest.raises(example.FetchError, match="7 bytes short at 100"):
                    await example.fetch_piece(stream, Recorder(), 100, 10)
            nursery.cancel_scope.cancel()
    assert written == [(100, b"abc")]


async def test_the_script_runs_and_checks_its_result(tmp_path: Path) -> None:
    out_path = tmp_path / "out.bin"
    argv = ["--size-mib", "2", "--peers", "2", "--connections", "4", "--progress", "0.05"]
    with trio.fail_after(60):
        process = await trio.run_process(
            [sys.executable, str(FILE_ASSEMBLY), *argv, "--out", str(out_path)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    stdout = process.stdout.decode()
    assert process.returncode == 0, stdout + process.stderr.decode()
    digest = re.search(r"SHA-256 ok: ([0-9a-f]{64})", stdout)
    assert digest is not None, stdout
    assert hashlib.sha256(out_path.read_bytes()).hexdigest() == digest.group(1)
    assert out_path.stat().st_size == 2 * MiB
    assert _progress_lines(stdout)[-1] == (128, 128)
    assert "from 2 peers over 4 connections" in stdout


def test_a_missing_source_exits_1(tmp_path: Path) -> None:
    out = io.StringIO()
    assert example.main(["--source", str(tmp_path / "missing.bin")], out=out) == 1
    assert out.getvalue().startswith("error: ")


def test_the_command_line_defaults() -> None:
    args = example.parse([])
    assert (args.size_mib, args.piece_kib, args.peers, args.connections) == (64, 16, 4, 8)
    assert (args.out, args.source, args.progress) == (None, None, 0.5)
    with pytest.raises(SystemExit):
        example.parse(["--connections", "0"])
