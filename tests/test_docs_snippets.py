"""Every program under docs/snippets/ runs, and does what the docs say it does.

The documentation shows these files with ``literalinclude``, so they cannot
rot unnoticed: each is imported, its ``main()`` is run under
``trio.fail_after``, and its result is checked by the function registered
for it below.  A snippet without a check fails ``test_every_snippet_is_checked``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from types import ModuleType
from typing import Any

import h11
import pytest
import trio
from script_testing import SNIPPETS, load_script

from trio_bufwriter import WriterState

TIME_LIMIT = 30

CHECKS: dict[str, Callable[[Any], None]] = {}


def check(name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def register(function: Callable[[Any], None]) -> Callable[[Any], None]:
        CHECKS[name] = function
        return function

    return register


def load(name: str) -> ModuleType:
    return load_script(SNIPPETS / f"{name}.py", f"docs_snippet_{name}")


def run_snippet(name: str) -> Any:
    module = load(name)

    async def bounded() -> Any:
        with trio.fail_after(TIME_LIMIT):
            return await module.main()

    return trio.run(bounded)


# ----------------------------------------------------------------------
# What each snippet must produce


@check("quickstart")
def _(result: Any) -> None:
    data, stats = result
    assert data == b"".join(b"line %d\n" % i for i in range(10_000))
    assert stats.bytes_sent == stats.bytes_written == len(data)
    assert stats.write_calls == 10_000
    assert stats.send_calls < 100  # coalesced
    assert stats.state is WriterState.CLOSED


@check("many_tasks")
def _(result: Any) -> None:
    error, lines = result
    assert "another task" in error
    assert len(lines) == 300
    for name in (b"a", b"b", b"c"):
        # Each task's lines arrive whole and in its order.
        assert [line for line in lines if line.startswith(name)] == [
            b"%s:%d" % (name, i) for i in range(100)
        ]


@check("echo")
def _(result: Any) -> None:
    assert result == b"".join(b"hello %d\n" % i for i in range(1000))


@check("kv_protocol")
def _(result: Any) -> None:
    answers, stats = result
    assert answers[:500] == [b"OK"] * 500
    assert answers[500:1000] == [
        b"VALUE v%d" % i if i < 500 else b"MISSING" for i in range(0, 1000, 2)
    ]
    assert answers[1000:] == [b"ERROR unknown command"]
    assert stats.write_calls == 1001
    assert stats.send_calls < stats.write_calls


@check("reads")
def _(result: Any) -> None:
    (header, frames, partial), decoded, error, line = result
    assert header == b"FRAMES v1"
    assert frames == [b"one", b"", b"three"]
    assert partial == b"half"
    # receive_frames: sent at once, one batch; in pieces, the same frames.
    (header, batches, partial), (header_3, batches_3, partial_3) = decoded
    assert header == header_3 == b"FRAMES v1"
    assert batches == [[b"one", b"", b"three"]]
    assert [frame for batch in batches_3 for frame in batch] == [b"one", b"", b"three"]
    assert all(batches_3)
    assert partial == partial_3 == b"\x00\x00\x00\nhalf"  # the length too
    assert (
        error == "more than max_bytes=100 bytes without a b'\\n' (the limit on what may come "
        "before it; 101 bytes searched); they are left in the buffer"
    )
    assert line == b"x" * 200


@check("parsed")
def _(result: Any) -> None:
    at_once, in_pieces, too_large, lines = result
    assert at_once == [[b"one", b"", b"three"]]
    assert [frame for batch in in_pieces for frame in batch] == [b"one", b"", b"three"]
    assert all(in_pieces)
    assert too_large == f"FrameTooLargeError: {4 + (1 << 20) + 1} > {4 + (1 << 20)}"
    assert lines == [b"first", b"second", b"", b"last, without a line ending"]


@check("recipe_chat")
def _(result: Any) -> None:
    assert result == {
        "alice": [b"* welcome, alice", b"* bob joined", b"* carol joined", b"* bob left"],
        "bob": [b"* welcome, bob", b"* carol joined", b"alice: hi all"],
        "carol": [b"* welcome, carol", b"alice: hi all", b"* bob left"],
    }


@check("recipe_rpc")
def _(result: Any) -> None:
    assert sorted(result) == sorted(
        b"TASK %d CALL %d" % (task, call) for task in range(10) for call in range(20)
    )


@check("recipe_ticker")
def _(result: Any) -> None:
    published, fast, slow = result
    keys, updates = 50, 200
    assert published == keys * updates
    for frames in (fast, slow):
        # Per key, prices only move forward, and the last one always arrives.
        for key in range(keys):
            prices = [price for k, price in frames if k == key]
            assert prices == sorted(set(prices))
            assert prices[-1] == updates - 1
    # The slow client read nothing until the end: it got far fewer updates.
    assert len(slow) < published // 2


@check("barrier")
def _(result: Any) -> None:
    assert result["sends for 1000 writes"] == 1
    assert result["sends for a corked header and body"] == 1
    assert result["buffered after flush"] == 0
    assert result["bytes received"] == result["bytes written"]


@check("files")
def _(result: Any) -> None:
    assert result == {"right bytes": True}


@check("cancellation")
def _(result: Any) -> None:
    data, state = result
    assert data == b"first second third"
    assert state is WriterState.OPEN


@check("errors")
def _(result: Any) -> None:
    assert result[0].startswith("flush: the wrapped stream's send_all failed")
    assert "BrokenResourceError" in result[0]  # the memory stream's own error, as cause
    assert result[1].startswith("write: ")
    assert result[2:] == ["state: BROKEN", "after the block: CLOSED"]


@check("http_h11")
def _(result: Any) -> None:
    assert result == [
        b"you asked for /a\n",
        b"".join(b"%d\n" % i for i in range(10_000)),
        b"you asked for /b\n",
    ]


@check("anyio_trio")
def _(result: Any) -> None:
    data, sends = result
    assert data == b"".join(b"line %d\n" % i for i in range(1000))
    assert sends < 1000  # coalesced


@check("lingering_close")
def _(result: Any) -> None:
    size, tail = result
    assert size == 100_000 + len(b"\nthat is all, goodbye\n")
    assert tail == b"that is all, goodbye\n"


@check("websocket_wsproto")
def _(result: Any) -> None:
    assert result == [f"MESSAGE {i}" for i in range(100)]


@check("tls_above")
def _(result: Any) -> None:
    data, stats = result
    assert data == b"".join(b"line %d\n" % i for i in range(1000))
    assert stats.bytes_sent == stats.bytes_written == len(data)
    assert stats.send_calls < stats.write_calls  # fewer SSLStream.send_all calls
    assert stats.state is WriterState.CLOSED


@check("tls_below")
def _(result: Any) -> None:
    data, state = result
    assert data == b"".join(b"message %d\n" % i for i in range(100))
    assert state is WriterState.CLOSED


@check("limits")
def _(result: Any) -> None:
    (refused, received), aborted, stalled = result
    assert refused.startswith("refused: a write of 600 bytes would hold 1200 bytes")
    assert refused.endswith("the writer is OPEN")
    assert received == b"a" * 600 + b"c" * 400
    assert "BufferLimitError" in aborted
    assert aborted.endswith("the writer is BROKEN")
    assert "StallTimeoutError" in stalled


@check("broadcast")
def _(result: Any) -> None:
    received, dropped, stats = result
    expected = b"".join(b"message %d\n" % i for i in range(1000))
    assert received == [expected, expected]
    assert len(dropped) == 1
    assert dropped[0].startswith("subscriber 2: BufferLimitError(")
    assert stats.subscribers == 2
    assert stats.dropped == 1
    assert stats.messages == 1000


@check("latest_value")
def _(result: Any) -> None:
    lines, stats = result
    # The first price went out at once; then only the newest of each symbol,
    # in the order the symbols started waiting (AAA's second price came last).
    assert lines == [b"AAA 100", b"BBB 199", b"CCC 199", b"AAA 199"]
    assert (stats.frames_written, stats.frames_sent) == (300, 1)
    assert (stats.frames_superseded, stats.pending_frames) == (296, 3)


@check("positional_nursery")
def _(result: Any) -> None:
    written, missing = result
    assert written == b"hello world"
    assert missing == [(0, 100), (4096, 4196)]  # /dev/full took nothing


@check("own_nursery")
def _(result: Any) -> None:
    assert result == [b"hello, first", b"hello, second"]


@check("positional_basic")
def _(result: Any) -> None:
    same, stats = result
    assert same  # the file read back is exactly what was written
    size = 64 * 64 * 1024
    assert stats.write_at_calls == 64 + 1
    assert stats.bytes_accepted == size + 4
    assert stats.bytes_written == stats.bytes_accepted - stats.bytes_superseded
    assert stats.pending == 0
    assert stats.state is WriterState.CLOSED
    # Batched: far fewer worker-thread trips than writes.
    assert 1 <= stats.thread_hops < stats.write_at_calls
    # drain() before each write_at: at most one block over high water.
    assert stats.peak_pending <= 1024 * 1024 + 64 * 1024


# ----------------------------------------------------------------------


def snippet_names() -> list[str]:
    return sorted(path.stem for path in SNIPPETS.glob("*.py"))


def test_every_snippet_is_checked() -> None:
    assert snippet_names(), f"no snippets found in {SNIPPETS}"
    assert set(snippet_names()) == set(CHECKS)


@pytest.mark.parametrize("name", snippet_names())
def test_snippet(name: str) -> None:
    if name not in CHECKS:
        pytest.fail(f"docs/snippets/{name}.py has no check in {__file__}")
    CHECKS[name](run_snippet(name))


def test_a_snippet_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(SNIPPETS / "barrier.py")],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        check=True,
    )
    assert "sends for 1000 writes: 1" in result.stdout


async def test_the_http_snippet_sends_each_small_response_in_one_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What docs/howto/http.rst says of the corked response, checked over a
    # real socket (where an idle writer would send the first write alone).
    module = load("http_h11")
    conns: list[Any] = []
    real = module.open_buffered_stream

    @asynccontextmanager
    async def recording(stream: trio.SocketStream) -> AsyncIterator[Any]:
        async with real(stream) as conn:
            conns.append(conn)
            yield conn

    monkeypatch.setattr(module, "open_buffered_stream", recording)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, module.handle, 0))
            port = listeners[0].socket.getsockname()[1]
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                http = h11.Connection(h11.CLIENT)
                for target in ("/a", "/b", "/c"):
                    assert await module.get(stream, http, target) == b"you asked for %s\n" % (
                        target.encode()
                    )
            nursery.cancel_scope.cancel()
    stats = conns[0].statistics()
    assert (stats.write_calls, stats.send_calls) == (9, 3)
