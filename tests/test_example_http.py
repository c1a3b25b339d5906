"""examples/http_server.py: keep-alive with httpx, pipelined requests answered in
order and coalesced, errors, backpressure, and the script itself."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import h11
import httpx
import pytest
import trio
from script_testing import EXAMPLES, load_script
from stream_testing import receive_all

from trio_bufwriter import DEFAULT_HIGH_WATER

HTTP_SERVER = EXAMPLES / "http_server.py"

http_server = load_script(HTTP_SERVER, "http_server_example")


class EventLog(io.StringIO):
    """A log that can be waited on: the server's per-connection lines land here."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = trio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        self._changed.set()
        self._changed = trio.Event()
        return written

    async def wait_for(self, text: str) -> str:
        """Wait until a line containing *text* was logged; return that line."""
        while True:
            for line in self.getvalue().splitlines():
                if text in line:
                    return line
            await self._changed.wait()


async def _serve(nursery: trio.Nursery, server: Any) -> int:
    port: int = await nursery.start(partial(http_server.serve, 0, server=server))
    return port


def _parse_responses(data: bytes, methods: list[bytes]) -> list[tuple[h11.Response, bytes]]:
    """Parse one response per request method in *methods* out of *data*, in
    order, with h11 as the client; check that the connection then ended."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    client.receive_data(b"")  # the server closed the connection after them
    responses = []
    for method in methods:
        if client.our_state is h11.DONE:
            client.start_next_cycle()
        # h11 needs to know what was asked (a HEAD response has no body).
        client.send(h11.Request(method=method, target="/", headers=[("Host", "test")]))
        client.send(h11.EndOfMessage())
        response = client.next_event()
        assert isinstance(response, h11.Response), response
        body = bytearray()
        while not isinstance(event := client.next_event(), h11.EndOfMessage):
            assert isinstance(event, h11.Data), event
            body += event.data
        responses.append((response, bytes(body)))
    assert client.next_event() == h11.ConnectionClosed()
    return responses


def _header(response: h11.Response, name: bytes) -> bytes | None:
    return dict(response.headers).get(name.lower())


async def test_keep_alive_requests_from_httpx_share_one_connection() -> None:
    log = EventLog()
    server = http_server.HTTPServer(log=log)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                hello = await client.get("/")
                assert (hello.status_code, hello.text) == (200, "Hello, world!\n")
                assert hello.headers["content-type"] == "text/plain; charset=utf-8"
                assert hello.http_version == "HTTP/1.1"
                many = await client.get("/bytes/300000")
                assert (many.status_code, many.content) == (200, b"x" * 300_000)
                none = await client.get("/bytes/0")
                assert (none.status_code, none.content) == (200, b"")
                echoed = await client.post("/echo", content=b"\x00 any bytes \xff" * 1000)
                assert (echoed.status_code, echoed.content) == (200, b"\x00 any bytes \xff" * 1000)
                head = await client.head("/bytes/999999999999999")  # about a petabyte
                assert head.status_code == 200
                assert (head.headers["content-length"], head.content) == ("999999999999999", b"")
                missing = await client.get("/nowhere")
                assert missing.status_code == 404
                wrong = await client.put("/echo", content=b"?")
                assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
                with_query = await client.get("/?name=value")
                assert with_query.text == "Hello, world!\n"
            line = await log.wait_for("connection 1:")
            nursery.cancel_scope.cancel()
    assert server.connections == 1
    assert server.requests == 8
    assert line.startswith("connection 1: 8 requests, ")


async def test_connection_close_is_honoured_and_the_next_request_reconnects() -> None:
    log = EventLog()
    server = http_server.HTTPServer(log=log)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                first = await client.get("/", headers={"Connection": "close"})
                assert first.status_code == 200
                assert first.headers["connection"] == "close"
                second = await client.get("/")
                assert second.status_code == 200
                assert "connection" not in second.headers
            await log.wait_for("connection 2:")
            nursery.cancel_scope.cancel()
    assert server.connections == 2
    assert "connection 1: 1 requests, " in log.getvalue()


async def test_each_small_response_leaves_in_one_send() -> None:
    # Requests one at a time: the writer is idle when each response starts,
    # and the cork keeps its head and body together.
    log = EventLog()
    server = http_server.HTTPServer(log=log)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(5):
                    assert (await client.get("/")).text == "Hello, world!\n"
            line = await log.wait_for("connection 1:")
            nursery.cancel_scope.cancel()
    assert line.startswith("connection 1: 5 requests, ")
    assert " in 5 batches (5 sends)," in line, line


async def test_pipelined_requests_are_answered_in_order_in_a_few_sends() -> None:
    log = EventLog()
    server = http_server.HTTPServer(log=log)
    requests = []
    methods = []
    expected = []
    for i in range(50):
        if i % 3 == 0:
            requests.append(b"GET /bytes/%d HTTP/1.1\r\nHost: test\r\n\r\n" % (i * 10))
            methods.append(b"GET")
            expected.append((200, b"x" * (i * 10)))
        elif i % 3 == 1:
            body = b"request %d" % i
            requests.append(
                b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n%b"
                % (len(body), body)
            )
            methods.append(b"POST")
            expected.append((200, body))
        else:
            requests.append(b"GET /missing/%d HTTP/1.1\r\nHost: test\r\n\r\n" % i)
            methods.append(b"GET")
            expected.append((404, b"not found\n"))
    # The last one asks the server to close the connection afterwards.
    requests[-1] = requests[-1].replace(b"Host: test\r\n", b"Host: test\r\nConnection: close\r\n")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(b"".join(requests))  # all before reading any
                received = await receive_all(client)
            line = await log.wait_for("connection 1:")
            nursery.cancel_scope.cancel()
    responses = _parse_responses(received, methods)
    assert [(response.status_code, body) for response, body in responses] == expected
    assert {response.reason for response, _ in responses} == {b"OK", b"Not Found"}
    assert _header(responses[-1][0], b"Connection") == b"close"
    assert server.requests == 50
    # The 50 requests arrive in one receive (they are well under 64 KiB), and
    # their responses go out together: one direct send for the first, then
    # the rest in one, plus the end-of-file.  A few more only if the kernel
    # split the requests up.
    assert line.startswith("connection 1: 50 requests, ")
    batches = int(line.split(" writes in ")[1].split(" batches")[0])
    sends = int(line.split(" batches (")[1].split(" sends)")[0])
    assert batches <= sends <= 5, line


async def test_a_malformed_request_gets_a_400_after_the_good_ones_then_the_end() -> None:
    log = EventLog()
    server = http_server.HTTPServer(log=log)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(
                    b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
                    b"this is not HTTP\r\n\r\n"
                    b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"  # never answered
                )
                received = await receive_all(client)
            await log.wait_for("connection 1:")
            nursery.cancel_scope.cancel()
    (ok, ok_body), (bad, bad_body) = _parse_responses(received, [b"GET", b"GET"])
    assert (ok.status_code, ok_body) == (200, b"Hello, world!\n")
    assert bad.status_code == 400
    assert _header(bad, b"Connection") == b"close"
    assert bad_body.endswith(b"\n")
    assert server.requests == 1


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_over_the_limit_gets_a_413_and_the_connection_closes(framing: str) -> None:
    log = EventLog()
    server = http_server.HTTPServer(log=log)
    too_big = b"y" * (http_server.MAX_BODY + 100_000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 65536):
            yield too_big[start : start + 65536]

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                # The server refuses on the Content-Length, or once it has
                # read MAX_BODY bytes of a chunked body, and discards the rest
                # while httpx is still sending it.
                content = too_big if framing == "content-length" else chunks()
                response = await client.post("/echo", content=content)
                assert response.status_code == 413
                assert response.headers["connection"] == "close"
                assert (await client.get("/")).status_code == 200
            await log.wait_for("connection 2:")
            nursery.cancel_scope.cancel()
    assert server.connections == 2


async def test_a_client_that_expects_100_continue_is_told_to_go_ahead() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, http_server.HTTPServer(log=EventLog()))
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                h11_client = h11.Connection(h11.CLIENT)
                headers = [
                    ("Host", "test"),
                    ("Content-Length", "5"),
                    ("Expect", "100-continue"),
                    ("Connection", "close"),
                ]
                request = h11.Request(method="POST", target="/echo", headers=headers)
                await client.send_all(h11_client.send(request))
                events: list[h11.Event] = []
                while not isinstance(event := h11_client.next_event(), h11.ConnectionClosed):
                    if event is h11.NEED_DATA:
                        h11_client.receive_data(await client.receive_some())
                        continue
                    assert isinstance(event, h11.Event)
                    events.append(event)
                    if isinstance(event, h11.InformationalResponse):
                        # Only now does the client send the body.
                        await client.send_all(h11_client.send(h11.Data(data=b"hello")))
                        await client.send_all(h11_client.send(h11.EndOfMessage()))
            nursery.cancel_scope.cancel()
    continue_, response, *data, end = events
    assert isinstance(continue_, h11.InformationalResponse)
    assert continue_.status_code == 100
    assert isinstance(response, h11.Response)
    assert response.status_code == 200
    assert b"".join(event.data for event in data if isinstance(event, h11.Data)) == b"hello"
    assert isinstance(end, h11.EndOfMessage)


async def test_a_big_response_is_held_in_memory_one_chunk_at_a_time() -> None:
    log = EventLog()
    server = http_server.HTTPServer(log=log)
    size = 20 * 1024 * 1024
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            async with (
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
                client.stream("GET", f"/bytes/{size}") as response,
            ):
                received = 0
                async for chunk in response.aiter_raw():
                    assert chunk == b"x" * len(chunk)
                    received += len(chunk)
            assert received == size
            line = await log.wait_for("connection 1:")
            nursery.cancel_scope.cancel()
    # drain() after every chunk: of the 20 MiB, the writer never held more
    # than its high-water mark plus the next chunk (and the headers).
    peak = int(line.split("at most ")[1].split(" bytes")[0])
    assert peak <= DEFAULT_HIGH_WATER + http_server.CHUNK_SIZE + 1024, line


async def test_the_script_prints_its_port_serves_and_stops_on_ctrl_c() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                partial(
                    trio.run_process,
                    [sys.executable, str(HTTP_SERVER), "--port", "0"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            )
            async with process.stdout:
                output = b""
                while not output.endswith(b"\n"):
                    data = await process.stdout.receive_some()
                    assert data, "the script ended before printing its port"
                    output += data
            port = int(output)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.get("/")).text == "Hello, world!\n"
                assert (await client.post("/echo", content=b"ping")).content == b"ping"
            async with process.stderr:
                # Closing the client ends the connection, and the server logs it.
                log = b""
                while b"connection 1:" not in log:
                    data = await process.stderr.receive_some()
                    assert data, f"the script ended early; its log: {log!r}"
                    log += data
                process.send_signal(signal.SIGINT)
                assert await process.wait() == 0
                log += await receive_all(process.stderr)
    text = log.decode()
    assert f"HTTP server on http://127.0.0.1:{port}/" in text
    assert "connection 1: 2 requests, " in text
