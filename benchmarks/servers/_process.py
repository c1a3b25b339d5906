"""Server processes: start one, know when it is ready, read its CPU time, stop it.

A server is ready when it says so on stdout: the Python scripts print their
port as their first line (as the examples do), redis-server logs "Ready to
accept connections".  A thread reads its stdout into a log file, so the
process never blocks on a full pipe; stderr goes to the same log file.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: How long a server may take to become ready, and to stop after SIGTERM.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


class ServerFailed(Exception):
    """A server did not start, or died."""


class ServerDidNotStart(ServerFailed):
    """A server exited, or said nothing, before it was ready."""


def parse_proc_stat(text: str) -> int:
    """The user plus system CPU time, in clock ticks, from a ``/proc/PID/stat`` line.

    The second field, the command name in parentheses, may hold spaces and
    parentheses itself, so the fields are counted from the last ``)``:
    utime and stime are fields 14 and 15 of the line.
    """
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (the state).
    return int(fields[11]) + int(fields[12])


def read_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) used so far by process *pid*,
    or None where ``/proc`` is not there to tell."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return parse_proc_stat(text) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port free right now, for a server that cannot be told ``--port 0``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server process."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def cpu_seconds(self) -> float | None:
        """The CPU time the server has used so far (None off Linux)."""
        return read_cpu_seconds(self.process.pid)

    def check_alive(self) -> None:
        """Raise :class:`ServerFailed` if the server has exited."""
        if self.process.poll() is not None:
            raise ServerFailed(
                f"{self.name} exited with status {self.process.returncode}{log_tail(self.log)}"
            )


def log_tail(log: Path, lines: int = 8) -> str:
    """The last *lines* of a server's log, indented, to quote in an error."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    tail = text.splitlines()[-lines:]
    return "".join(f"\n    | {line}" for line in tail)


def _read_stdout(stdout: IO[bytes], log: IO[bytes], ready: queue.Queue[bytes | None]) -> None:
    """Hand the first line of *stdout* to *ready*, copy every line to *log*,
    and put None on *ready* at end-of-file (the server has exited)."""
    with stdout:
        for line in stdout:
            ready.put(line)
            log.write(line)
            log.flush()
    ready.put(None)


def _wait_ready(name: str, lines: queue.Queue[bytes | None], ready_text: str | None) -> int | None:
    """Wait for the line saying the server is ready; return the port in it, if any.

    Without *ready_text*, the first line must be the port.
    """
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise ServerFailed(f"{name} said nothing for {START_TIMEOUT:g} s") from None
        if line is None:
            raise ServerFailed(f"{name} exited before it was ready")
        text = line.decode(errors="replace").strip()
        if ready_text is None:
            if not text.isdigit():
                raise ServerFailed(f"{name}'s first line is not a port: {text!r}")
            return int(text)
        if ready_text in text:
            return None


@contextmanager
def running_server(
    name: str,
    command: Sequence[str],
    *,
    log: Path,
    env: dict[str, str],
    cwd: Path,
    port: int | None = None,
    ready_text: str | None = None,
) -> Iterator[Server]:
    """Start *command*, wait until it is ready, yield it, and stop it whatever happens.

    With *port* None, the server announces its port on its first stdout line;
    otherwise it listens on *port* and says it is ready with a line holding
    *ready_text*.

    Raises:
      ServerDidNotStart: the server exited, or was not ready in time.
    """
    log.write_bytes(b"")
    # Appending: the server's stderr and the reader thread share the file.
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=log_file, env=env, cwd=cwd,
        )  # fmt: skip
        assert process.stdout is not None
        lines: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(
            target=_read_stdout, args=(process.stdout, log_file, lines), daemon=True
        )
        reader.start()
        try:
            try:
                announced = _wait_ready(name, lines, ready_text)
            except ServerFailed as exc:
                stop(process)
                raise ServerDidNotStart(f"{exc}{log_tail(log)}") from None
            server_port = announced if port is None else port
            assert server_port is not None
            yield Server(name, process, server_port, log)
        finally:
            stop(process)
            reader.join(STOP_TIMEOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop *process*: SIGTERM, then SIGKILL if it has not exited in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
