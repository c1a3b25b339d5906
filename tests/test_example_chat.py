"""examples/chat_server.py: delivery in order, a stuck client cut off, the script itself."""

from __future__ import annotations

import io
import signal
import socket
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from script_testing import EXAMPLES, load_script

CHAT_SERVER = EXAMPLES / "chat_server.py"

chat = load_script(CHAT_SERVER, "chat_server_example")


class LineClient:
    """A plain trio TCP client that collects the lines it receives (in a task of its own)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.lines: list[bytes] = []
        self.ended = False
        self._changed = trio.Event()

    @classmethod
    async def connect(cls, port: int, nursery: trio.Nursery) -> LineClient:
        client = cls(await trio.open_tcp_stream("127.0.0.1", port))
        nursery.start_soon(client._read)
        await client.wait_for(lambda lines: len(lines) >= 1)  # the welcome line
        return client

    @property
    def name(self) -> bytes:
        return self.lines[0].removeprefix(b"* welcome, you are ")

    async def _read(self) -> None:
        try:
            async with self.stream:
                async for line in chat.read_lines(self.stream):
                    self.lines.append(line)
                    self._changed.set()
                    self._changed = trio.Event()
        finally:
            self.ended = True
            self._changed.set()

    async def wait_for(self, predicate: Callable[[list[bytes]], bool]) -> None:
        while not predicate(self.lines):
            assert not self.ended, f"the connection ended; got {self.lines[-5:]}"
            await self._changed.wait()

    async def wait_for_line(self, line: bytes) -> None:
        await self.wait_for(lambda lines: line in lines)

    async def say(self, *lines: bytes) -> None:
        await self.stream.send_all(b"".join(line + b"\n" for line in lines))


async def _close_at_exit(stream: trio.abc.AsyncResource) -> None:
    async with stream:
        await trio.sleep_forever()


async def _serve(nursery: trio.Nursery, server: Any) -> int:
    """Serve *server*'s handler on a free loopback port; return the port."""
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def test_every_line_reaches_every_client_in_the_same_order() -> None:
    log = io.StringIO()
    server = chat.ChatServer(log=log)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            clients = [await LineClient.connect(port, nursery) for _ in range(4)]
            names = [client.name for client in clients]
            assert names == [b"user1", b"user2", b"user3", b"user4"]
            # Everyone is subscribed once the first client has seen the last join.
            await clients[0].wait_for_line(b"* user4 joined")
            rounds = 50
            async with trio.open_nursery() as talkers:
                for client in clients:
                    lines = [client.name + b" says %d" % i for i in range(rounds)]
                    talkers.start_soon(client.say, *lines)
            chat_lines = len(clients) * rounds
            transcripts = []
            for client in clients:
                await client.wait_for(
                    lambda lines: sum(b" says " in line for line in lines) == chat_lines
                )
                transcripts.append([line for line in client.lines if b" says " in line])
            # One order for everyone (broadcast writes to all at once) ...
            assert all(transcript == transcripts[0] for transcript in transcripts)
            # ... which keeps each speaker's own order, prefixed with its name.
            for name in names:
                said = [line for line in transcripts[0] if line.startswith(name + b": ")]
                assert said == [name + b": " + name + b" says %d" % i for i in range(rounds)]
            server.closing = True
            nursery.cancel_scope.cancel()
    assert "dropped" not in log.getvalue()


async def test_a_client_that_never_reads_is_cut_off_and_the_others_carry_on() -> None:
    log = io.StringIO()
    max_buffer = 256 * 1024
    server = chat.ChatServer(max_buffer=max_buffer, log=log)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            first = await LineClient.connect(port, nursery)
            # The stuck client: a small receive buffer, and it never reads.
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await sock.connect(("127.0.0.1", port))
            stuck = trio.SocketStream(sock)
            nursery.start_soon(_close_at_exit, stuck)
            await first.wait_for_line(b"* user2 joined")
            others = [first, await LineClient.connect(port, nursery)]
            flooder = others[1]
            # Flood until the server gives up on the stuck client: the kernel
            # holds about 1 MiB for it (the writer's TCP_NOTSENT_LOWAT), the
            # writer max_buffer more.
            line = b"x" * 1000
            sent = 0
            while b"* user2 left" not in first.lines:
                await flooder.say(*[line] * 64)
                sent += 64
                assert sent < 20_000, "the stuck client was never cut off"
            assert "dropped user2: too far behind (a write of" in log.getvalue()
            assert f"over max_buffer={max_buffer})" in log.getvalue()
            # The stuck client gets what had reached its socket, then the end.
            received = bytearray()
            try:
                while data := await stuck.receive_some():
                    received += data
            except trio.BrokenResourceError:  # pragma: no cover - a reset, not a FIN
                pass
            got = received.split(b"\n")[:-1]  # the last one may have been cut short
            assert got[:2] == [b"* welcome, you are user2", b"* user2 joined"]
            start = first.lines.index(b"* user2 joined")
            assert got[1:] == first.lines[start : start + len(got) - 1]
            assert len(received) < sent * len(line)
            # The others got every line, and still talk.
            await first.say(b"still here")
            for client in others:
                await client.wait_for_line(b"user1: still here")
                assert client.lines.count(b"user3: " + line) == sent
            assert server.hub.statistics().dropped == 1
            assert len(server.hub) == 2
            server.closing = True
            nursery.cancel_scope.cancel()
    assert log.getvalue().count("dropped") == 1
    assert "user2 disconnected (ClosedResourceError)" in log.getvalue()


async def test_a_stalled_client_is_cut_off_by_its_stall_timeout_and_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The stall clock runs while a send that started over high water takes
    # nothing; it closes the connection even though nobody talks after that,
    # and the "left" notice is the broadcast that reports the drop.
    log = io.StringIO()
    server = chat.ChatServer(log=log, stall_timeout=5)
    server_side, client_side = trio.testing.lockstep_stream_pair()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            # (The block ends when handle() does.)
            nursery.start_soon(server.handle, server_side)
            received = b""
            while received.count(b"\n") < 2:
                received += await client_side.receive_some()
            assert received == b"* welcome, you are user1\n* user1 joined\n"
            server.publish(b"x" * 100_000 + b"\n")  # over high water, and never read
            start = trio.current_time()
        assert trio.current_time() - start == pytest.approx(5)
    text = log.getvalue()
    assert "dropped user1: stopped reading (over high water (65536 bytes) with nothing" in text
    assert "user1 disconnected (ClosedResourceError)" in text
    assert len(server.hub) == 0
    assert server.hub.statistics().dropped == 1


def test_describe_names_the_limit() -> None:
    from trio_bufwriter import BufferLimitError, StallTimeoutError

    def broken(cause: BaseException) -> trio.BrokenResourceError:
        error = trio.BrokenResourceError("aborted")
        error.__cause__ = cause
        return error

    assert chat.describe(broken(BufferLimitError("over"))) == "too far behind (over)"
    assert chat.describe(broken(StallTimeoutError("stuck"))) == "stopped reading (stuck)"
    assert chat.describe(broken(ConnectionResetError(104, "reset"))) == (
        "its connection failed (ConnectionResetError(104, 'reset'))"
    )
    assert chat.describe(trio.ClosedResourceError("closed")).startswith("its connection failed")


async def test_read_lines_splits_cuts_and_ends() -> None:
    send, receive = trio.testing.memory_stream_pair()
    await send.send_all(b"one\r\ntw")
    await send.send_all(b"o\n\nabcdefghij")
    await send.send_all(b"klm\nlast")
    await send.send_eof()
    with trio.fail_after(5):
        lines = [line async for line in chat.read_lines(receive, max_line=4)]
    assert lines == [b"one", b"two", b"", b"abcd", b"efgh", b"ijkl", b"m", b"last"]


async def test_the_script_prints_its_port_serves_and_stops_on_ctrl_c() -> None:
    with trio.fail_after(20):
        process = await trio.lowlevel.open_process(
            [sys.executable, str(CHAT_SERVER), "--port", "0"],
            stdout=-1,
            stderr=-1,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            output = b""
            while not output.endswith(b"\n"):
                data = await process.stdout.receive_some()
                assert data, "the script ended before printing its port"
                output += data
            port = int(output)
            async with trio.open_nursery() as nursery:
                one = await LineClient.connect(port, nursery)
                two = await LineClient.connect(port, nursery)
                await one.wait_for_line(b"* user2 joined")
                await two.say(b"hello")
                await one.wait_for_line(b"user2: hello")
                process.send_signal(signal.SIGINT)
                # Shutting down closes every connection.
                await one.wait_for(lambda _: one.ended)
                await two.wait_for(lambda _: two.ended)
            assert await process.wait() == 0
            log = b""
            while data := await process.stderr.receive_some():
                log += data
        finally:
            if process.returncode is None:  # pragma: no cover - only if a check failed
                process.kill()
                await process.wait()
    text = log.decode()
    assert f"chat server on 127.0.0.1:{port}" in text
    assert "SIGINT: shutting down" in text
    assert text.rstrip().endswith("bye")


@pytest.mark.parametrize("argv", [["--port", "0", "--max-buffer", "1000", "--stall-timeout", "2"]])
def test_the_script_takes_its_limits_from_the_command_line(argv: list[str]) -> None:
    args = chat._parse(argv)
    assert (args.port, args.max_buffer, args.stall_timeout) == (0, 1000, 2.0)
