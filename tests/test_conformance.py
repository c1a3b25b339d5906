"""trio's own stream conformance suites, run on BufferedStream and BufferedWriter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from stream_testing import NoHalfClose

from trio_bufwriter import BufferedStream, BufferedWriter

Pair = tuple[trio.abc.Stream, trio.abc.Stream]


async def _wrap_pair(
    nursery: trio.Nursery, pair: Pair, **options: int
) -> tuple[BufferedStream, BufferedStream]:
    a = BufferedStream(pair[0], **options)
    b = BufferedStream(pair[1], **options)
    await nursery.start(a.run)
    await nursery.start(b.run)
    return a, b


async def _clogged(nursery: trio.Nursery, pair: Pair) -> tuple[BufferedStream, BufferedStream]:
    # With high water 0 and nothing written, every send-side method waits
    # on the lockstep stream until the peer calls receive_some: send_all for
    # its bytes to be taken, wait_send_all_might_not_block in the lockstep
    # stream's own.
    return await _wrap_pair(nursery, pair, high_water=0)


async def _tcp_pair() -> Pair:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
    finally:
        for listener in listeners:
            await listener.aclose()
    return client, server


Maker = Callable[[], Awaitable[Pair]]


async def _memory() -> Pair:
    return trio.testing.memory_stream_pair()


async def _lockstep() -> Pair:
    return trio.testing.lockstep_stream_pair()


@pytest.mark.parametrize(
    "make_pair", [_memory, _lockstep, _tcp_pair], ids=["memory", "lockstep", "tcp"]
)
async def test_buffered_stream_is_a_conforming_half_closeable_stream(make_pair: Maker) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def maker() -> tuple[BufferedStream, BufferedStream]:
                return await _wrap_pair(nursery, await make_pair())

            async def clogged_maker() -> tuple[BufferedStream, BufferedStream]:
                return await _clogged(nursery, trio.testing.lockstep_stream_pair())

            await trio.testing.check_half_closeable_stream(maker, clogged_maker)


async def test_buffered_stream_over_a_stream_that_cannot_half_close_is_a_two_way_stream() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def maker() -> tuple[BufferedStream, BufferedStream]:
                a, b = trio.testing.memory_stream_pair()
                return await _wrap_pair(nursery, (NoHalfClose(a), NoHalfClose(b)))

            await trio.testing.check_two_way_stream(maker, None)

            a, b = await maker()
            with pytest.raises(TypeError, match="HalfCloseableStream"):
                await a.send_eof()
            await a.aclose()
            await b.aclose()


async def test_buffered_writer_is_a_conforming_one_way_stream() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def maker() -> tuple[BufferedWriter, trio.abc.ReceiveStream]:
                s, r = trio.testing.memory_stream_one_way_pair()
                w = BufferedWriter(s)
                await nursery.start(w.run)
                return w, r

            async def clogged_maker() -> tuple[BufferedWriter, trio.abc.ReceiveStream]:
                s, r = trio.testing.lockstep_stream_one_way_pair()
                w = BufferedWriter(s, high_water=0)
                await nursery.start(w.run)
                return w, r

            await trio.testing.check_one_way_stream(maker, clogged_maker)
