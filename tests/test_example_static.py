"""examples/static_server.py: files, ranges, HEAD, 404/403/416, keep-alive,
paths that try to leave the root; driven by httpx, raw requests and curl."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import h11
import httpx
import pytest
import trio
from fault_testing import pattern
from script_testing import EXAMPLES, load_script

STATIC_SERVER = EXAMPLES / "static_server.py"
static_server = load_script(STATIC_SERVER, "static_server_example")

BIG = 700_000


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A root with files, a folder, and symbolic links in and out of it."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.bin").write_bytes(pattern(0, BIG))
    (root / "hello.txt").write_bytes(b"hello\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "link-in.txt").symlink_to(root / "hello.txt")
    (tmp_path / "secret.txt").write_bytes(b"secret\n")
    (root / "link-out.txt").symlink_to(tmp_path / "secret.txt")
    (root / "dir-out").symlink_to(tmp_path)
    return root


@asynccontextmanager
async def serving(root: Path) -> AsyncIterator[tuple[int, object]]:
    server = static_server.StaticServer(root, log=io.StringIO())
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(static_server.serve, root, 0, server=server))
        yield port, server
        nursery.cancel_scope.cancel()


async def raw_get(port: int, target: bytes) -> tuple[int, bytes]:
    """One request with *target* exactly as given (no client normalises it)."""
    client = h11.Connection(h11.CLIENT)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        request = h11.Request(method="GET", target=target, headers=[("Host", "test")])
        await stream.send_all(client.send(request) + client.send(h11.EndOfMessage()))
        status = 0
        body = bytearray()
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(await stream.receive_some())
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, bytes(body)


async def test_files_ranges_and_head_over_one_keep_alive_connection(site: Path) -> None:
    with trio.fail_after(10):
        async with serving(site) as (port, server):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                big = await client.get("/big.bin")
                assert (big.status_code, big.content) == (200, pattern(0, BIG))
                assert big.headers["content-length"] == str(BIG)
                assert big.headers["accept-ranges"] == "bytes"
                hello = await client.get("/hello.txt")
                assert (hello.content, hello.headers["content-type"]) == (b"hello\n", "text/plain")
                empty = await client.get("/empty.txt")
                assert (empty.status_code, empty.content) == (200, b"")
                part = await client.get("/big.bin", headers={"Range": "bytes=1000-1999"})
                assert (part.status_code, part.content) == (206, pattern(1000, 1000))
                assert part.headers["content-range"] == f"bytes 1000-1999/{BIG}"
                tail = await client.get("/big.bin", headers={"Range": "bytes=-10"})
                assert (tail.status_code, tail.content) == (206, pattern(BIG - 10, 10))
                rest = await client.get("/big.bin", headers={"Range": f"bytes={BIG - 5}-"})
                assert (rest.status_code, rest.content) == (206, pattern(BIG - 5, 5))
                clipped = await client.get(
                    "/big.bin", headers={"Range": f"bytes={BIG - 2}-9999999"}
                )
                assert clipped.content == pattern(BIG - 2, 2)
                past = await client.get("/big.bin", headers={"Range": f"bytes={BIG}-"})
                assert past.status_code == 416
                assert past.headers["content-range"] == f"bytes */{BIG}"
                several = await client.get("/big.bin", headers={"Range": "bytes=0-1,5-6"})
                assert (several.status_code, len(several.content)) == (200, BIG)
                head = await client.head("/big.bin")
                assert (head.status_code, head.content) == (200, b"")
                assert head.headers["content-length"] == str(BIG)
                inner = await client.get("/sub/inner.txt")
                assert inner.content == b"inner\n"
                linked = await client.get("/link-in.txt")
                assert linked.content == b"hello\n"
                assert (await client.get("/nothing")).status_code == 404
                assert (await client.get("/sub")).status_code == 404
                assert (await client.get("/sub/")).status_code == 404
                assert (await client.post("/hello.txt", content=b"x")).status_code == 405
                assert (await client.get("/hello%2Etxt")).content == b"hello\n"
            # Keep-alive: every request on one connection.
            assert server.connections == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("target", "statuses"),
    [
        (b"/../secret.txt", {403}),
        (b"/sub/../../secret.txt", {403}),
        (b"/%2e%2e/secret.txt", {403}),
        (b"/..%2fsecret.txt", {403}),
        (b"/link-out.txt", {403}),
        (b"/dir-out/secret.txt", {403}),
        (b"//etc/passwd", {404}),
        (b"/etc/passwd", {404}),
        (b"http://example.org/etc/passwd", {404}),
        (b"/hello.txt%00.png", {404}),
    ],
)
async def test_no_path_leaves_the_root(site: Path, target: bytes, statuses: set[int]) -> None:
    with trio.fail_after(10):
        async with serving(site) as (port, _):
            status, body = await raw_get(port, target)
    assert status in statuses
    assert b"secret" not in body
    assert b"root:" not in body


async def test_the_server_keeps_no_descriptor_open_after_serving(site: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with trio.fail_after(10):
        async with (
            serving(site) as (port, _),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            for _ in range(5):
                assert (await client.get("/big.bin")).content == pattern(0, BIG)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_downloads_whole_files_and_ranges(site: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.bin"
    part = tmp_path / "part.bin"
    with trio.fail_after(20):
        async with serving(site) as (port, _):
            base = f"http://127.0.0.1:{port}"
            await trio.run_process(
                ["curl", "-sS", "--fail", "-o", str(whole), f"{base}/big.bin",
                 "--next", "-sS", "--fail", "-o", str(part), "-r", "100-199", f"{base}/big.bin"],
            )  # fmt: skip
            escaped = await trio.run_process(
                ["curl", "-sS", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}",
                 f"{base}/../secret.txt"],
                capture_stdout=True,
            )  # fmt: skip
    assert whole.read_bytes() == pattern(0, BIG)
    assert part.read_bytes() == pattern(100, 100)
    assert escaped.stdout == b"403"


async def test_the_script_serves_until_sigterm(site: Path) -> None:
    with trio.fail_after(20):
        process = await trio.lowlevel.open_process(
            [sys.executable, str(STATIC_SERVER), "--root", str(site), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            line += await process.stdout.receive_some(100)
        port = int(line)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.get("/big.bin")
        assert response.content == pattern(0, BIG)
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
        await process.stdout.aclose()
