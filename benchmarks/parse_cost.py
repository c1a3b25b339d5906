"""What parsing a pipelined RESP command costs, in CPU instructions: the
library's two decoder paths against hand-written parsers.

``python -m benchmarks.parse_cost`` runs, for each method, this module under
``valgrind --tool=callgrind`` twice, decoding *N* commands and 0 commands,
and prints ``(instructions(N) - instructions(0)) / N``: instructions per
command, whatever else the machine is doing (a timer would measure the
other processes too).  ``python -m benchmarks.parse_cost --run METHOD N``
is one such run, without valgrind (it prints the commands it decoded).

The commands are redis-benchmark's ``SET key:<12 digits> xxx``, 16 per
receive, handed out by an in-memory trio stream with one checkpoint per
receive.  The methods:

* ``source``: receive and drop the bytes: the stream's own cost, which the
  others include (subtract it to compare parsers alone);
* ``hand-bytearray``: a careful hand parser over a ``bytearray`` (``+=``
  each receive, ``del`` what was parsed, ``bytes()`` of each argument);
* ``hand-bytes``: the ``bufwriter-hand`` server's parser
  (``benchmarks/servers/resp_bufwriter_hand.py``) over ``bytes``;
* ``frames``: ``receive_frames(read_command)``, the example's decoder before
  ``receive_parsed`` (kept here for the comparison);
* ``parsed``: ``receive_parsed(parse_command)``, what the example now uses;
* ``parsed-hand``: ``receive_parsed`` with ``hand-bytes``' parser cut to
  one command (:func:`parse_one`): the library's own part, per frame.

``python -m benchmarks.parse_cost --servers`` counts whole requests
instead: the RESP example's ``serve_connection`` and ``bufwriter-hand``'s
(:data:`SERVERS`), each on a ``BufferedStream`` over loopback TCP, with a
client in the same run sending ``-P`` pipelined ``SET`` commands per round
(``--server-run NAME N P`` is one such run, without valgrind).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from trio_bufwriter import (
    BufferedReader,
    DelimiterNotFoundError,
    FrameReader,
    open_buffered_stream,
)

from .servers import resp_bufwriter_hand
from .servers._serving import load_example

METHODS = ("source", "hand-bytearray", "hand-bytes", "frames", "parsed", "parsed-hand")
SERVERS = ("example", "hand")
PER_RECEIVE = 16
RECEIVE_SIZE = 64 * 1024

resp = load_example("resp_server")


def set_command(i: int) -> bytes:
    """redis-benchmark's ``SET key:__rand_int__ xxx``."""
    key = b"key:%012d" % i
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$3\r\nxxx\r\n" % (len(key), key)


def chunks(count: int) -> list[bytes]:
    """*count* commands, 16 per chunk."""
    commands = [set_command(i) for i in range(count)]
    return [b"".join(commands[i : i + PER_RECEIVE]) for i in range(0, count, PER_RECEIVE)]


class Source(trio.abc.ReceiveStream):
    """Hands out its chunks, one per receive, each a checkpoint; then b""."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks[::-1]

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        return self._chunks.pop() if self._chunks else b""

    async def aclose(self) -> None:
        pass


def read_command(frame: FrameReader) -> list[bytes]:
    """The example's decoder for ``receive_frames``, as it was (same checks)."""
    try:
        line = frame.read_line(resp.MAX_LINE)
    except DelimiterNotFoundError:
        kind = "multibulk count" if frame.read_exactly(1) == b"*" else "inline request"
        raise resp.ProtocolError(f"too big {kind}") from None
    if line[:1] != b"*":
        return line.split()
    arguments = []
    for _ in range(resp._parse_length(line[1:], resp.MAX_ARGUMENTS, "multibulk")):
        try:
            header = frame.read_line(resp.MAX_LINE)
        except DelimiterNotFoundError:
            raise resp.ProtocolError("too big bulk length") from None
        digits = header[1:]
        if header[:1] != b"$" or not digits.isdigit():
            resp._bad_bulk_header(header)
        size = int(digits)
        if size > resp.MAX_BULK:
            raise resp.ProtocolError(f"invalid bulk length {size}")
        value = frame.read_exactly(size + 2)
        if value[size:] != b"\r\n":
            raise resp.ProtocolError("bulk string not followed by CRLF")
        arguments.append(value[:size])
    return arguments


def parse_bytearray(buf: bytearray) -> list[list[bytes]]:
    """Every complete command in *buf*, which loses their bytes."""
    commands = []
    pos = 0
    size = len(buf)
    while pos < size:
        start = pos
        end = buf.find(b"\r\n", pos)
        if end < 0:
            break
        if buf[pos] != 42:  # b"*"
            raise ValueError("expected '*'")
        count = int(buf[pos + 1 : end])
        pos = end + 2
        arguments = []
        for _ in range(count):
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            if buf[pos] != 36:  # b"$"
                raise ValueError("expected '$'")
            length = int(buf[pos + 1 : end])
            pos = end + 2 + length
            if pos + 2 > size:
                break
            if buf[pos : pos + 2] != b"\r\n":
                raise ValueError("bulk string not followed by CRLF")
            arguments.append(bytes(buf[end + 2 : pos]))
            pos += 2
        else:
            commands.append(arguments)
            continue
        pos = start
        break
    del buf[:pos]
    return commands


def parse_one(data: bytes, pos: int) -> tuple[list[bytes], int] | None:
    """``bufwriter-hand``'s parser cut to one command, for ``receive_parsed``:
    the library's own cost per frame is ``parsed-hand`` less ``hand-bytes``."""
    end = data.find(b"\r\n", pos)
    if end < 0:
        return None
    if data[pos] != 42:  # b"*"
        raise ValueError("expected '*'")
    count = int(data[pos + 1 : end])
    pos = end + 2
    size = len(data)
    arguments = []
    for _ in range(count):
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        if data[pos] != 36:  # b"$"
            raise ValueError("expected '$'")
        length = int(data[pos + 1 : end])
        pos = end + 2 + length
        if pos + 2 > size:
            return None
        if data[pos : pos + 2] != b"\r\n":
            raise ValueError("bulk string not followed by CRLF")
        arguments.append(data[end + 2 : pos])
        pos += 2
    return arguments, pos


async def run(method: str, count: int) -> list[list[bytes]]:
    """Decode *count* commands with *method*; return them (none for ``source``)."""
    source = Source(chunks(count))
    found: list[list[bytes]] = []
    if method == "source":
        while await source.receive_some(RECEIVE_SIZE):
            pass
    elif method == "hand-bytearray":
        buf = bytearray()
        while chunk := await source.receive_some(RECEIVE_SIZE):
            buf += chunk
            found += parse_bytearray(buf)
    elif method == "hand-bytes":
        pending = b""
        parse = resp_bufwriter_hand.parse_commands
        while chunk := await source.receive_some(RECEIVE_SIZE):
            data = pending + chunk if pending else chunk
            commands, pos = parse(data, 0)
            found += commands
            pending = data[pos:]
    elif method == "frames":
        reader = BufferedReader(source)
        while commands := await reader.receive_frames(read_command):
            found += commands
    elif method == "parsed":
        reader = BufferedReader(source)
        parse_command: Callable[[bytes, int], Any] = resp.parse_command
        while commands := await reader.receive_parsed(parse_command, resp.MAX_COMMAND):
            found += commands
    elif method == "parsed-hand":
        reader = BufferedReader(source)
        while commands := await reader.receive_parsed(parse_one):
            found += commands
    else:
        raise ValueError(f"no method {method!r}")
    return found


async def serve_pipelined(server: str, rounds: int, pipeline: int) -> int:
    """*rounds* rounds of *pipeline* ``SET`` commands answered by *server* (of
    :data:`SERVERS`) over loopback TCP; return the reply bytes received."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        client_socket = socket.create_connection(listener.getsockname())
        server_socket, _ = listener.accept()
    server_stream = trio.SocketStream(trio.socket.from_stdlib_socket(server_socket))
    client = trio.SocketStream(trio.socket.from_stdlib_socket(client_socket))
    store = resp.RespServer()
    request = set_command(0) * pipeline
    expect = len(b"+OK\r\n") * pipeline
    received = 0
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            async with open_buffered_stream(server_stream) as conn:
                if server == "example":
                    await store.serve_connection(conn)
                else:
                    await resp_bufwriter_hand.serve_connection(conn, store.execute)

        if server not in SERVERS:
            raise ValueError(f"no server {server!r}")
        nursery.start_soon(serve)
        for _ in range(rounds):
            await client.send_all(request)
            got = 0
            while got < expect:
                got += len(await client.receive_some(65536))
            received += got
        await client.aclose()
    return received


def instructions(method: str, count: int, *, pipeline: int | None = None) -> int:
    """callgrind's instruction count for one ``--run METHOD COUNT`` (or,
    with *pipeline*, one ``--server-run METHOD ROUNDS PIPELINE``)."""
    if pipeline is None:
        arguments = ["--run", method, str(count)]
    else:
        arguments = ["--server-run", method, str(count // pipeline), str(pipeline)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, "-m", "benchmarks.parse_cost", *arguments,
            ],
            check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
        text = out.read_text()
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    assert match is not None, "no totals in callgrind's output"
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, metavar=("METHOD", "N"), help="one run, no valgrind")
    parser.add_argument("--count", type=int, default=16_000, help="commands (default 16000)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument(
        "--servers", action="store_true", help="whole requests: the example against bufwriter-hand"
    )
    parser.add_argument(
        "--server-run", nargs=3, metavar=("SERVER", "ROUNDS", "P"), help="one run, no valgrind"
    )
    args = parser.parse_args(argv)
    if args.server_run:
        name, rounds, pipeline = args.server_run
        print(trio.run(serve_pipelined, name, int(rounds), int(pipeline)))
        return 0
    if args.servers:
        print(f"instructions per request, {args.count} SETs, server and client (callgrind)")
        for pipeline in (1, 16):
            for name in SERVERS:
                count = args.count // pipeline * pipeline
                total = instructions(name, count, pipeline=pipeline)
                cost = (total - instructions(name, 0, pipeline=pipeline)) / count
                print(f"-P{pipeline:<3} {name:10} {cost:10,.0f}")
        return 0
    if args.run:
        method, count = args.run[0], int(args.run[1])
        found = trio.run(run, method, count)
        print(len(found))
        return 0
    print(f"instructions per command, {args.count} SETs, {PER_RECEIVE} per receive (callgrind)")
    for method in args.methods.split(","):
        cost = (instructions(method, args.count) - instructions(method, 0)) / args.count
        print(f"{method:16} {cost:10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
