"""examples/resp_server.py: redis-py's commands and pipelines, error replies, the
decoder on partial and malformed input, and the script itself."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import pytest
import redis
import trio
from hypothesis import given
from hypothesis import strategies as st
from script_testing import EXAMPLES, load_script
from stream_testing import receive_all
from test_reads import ChunkSource, cut

from trio_bufwriter import BufferedReader, IncompleteReadError

RESP_SERVER = EXAMPLES / "resp_server.py"

T = TypeVar("T")

resp = load_script(RESP_SERVER, "resp_server_example")


async def _serve(nursery: trio.Nursery, server: Any) -> int:
    port: int = await nursery.start(partial(resp.serve, 0, server=server))
    return port


async def _with_redis(port: int, use: Callable[[redis.Redis], T]) -> T:
    """Run *use* with a redis-py client connected to *port*, in a thread: the
    client blocks, and the server runs in this trio run meanwhile."""

    def run() -> T:
        # protocol=2: the server speaks RESP2, redis-py 8 asks for RESP3.
        # socket_timeout: a server that never answers fails the test rather
        # than leaving the thread stuck (a thread cannot be cancelled).
        with redis.Redis(host="127.0.0.1", port=port, protocol=2, socket_timeout=10) as client:
            return use(client)

    return await trio.to_thread.run_sync(run)


async def _receive_until(stream: trio.abc.ReceiveStream, expected: bytes) -> bytes:
    received = b""
    while len(received) < len(expected):
        data = await stream.receive_some()
        assert data, f"end of stream after {received!r}"
        received += data
    return received


async def test_single_commands_from_redis_py_get_redis_replies() -> None:
    server = resp.RespServer()
    big = bytes(range(256)) * 4096  # 1 MiB, every byte value (and CRLFs) in it

    def use(client: redis.Redis) -> None:
        assert client.ping() is True
        assert client.echo(b"hi\r\nthere") == b"hi\r\nthere"
        assert client.get("missing") is None
        assert client.set("greeting", "hello") is True
        assert client.get("greeting") == b"hello"
        assert client.set("greeting", b"") is True
        assert client.get("greeting") == b""
        assert client.set("big", big) is True
        assert client.get("big") == big
        assert client.exists("greeting", "big", "missing") == 2
        assert client.dbsize() == 2
        assert client.delete("greeting", "missing") == 1
        assert client.get("greeting") is None

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            await _with_redis(port, use)
            nursery.cancel_scope.cancel()
    assert server.data == {b"big": big}
    assert server.connections == 1


async def test_a_pipeline_of_a_thousand_sets_then_gets_gets_every_reply_in_order() -> None:
    server = resp.RespServer()
    count = 1000

    def use(client: redis.Redis) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for i in range(count):
            pipe.set(f"key:{i}", f"value {i}")
        for i in range(count):
            pipe.get(f"key:{i}")
        pipe.get("key:missing")
        return pipe.execute()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            results = await _with_redis(port, use)
            nursery.cancel_scope.cancel()
    assert results[:count] == [True] * count
    assert results[count:] == [b"value %d" % i for i in range(count)] + [None]
    assert len(server.data) == count


async def test_the_replies_to_a_pipeline_go_out_in_a_few_sends() -> None:
    class CountingServer(resp.RespServer):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.statistics: list[Any] = []
            self.served = trio.Event()

        async def serve_connection(self, conn: Any) -> None:
            await super().serve_connection(conn)
            self.statistics.append(conn.statistics())
            self.served.set()

    def use(client: redis.Redis) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for i in range(1000):
            pipe.set(f"key:{i}", "value")
        return pipe.execute()

    server = CountingServer()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            assert await _with_redis(port, use) == [True] * 1000
            # The client has closed the connection: wait for the handler to see it.
            await server.served.wait()
            nursery.cancel_scope.cancel()
    [statistics] = server.statistics
    # One write per reply (plus redis-py's CLIENT SETINFO calls on connect),
    # but each batch that arrived in one receive went out in one or two sends.
    assert statistics.write_calls >= 1000
    assert statistics.send_calls <= 50, statistics


async def test_unknown_commands_and_wrong_arities_are_errors_and_the_connection_lives_on() -> None:
    def use(client: redis.Redis) -> list[Any]:
        with pytest.raises(redis.ResponseError, match=r"^unknown command 'NOSUCH', with args"):
            client.execute_command("NOSUCH", "a", "b")
        with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get'"):
            client.execute_command("GET")
        with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'set'"):
            client.execute_command("SET", "k", "v", "EX", "10")
        # Command names are case-insensitive.
        assert client.execute_command("set", "k", "v") is True
        # In a pipeline, each error takes its command's place.
        pipe = client.pipeline(transaction=False)
        pipe.get("k")
        pipe.execute_command("FLY")
        pipe.ping()
        return pipe.execute(raise_on_error=False)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, resp.RespServer())
            first, error, pong = await _with_redis(port, use)
            nursery.cancel_scope.cancel()
    assert (first, pong) == (b"v", True)
    assert isinstance(error, redis.ResponseError)
    assert str(error).startswith("unknown command 'FLY'")


async def test_a_client_asking_for_resp3_is_told_to_use_resp2() -> None:
    def use() -> None:
        with (
            redis.Redis(host="127.0.0.1", port=port, protocol=3, socket_timeout=10) as client,
            pytest.raises(redis.ResponseError, match=r"^NOPROTO .* pass protocol=2"),
        ):
            client.ping()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, resp.RespServer())
            await trio.to_thread.run_sync(use)
            # HELLO 2 (or none) is answered with the server's details.
            hello = await _with_redis(port, lambda client: client.execute_command("HELLO", 2))
            nursery.cancel_scope.cancel()
    assert hello[:4] == [b"server", b"trio_bufwriter-example", b"proto", 2]


async def test_inline_and_resp_commands_sent_together_are_answered_in_order() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, resp.RespServer())
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(
                    b"PING\r\n"
                    b"\r\n"  # an empty line: ignored
                    b"set  k  inline\n"
                    b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                    b"*0\r\n"  # an empty command: ignored
                    b"ping hello\r\n"
                    b"GET nothing\r\n"
                )
                expected = b"+PONG\r\n+OK\r\n$6\r\ninline\r\n$5\r\nhello\r\n$-1\r\n"
                assert await _receive_until(client, expected) == expected
            nursery.cancel_scope.cancel()


async def test_a_protocol_error_is_answered_and_the_connection_closed() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, resp.RespServer())
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(b"PING\r\n*1\r\n$x\r\nPING\r\n")
                received = await receive_all(client)
            nursery.cancel_scope.cancel()
    # The reply to what came before, the error, then the end: nothing after
    # the error is executed.
    assert received == b"+PONG\r\n-ERR Protocol error: invalid bulk length b'x'\r\n"


async def test_a_client_that_leaves_in_the_middle_of_a_command_leaves_the_server_serving() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, resp.RespServer())
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(b"PING\r\n*2\r\n$3\r\nGET\r\n")
                await client.send_eof()
                assert await receive_all(client) == b"+PONG\r\n"
            assert await _with_redis(port, lambda client: client.ping()) is True
            nursery.cancel_scope.cancel()


async def _decode(chunks: list[bytes]) -> list[list[bytes]]:
    """What parse_command parses from *chunks*, received one by one."""
    commands = []
    with trio.fail_after(10):
        async with BufferedReader(ChunkSource(chunks)) as reader:
            while batch := await reader.receive_parsed(resp.parse_command, resp.MAX_COMMAND):
                commands += batch
    return commands


async def test_the_decoder_waits_for_the_rest_of_a_command_split_anywhere() -> None:
    command = b"*3\r\n$3\r\nSET\r\n$4\r\nk\r\ny\r\n$0\r\n\r\n"
    tail = b"PING\r\n"
    for at in range(1, len(command)):
        decoded = await _decode([command[:at], command[at:] + tail])
        assert decoded == [[b"SET", b"k\r\ny", b""], [b"PING"]], at


def _encode(arguments: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(arguments)]
    parts += [b"$%d\r\n%b\r\n" % (len(argument), argument) for argument in arguments]
    return b"".join(parts)


@given(
    commands=st.lists(st.lists(st.binary(max_size=40), max_size=5), max_size=10),
    sizes=st.lists(st.integers(1, 30), max_size=5),
)
def test_any_chunking_of_a_command_stream_gives_the_same_commands(
    commands: list[list[bytes]], sizes: list[int]
) -> None:
    stream = b"".join(map(_encode, commands))
    assert trio.run(_decode, cut(stream, sizes)) == commands


async def test_a_big_value_in_small_pieces_is_parsed_when_it_is_all_there() -> None:
    calls = []

    def counting(data: bytes, start: int) -> Any:
        calls.append(len(data) - start)
        return resp.parse_command(data, start)

    value = bytes(range(256)) * 40
    command = _encode([b"SET", b"k", value])
    with trio.fail_after(10):
        async with BufferedReader(ChunkSource(cut(command, [100]))) as reader:
            assert await reader.receive_parsed(counting, resp.MAX_COMMAND) == [
                [b"SET", b"k", value]
            ]
    # Until the value's header came, then once when the command was all there.
    assert calls == [100, len(command)]


async def test_a_command_over_the_limit_is_answered_with_an_error_and_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resp, "MAX_COMMAND", 100)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, resp.RespServer())
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                # (Only the start: what the server does not read, it would
                # answer with a reset on closing.)
                await client.send_all(b"PING\r\n" + _encode([b"SET", b"k", b"v" * 200])[:30])
                received = await receive_all(client)
            nursery.cancel_scope.cancel()
    assert received == b"+PONG\r\n-ERR Protocol error: a command over 100 bytes\r\n"


async def test_a_command_cut_short_by_the_end_of_the_stream_is_an_incomplete_read() -> None:
    with pytest.raises(IncompleteReadError) as caught:
        await _decode([b"PING\r\n*2\r\n$3\r\nGET\r\n"])
    assert caught.value.partial == b"*2\r\n$3\r\nGET\r\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*x\r\n", "invalid multibulk length b'x'"),
        (b"*+1\r\n", "invalid multibulk length b'+1'"),
        (b"*9999999999\r\n", "invalid multibulk length 9999999999"),
        (b"*1\r\n+OK\r\n", "expected '$', got '+'"),
        (b"*1\r\n$-1\r\n", "invalid bulk length -1"),
        (b"*1\r\n$1\r\nab\r\n", "bulk string not followed by CRLF"),
        (b"*1\r\n$99999999999\r\n", "invalid bulk length 99999999999"),
        (b"*" + b"1" * (64 * 1024 + 1), "too big multibulk count"),
        (b"*1\r\n$" + b"1" * (64 * 1024), "too big bulk length"),
        (b"*1\r\n$" + b"1" * (64 * 1024) + b"\r\n", "too big bulk length"),
        (b"*" + b"1" * (64 * 1024) + b"\r\n", "too big multibulk count"),
        (b"x" * (64 * 1024 + 1), "too big inline request"),
    ],
)
async def test_the_decoder_rejects_what_is_not_resp(data: bytes, message: str) -> None:
    with pytest.raises(resp.ProtocolError) as caught:
        await _decode([data])
    assert str(caught.value) == message


def test_an_array_line_ends_in_crlf_as_in_redis_and_an_inline_one_may_end_in_lf() -> None:
    # A bare b"\n" does not end a line of an array: the command is not all there.
    assert resp.parse_command(b"*1\n$4\nPING\n", 0) is None
    assert resp.parse_command(b"*1\r\n$4\r\nPING\r\n", 0) == ([b"PING"], 14)
    assert resp.parse_command(b"PING\n", 0) == ([b"PING"], 5)


async def test_the_script_prints_its_port_serves_and_stops_on_ctrl_c() -> None:
    def use(client: redis.Redis) -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.set("language", "python").incr("nope").get("language")
        return client.ping(), pipe.execute(raise_on_error=False)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                partial(
                    trio.run_process,
                    [sys.executable, str(RESP_SERVER), "--port", "0"],
                    stdout=subprocess.PIPE,
                    check=False,
                )
            )
            async with process.stdout:
                output = b""
                while not output.endswith(b"\n"):
                    data = await process.stdout.receive_some()
                    assert data, "the script ended before printing its port"
                    output += data
            pong, (ok, error, value) = await _with_redis(int(output), use)
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
    assert (pong, ok, value) == (True, True, b"python")
    assert isinstance(error, redis.ResponseError)
