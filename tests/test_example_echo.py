"""examples/echo_server.py: bytes come back whole and in order, a vanished client
is shrugged off, and the script itself serves and stops on Ctrl-C."""

from __future__ import annotations

import random
import signal
import socket
import struct
import subprocess
import sys
from functools import partial

import trio
from script_testing import EXAMPLES, load_script
from stream_testing import receive_all

ECHO_SERVER = EXAMPLES / "echo_server.py"

echo_server = load_script(ECHO_SERVER, "echo_server_example")


async def _receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        data = await stream.receive_some(size - len(received))
        assert data, f"end of stream after {len(received)} of {size} bytes"
        received += data
    return bytes(received)


async def test_each_client_gets_its_own_bytes_back_in_order() -> None:
    rng = random.Random(7)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(echo_server.serve, 0)

            async def converse(number: int) -> None:
                async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                    for size in [1, 10, 1000, 70_000, 5]:
                        message = bytes([number]) * size
                        await client.send_all(message)
                        assert await _receive_exactly(client, size) == message

            async with trio.open_nursery() as clients:
                for number in rng.sample(range(256), 5):
                    clients.start_soon(converse, number)
            nursery.cancel_scope.cancel()


async def test_a_big_upload_read_concurrently_comes_back_whole() -> None:
    # Several megabytes: well past the writer's high-water mark, so the server
    # waits in drain() (and stops reading) whenever this client lags behind.
    payload = random.Random(1).randbytes(8 * 1024 * 1024)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(echo_server.serve, 0)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:

                async def upload() -> None:
                    with memoryview(payload) as view:
                        for start in range(0, len(payload), 100_000):
                            await client.send_all(view[start : start + 100_000])
                    # Half-close: the server's loop ends, and leaving its
                    # block flushes what is still queued before closing.
                    await client.send_eof()

                async with trio.open_nursery() as transfer:
                    transfer.start_soon(upload)
                    assert await receive_all(client) == payload
            nursery.cancel_scope.cancel()


async def test_a_client_that_resets_the_connection_ends_its_handler_quietly() -> None:
    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with listeners[0]:
            port = listeners[0].socket.getsockname()[1]
            client = await trio.open_tcp_stream("127.0.0.1", port)
            server_side = await listeners[0].accept()
            await client.send_all(b"x" * 65536)
            # Close with a reset instead of a FIN, leaving the echo unread.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await client.aclose()
            # The handler sees BrokenResourceError (on its send or its
            # receive) and returns: serve_tcp would crash on an exception.
            await echo_server.echo(server_side)


async def _read_port(stdout: trio.abc.ReceiveStream) -> int:
    output = b""
    while not output.endswith(b"\n"):
        data = await stdout.receive_some()
        assert data, "the script ended before printing its port"
        output += data
    return int(output)


async def test_the_script_prints_its_port_echoes_and_stops_on_ctrl_c() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                partial(
                    trio.run_process,
                    [sys.executable, str(ECHO_SERVER), "--port", "0"],
                    stdout=subprocess.PIPE,
                    check=False,
                )
            )
            async with process.stdout:
                port = await _read_port(process.stdout)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(b"hello, echo\n")
                assert await _receive_exactly(client, 12) == b"hello, echo\n"
                process.send_signal(signal.SIGINT)
                # Shutting down closes the connection.
                assert await receive_all(client) == b""
            assert await process.wait() == 0
