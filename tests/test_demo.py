"""Smoke tests for ``python -m trio_bufwriter demo`` and its loopback receiver."""

from __future__ import annotations

import io
import socket
import subprocess
import sys

import pytest
import trio

from trio_bufwriter import _demo
from trio_bufwriter.__main__ import main
from trio_bufwriter._loopback import start_receiver


def test_demo_command_runs_and_verifies() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_bufwriter", "demo", "--messages", "2000", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "trio_bufwriter" in line and "send_all" in line)
    assert header.split()[-1] == "ratio"
    rows = {line.split("(median)")[0].strip(): line for line in lines if "(median)" in line}
    assert set(rows) == {"msgs/s", "MB/s"}
    for row in rows.values():
        buffered, plain, ratio = row.split("(median)")[1].split()
        assert float(buffered.replace(",", "")) > 0
        assert float(plain.replace(",", "")) > 0
        assert ratio.endswith("x")
    assert "command:  " in result.stdout
    assert "demo --messages 2000 --repeat 1" in result.stdout
    assert (
        "receiver verified the byte count of all 4 runs (2 timed at 128,000 bytes each"
        in result.stdout
    )
    # Not a terminal: one progress line per run, on stderr.
    assert "trio_bufwriter run 1/1: 2,000 messages in" in result.stderr
    assert "trio send_all run 1/1: 2,000 messages in" in result.stderr


def test_demo_fails_on_a_count_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_one_short(
        stream: trio.SocketStream, message: bytes, count: int, progress: _demo._Progress
    ) -> None:
        for _ in range(count - 1):
            await stream.send_all(message)
        await stream.aclose()

    monkeypatch.setitem(_demo._SENDERS, _demo.SEND_ALL, send_one_short)
    out, err = io.StringIO(), io.StringIO()
    status = _demo.run_demo(100, 10, 1, command="test", out=out, err=err)
    assert status == 1
    assert (
        "error: the receiver got 990 bytes in trio send_all warm-up, expected 1,000 "
        "(100 messages x 10 bytes)" in err.getvalue()
    )
    assert "(median)" not in out.getvalue()


@pytest.mark.parametrize("option", ["--messages", "--size", "--repeat"])
@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_cli_rejects_bad_numbers(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", option, value])
    assert info.value.code == 2
    assert option in capsys.readouterr().err


def test_cli_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "demo" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["bench", "positional-bench", "soak", "fanout", "servers"])
def test_the_labs_commands_say_where_they_moved(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--quick"]) == 2
    err = capsys.readouterr().err
    assert f"'{command}' is part of the measuring lab, which is not installed" in err
    assert err.rstrip().endswith(f"run: python -m benchmarks {command} --quick")


def test_receiver_counts_each_connection() -> None:
    with start_receiver() as receiver:
        for size in [0, 1, 3 * 1024 * 1024 + 7]:
            receiver.expect_connection()
            with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
                sock.sendall(b"\x01" * size)
            assert trio.run(receiver.receive_count) == size


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_in_place_on_a_terminal() -> None:
    terminal = _Terminal()
    progress = _demo._Progress(terminal)
    progress.start_run("m run 1/2", 50_000)
    progress.tick(16_384)  # too soon after start_run's draw: skipped
    progress.end_run(0.5)
    progress.clear()
    text = terminal.getvalue()
    assert "\n" not in text
    assert text.split("\r")[1:] == [
        "m run 1/2: 0/50,000 messages",
        "m run 1/2: 50,000/50,000 messages",
        " " * len("m run 1/2: 50,000/50,000 messages"),
        "",
    ]


def test_progress_is_one_line_per_run_elsewhere() -> None:
    log = io.StringIO()
    progress = _demo._Progress(log)
    progress.start_run("m run 1/2", 50_000)
    progress.tick(16_384)
    progress.end_run(0.5)
    progress.clear()
    assert log.getvalue() == "m run 1/2: 50,000 messages in 0.500 s\n"
