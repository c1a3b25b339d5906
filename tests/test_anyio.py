"""anyio streams on anyio's trio backend: accepted through an adapter, anyio's
errors translated to trio's, and a clear error on the asyncio backend.

These are plain trio tests calling anyio functions: anyio detects that it
runs on trio."""

from __future__ import annotations

import ssl
import subprocess
import sys
import textwrap

import anyio
import anyio.abc
import pytest
import trio
import trio.testing
import trustme
from anyio.streams.tls import TLSStream

from trio_bufwriter import (
    BufferedStream,
    BufferedWriter,
    WriterState,
    aclose_lingering,
    open_buffered_stream,
    open_buffered_writer,
)

LINES = b"".join(b"line %d\n" % i for i in range(1000))


async def anyio_tcp_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client = await anyio.connect_tcp("127.0.0.1", port)
        server = await listener.accept()
    return client, server


async def anyio_receive_all(stream: anyio.abc.ByteReceiveStream) -> bytes:
    received = bytearray()
    while True:
        try:
            received += await stream.receive()
        except anyio.EndOfStream:
            return bytes(received)


async def test_a_buffered_stream_over_an_anyio_socket_coalesces_and_half_closes() -> None:
    with trio.fail_after(10):
        client, server = await anyio_tcp_pair()
        async with client, open_buffered_stream(server) as conn:
            for i in range(1000):
                conn.write(b"line %d\n" % i)
            await conn.send_eof()
            assert await anyio_receive_all(client) == LINES
            assert conn.statistics().send_calls < 1000
            await client.send(b"bye")
            await client.send_eof()
            assert await conn.receive_some() == b"bye"
            assert await conn.receive_some() == b""
            assert conn.transport_stream.anyio_stream is server  # type: ignore[attr-defined]
        assert conn.state is WriterState.CLOSED
        with pytest.raises(anyio.ClosedResourceError):
            await server.send(b"closed with the writer")


async def test_open_buffered_writer_takes_a_one_way_anyio_stream() -> None:
    # A subprocess's stdin: anyio's ByteSendStream that is not a ByteStream.
    script = "import sys; data = sys.stdin.buffer.read(); print(len(data), data.count(b'\\n'))"
    with trio.fail_after(20):
        async with await anyio.open_process([sys.executable, "-c", script]) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            assert not isinstance(process.stdin, anyio.abc.ByteStream)
            async with open_buffered_writer(process.stdin) as writer:
                for i in range(1000):
                    writer.write(b"line %d\n" % i)
            output = await anyio_receive_all(process.stdout)
            assert await process.wait() == 0
        assert output.split() == [str(len(LINES)).encode(), b"1000"]


class Recording(anyio.abc.ByteStream):
    """An anyio stream that keeps what it is given, and fails on demand."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self.error: Exception | None = None
        self.closed = False

    async def send(self, item: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error
        self.items.append(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error
        raise anyio.EndOfStream

    async def send_eof(self) -> None:
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True
        if self.error is not None:
            raise self.error


async def test_a_stream_that_may_keep_what_it_is_sent_gets_bytes_it_can_keep() -> None:
    with trio.fail_after(10):
        stream = Recording()
        async with open_buffered_writer(stream) as writer:
            writer.write(b"a")
            writer.write(bytearray(b"b"))
            await writer.flush()
            writer.write(memoryview(b"c"))
        assert stream.items == [b"ab", b"c"]
        assert all(type(item) is bytes for item in stream.items)
        assert stream.closed


@pytest.mark.parametrize(
    ("anyio_error", "trio_error"),
    [
        (anyio.BrokenResourceError, trio.BrokenResourceError),
        (anyio.ClosedResourceError, trio.ClosedResourceError),
        (anyio.BusyResourceError, trio.BusyResourceError),
    ],
)
async def test_anyio_errors_come_out_as_trio_errors(
    anyio_error: type[Exception], trio_error: type[Exception]
) -> None:
    with trio.fail_after(10):
        stream = Recording()
        original = (
            anyio_error("reading") if anyio_error is anyio.BusyResourceError else anyio_error()
        )
        stream.error = original
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(stream)
            await nursery.start(conn.run)
            with pytest.raises(trio_error) as receive_error:
                await conn.receive_some()
            assert receive_error.value.__cause__ is original
            conn.write(b"x")
            with pytest.raises(trio.BrokenResourceError) as flush_error:
                await conn.flush()  # the writer broke: its send_all failed
            cause = flush_error.value.__cause__
            assert isinstance(cause, trio_error)
            assert cause.__cause__ is original
            stream.error = None
            await conn.aclose()
        assert stream.closed


async def test_the_adapters_aclose_is_a_checkpoint_where_anyios_is_not() -> None:
    # Recording.aclose() does not checkpoint, nor did anyio's own socket
    # stream's on its trio backend before anyio 4.16; trio's contract wants one.
    with trio.fail_after(10):
        stream = Recording()
        adapter = BufferedStream(stream).transport_stream
        with trio.testing.assert_checkpoints():
            await adapter.aclose()
        assert stream.closed


@pytest.mark.parametrize(
    ("anyio_error", "raised"),
    [
        (anyio.BrokenResourceError, None),
        (anyio.ClosedResourceError, None),
        (anyio.BusyResourceError, trio.BusyResourceError),
    ],
)
async def test_aclose_swallows_a_broken_or_closed_anyio_stream(
    anyio_error: type[Exception], raised: type[Exception] | None
) -> None:
    # As trio.SSLStream's aclose() does when the peer has gone.
    with trio.fail_after(10):
        stream = Recording()
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(stream)
            await nursery.start(conn.run)
            stream.error = anyio_error("closing")
            if raised is None:
                await conn.aclose()
            else:
                with pytest.raises(raised):
                    await conn.aclose()
        assert stream.closed
        assert conn.state is WriterState.CLOSED


async def test_send_eof_errors_are_translated_too() -> None:
    with trio.fail_after(10):
        stream = Recording()
        original = anyio.BrokenResourceError()
        stream.error = original
        async with trio.open_nursery() as nursery:
            conn = BufferedStream(stream)
            await nursery.start(conn.run)
            with pytest.raises(trio.BrokenResourceError) as raised:
                await conn.send_eof()
            assert raised.value.__cause__.__cause__ is original  # type: ignore[union-attr]
            await conn.aclose()


async def test_the_adapter_is_a_conforming_half_closeable_trio_stream() -> None:
    with trio.fail_after(20):

        async def maker() -> tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]:
            client, server = await anyio_tcp_pair()
            a = BufferedStream(client).transport_stream
            b = BufferedStream(server).transport_stream
            assert isinstance(a, trio.abc.HalfCloseableStream)
            assert isinstance(b, trio.abc.HalfCloseableStream)
            return a, b

        await trio.testing.check_half_closeable_stream(maker, None)


async def test_a_buffered_stream_over_an_anyio_socket_is_a_conforming_stream() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:

            async def maker() -> tuple[BufferedStream, BufferedStream]:
                client, server = await anyio_tcp_pair()
                a, b = BufferedStream(client), BufferedStream(server)
                await nursery.start(a.run)
                await nursery.start(b.run)
                return a, b

            await trio.testing.check_half_closeable_stream(maker, None)


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def anyio_tls_pair(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> tuple[TLSStream, TLSStream]:
    server_ctx, client_ctx = contexts
    client_tcp, server_tcp = await anyio_tcp_pair()
    pair: dict[str, TLSStream] = {}

    async def wrap_server() -> None:
        pair["server"] = await TLSStream.wrap(server_tcp, server_side=True, ssl_context=server_ctx)

    async def wrap_client() -> None:
        pair["client"] = await TLSStream.wrap(
            client_tcp, hostname="localhost", ssl_context=client_ctx
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wrap_server)
        nursery.start_soon(wrap_client)
    return pair["client"], pair["server"]


async def test_a_buffered_stream_over_anyio_tls_cannot_half_close_and_lingers(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    with trio.fail_after(10):
        client, server = await anyio_tls_pair(tls_contexts)
        async with client, trio.open_nursery() as nursery:
            conn = BufferedStream(server)
            await nursery.start(conn.run)
            assert not isinstance(conn.transport_stream, trio.abc.HalfCloseableStream)
            with pytest.raises(TypeError, match="HalfCloseableStream"):
                await conn.send_eof()
            await client.send(b"request")
            assert await conn.receive_some() == b"request"
            for i in range(1000):
                conn.write(b"line %d\n" % i)

            async def peer() -> None:
                received = bytearray()
                while len(received) < len(LINES):
                    received += await client.receive()
                assert received == LINES
                await client.aclose()  # close_notify: the server's linger ends

            nursery.start_soon(peer)
            await aclose_lingering(conn)
            assert conn.state is WriterState.CLOSED
            assert conn.statistics().send_calls < 1000


async def test_a_plain_trio_stream_is_not_adapted() -> None:
    a, b = trio.testing.memory_stream_pair()
    assert BufferedStream(a).transport_stream is a
    assert BufferedWriter(b).transport_stream is b
    await a.aclose()
    await b.aclose()


async def test_a_one_way_anyio_stream_is_refused_by_buffered_stream() -> None:
    with trio.fail_after(20):
        async with await anyio.open_process([sys.executable, "-c", "pass"]) as process:
            with pytest.raises(TypeError, match=r"anyio\.abc\.ByteStream.*BufferedWriter"):
                BufferedStream(process.stdin)  # type: ignore[arg-type]


def test_the_type_error_names_trio_and_anyio_streams() -> None:
    with pytest.raises(TypeError, match=r"trio\.abc\.SendStream.*anyio\.abc\.ByteSendStream"):
        BufferedWriter(b"not a stream")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"trio\.abc\.Stream.*anyio\.abc\.ByteStream"):
        BufferedStream(b"not a stream")  # type: ignore[arg-type]


def test_on_the_asyncio_backend_wrapping_an_anyio_stream_says_to_use_trio() -> None:
    async def main() -> list[str]:
        client, server = await anyio_tcp_pair()
        errors = []
        async with client, server:
            for wrap in (BufferedStream, BufferedWriter, open_buffered_stream):
                try:
                    wrap(server)
                except RuntimeError as exc:
                    errors.append(str(exc))
        return errors

    errors = anyio.run(main, backend="asyncio")
    assert len(errors) == 3
    for error in errors:
        assert "trio_bufwriter runs on trio" in error
        assert "backend='trio'" in error


def test_the_library_never_imports_anyio() -> None:
    program = textwrap.dedent(
        """
        import sys
        import trio_bufwriter
        try:
            trio_bufwriter.BufferedWriter(object())
        except TypeError:
            pass
        print("anyio" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
