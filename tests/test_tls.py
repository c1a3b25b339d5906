"""The writer and TLS: BufferedStream over trio.SSLStream, and SSLStream over BufferedStream.

The two arrangements matter for different reasons:

* **Writer above TLS** (``BufferedStream(SSLStream(tcp))``): the application's
  many small ``write()`` calls are buffered *before* encryption, so each
  coalesced ``send_all`` becomes one TLS ``SSL_write``: a handful of TLS
  records instead of one record (5 bytes of header plus a MAC or AEAD tag,
  plus a cipher call) per message.  This is the arrangement that saves work;
  ``send_eof`` is refused there because TLS has no half-close.
* **Writer below TLS** (``SSLStream(BufferedStream(tcp))``): the SSLStream's
  own ``send_all`` (records, handshake flights, ``close_notify``) goes through
  the writer, whose ``send_all`` returns once the bytes are queued.  This is
  what a library gets when it is handed a BufferedStream and layers TLS on
  it (STARTTLS-style code, a server that wraps accepted streams early), so
  the handshake, both directions, and closing must all survive the writer
  answering "sent" before the bytes are on the wire.

Certificates come from ``trustme``; both contexts have
``OP_IGNORE_UNEXPECTED_EOF`` cleared, as in trio's own tests, so a peer's
``receive_some`` returning ``b""`` proves a ``close_notify`` arrived (without
one, a non-``https_compatible`` SSLStream raises BrokenResourceError).
"""

from __future__ import annotations

import random
import ssl
import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
import trustme

from trio_bufwriter import BufferedStream, WriterState, open_buffered_stream

HOSTNAME = "trio-bufwriter-test.example.org"
TLS_APPLICATION_DATA = 23

Pair = tuple[trio.abc.Stream, trio.abc.Stream]
SSLPair = tuple[trio.SSLStream[trio.abc.Stream], trio.SSLStream[trio.abc.Stream]]


# ----------------------------------------------------------------------
# Certificates and contexts


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    ca.issue_cert(HOSTNAME).configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module", params=["tls13", "tls12"])
def client_ctx(request: pytest.FixtureRequest, ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    ca.configure_trust(ctx)
    if request.param == "tls12":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _expected_version(client_ctx: ssl.SSLContext) -> str:
    return "TLSv1.2" if client_ctx.maximum_version == ssl.TLSVersion.TLSv1_2 else "TLSv1.3"


def ssl_pair(
    client_transport: trio.abc.Stream,
    server_transport: trio.abc.Stream,
    client_ctx: ssl.SSLContext,
    server_ctx: ssl.SSLContext,
) -> SSLPair:
    client = trio.SSLStream(client_transport, client_ctx, server_hostname=HOSTNAME)
    server = trio.SSLStream(server_transport, server_ctx, server_side=True)
    return client, server


async def handshake(
    client: trio.SSLStream[trio.abc.Stream], server: trio.SSLStream[trio.abc.Stream]
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)


# ----------------------------------------------------------------------
# Transports


async def memory_pair() -> Pair:
    return trio.testing.memory_stream_pair()


async def tcp_pair() -> Pair:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
    finally:
        for listener in listeners:
            await listener.aclose()
    return client, server


PairMaker = Callable[[], Awaitable[Pair]]
TRANSPORTS = pytest.mark.parametrize("make_pair", [memory_pair, tcp_pair], ids=["memory", "tcp"])


class TLSRecordCounter(trio.abc.Stream):
    """Passes everything through, and parses the TLS record headers it sends."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.record_types: list[int] = []
        self._header = bytearray()
        self._skip = 0

    def application_records(self) -> int:
        return self.record_types.count(TLS_APPLICATION_DATA)

    def _parse(self, data: bytes) -> None:
        i = 0
        while i < len(data):
            if self._skip:
                taken = min(self._skip, len(data) - i)
                self._skip -= taken
                i += taken
                continue
            piece = data[i : i + 5 - len(self._header)]
            self._header += piece
            i += len(piece)
            if len(self._header) == 5:
                content_type, _version, length = struct.unpack("!BHH", self._header)
                self.record_types.append(content_type)
                self._skip = length
                self._header.clear()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._parse(bytes(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


# ----------------------------------------------------------------------
# Tagged records: every write is a record (source, seq, length, payload), so
# the receiver can tell that each write arrived whole, in order, and intact.

_RECORD_HEADER = struct.Struct("!III")


def make_records(source: int, total: int, rng: random.Random, max_size: int) -> list[bytes]:
    records: list[bytes] = []
    size_so_far = 0
    while size_so_far < total:
        length = min(int(2 ** rng.uniform(0, max_size.bit_length() - 1)), max_size)
        record = _RECORD_HEADER.pack(source, len(records), length) + rng.randbytes(length)
        records.append(record)
        size_so_far += len(record)
    return records


def check_records(data: bytes | bytearray, expected: dict[int, list[bytes]]) -> None:
    """*data* must be exactly the records of *expected*, each source's in order,
    each record contiguous (writes never interleave)."""
    next_seq = dict.fromkeys(expected, 0)
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        source, seq, length = _RECORD_HEADER.unpack_from(view, pos)
        assert source in expected, f"garbage at offset {pos}"
        assert seq == next_seq[source], (
            f"source {source}: record {seq}, expected {next_seq[source]}"
        )
        end = pos + _RECORD_HEADER.size + length
        assert view[pos:end] == expected[source][seq], f"source {source} record {seq} corrupted"
        next_seq[source] += 1
        pos = end
    assert next_seq == {source: len(records) for source, records in expected.items()}


async def receive_to_eof(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    while data := await stream.receive_some(65536):
        into += data


# ----------------------------------------------------------------------
# (a) BufferedStream over SSLStream: the writer above TLS
#
# Application writes are buffered, then encrypted once per coalesced send:
# fewer TLS records and cipher calls.  TLS cannot half-close, so send_eof is
# refused, and aclose() must still flush, send close_notify and close.


@TRANSPORTS
async def test_writer_over_ssl_keeps_every_write_intact_from_many_tasks(
    make_pair: PairMaker, client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    rng = random.Random(1)
    expected = {source: make_records(source, 1 << 20, rng, 16384) for source in range(4)}
    total = sum(map(len, (b"".join(records) for records in expected.values())))
    reply = rng.randbytes(1 << 20)
    received = bytearray()
    reply_received = bytearray()

    async def write_records(conn: BufferedStream, records: list[bytes], seed: int) -> None:
        task_rng = random.Random(seed)
        for record in records:
            conn.write(record)
            roll = task_rng.random()
            if roll < 0.3:
                await conn.drain()
            elif roll < 0.35:
                await conn.flush()
            elif roll < 0.6:
                await trio.lowlevel.checkpoint()

    async def serve(server: trio.SSLStream[trio.abc.Stream]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_to_eof, server, received)
            for start in range(0, len(reply), 10_000):
                await server.send_all(reply[start : start + 10_000])
        await server.aclose()

    with trio.fail_after(30):
        client_transport, server_transport = await make_pair()
        client_ssl, server_ssl = ssl_pair(
            client_transport, server_transport, client_ctx, server_ctx
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, server_ssl)
            async with open_buffered_stream(client_ssl) as conn:
                async with trio.open_nursery() as writers:
                    for source, records in expected.items():
                        writers.start_soon(write_records, conn, records, source)
                    while len(reply_received) < len(reply):
                        reply_received += await conn.receive_some(65536)
                await conn.flush()
                stats = conn.statistics()
                assert stats.bytes_sent == stats.bytes_written == total
                assert stats.buffered == 0
                # Coalescing worked: fewer SSLStream.send_all calls than writes.
                assert stats.send_calls < stats.write_calls
                assert client_ssl.version() == _expected_version(client_ctx)
            # Leaving the block: flush, SSLStream.aclose (close_notify), close TCP.
            assert conn.state is WriterState.CLOSED
        # receive_to_eof returned: the server saw b"" after a close_notify.
    assert reply_received == reply
    check_records(received, expected)
    with pytest.raises(trio.ClosedResourceError):
        await client_transport.send_all(b"x")


async def test_writer_over_ssl_coalesces_writes_into_few_tls_records(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    with trio.fail_after(10):
        client_transport, server_transport = trio.testing.memory_stream_pair()
        counter = TLSRecordCounter(client_transport)
        client_ssl, server_ssl = ssl_pair(counter, server_transport, client_ctx, server_ctx)
        await handshake(client_ssl, server_ssl)
        received = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_to_eof, server_ssl, received)
            # One SSLStream.send_all per message: one TLS record each.
            before = counter.application_records()
            for i in range(50):
                await client_ssl.send_all(b"%09d\n" % i)
            assert counter.application_records() - before == 50
            # Through the writer, without a checkpoint in between: one record.
            async with open_buffered_stream(client_ssl) as conn:
                before = counter.application_records()
                for i in range(1000):
                    conn.write(b"%09d\n" % i)
                await conn.flush()
                assert counter.application_records() - before == 1
                assert conn.statistics().send_calls == 1
        assert received == b"".join(b"%09d\n" % i for i in [*range(50), *range(1000)])


@TRANSPORTS
async def test_send_eof_over_ssl_is_refused_and_aclose_sends_close_notify(
    make_pair: PairMaker, client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    with trio.fail_after(10):
        client_transport, server_transport = await make_pair()
        client_ssl, server_ssl = ssl_pair(
            client_transport, server_transport, client_ctx, server_ctx
        )
        received = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_to_eof, server_ssl, received)
            async with open_buffered_stream(client_ssl) as conn:
                conn.write(b"before ")
                # SSLStream has no half-close, so neither does the writer over it.
                assert not isinstance(client_ssl, trio.abc.HalfCloseableStream)
                with pytest.raises(TypeError, match="HalfCloseableStream"):
                    await conn.send_eof()
                # ... and refusing changed nothing: still open, nothing lost.
                assert conn.state is WriterState.OPEN
                conn.write(b"after")
                await conn.aclose()
                assert conn.statistics().state is WriterState.CLOSED
                with pytest.raises(trio.ClosedResourceError):
                    conn.write(b"late")
            # A second aclose (the context manager's) is a no-op.
        # The server's receive_some returned b"": a clean TLS close, not a broken one.
        assert received == b"before after"
        await server_ssl.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await client_transport.send_all(b"x")


# ----------------------------------------------------------------------
# (b) SSLStream over BufferedStream: the writer below TLS
#
# SSLStream's own send_all (records, handshake flights, close_notify) goes
# through the writer and returns once queued; the handshake, both
# directions and closing must work with that.


@TRANSPORTS
async def test_ssl_over_writer_handshakes_and_keeps_both_directions_intact(
    make_pair: PairMaker, client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    rng = random.Random(2)
    upstream = rng.randbytes(3 << 20)
    downstream = rng.randbytes(2 << 20)
    got_up = bytearray()
    got_down = bytearray()

    async def send_in_random_chunks(stream: trio.abc.SendStream, data: bytes, seed: int) -> None:
        chunk_rng = random.Random(seed)
        pos = 0
        while pos < len(data):
            size = chunk_rng.randint(1, 40_000)
            await stream.send_all(data[pos : pos + size])
            pos += size

    async def receive_exactly(stream: trio.abc.ReceiveStream, into: bytearray, size: int) -> None:
        while len(into) < size:
            into += await stream.receive_some(65536)

    with trio.fail_after(30):
        client_transport, server_transport = await make_pair()
        async with (
            open_buffered_stream(client_transport) as client_conn,
            open_buffered_stream(server_transport) as server_conn,
        ):
            client_ssl, server_ssl = ssl_pair(client_conn, server_conn, client_ctx, server_ctx)
            await handshake(client_ssl, server_ssl)
            assert client_ssl.version() == server_ssl.version() == _expected_version(client_ctx)
            assert client_ssl.getpeercert() is not None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_in_random_chunks, client_ssl, upstream, 3)
                nursery.start_soon(send_in_random_chunks, server_ssl, downstream, 4)
                nursery.start_soon(receive_exactly, server_ssl, got_up, len(upstream))
                nursery.start_soon(receive_exactly, client_ssl, got_down, len(downstream))
            # The last records may still sit in the writers' buffers: closing
            # the SSLStream must flush them, then the close_notify, then close.
            await client_ssl.send_all(b"last words")
            await client_ssl.aclose()
            assert client_conn.state is WriterState.CLOSED
            with pytest.raises(trio.ClosedResourceError):
                await client_transport.send_all(b"x")
            tail = bytearray()
            await receive_to_eof(server_ssl, tail)  # b"" after close_notify
            assert tail == b"last words"
            # Not server_ssl.aclose(): its close_notify cannot reach a peer
            # that is gone, and the writer below reports that from aclose()
            # (see test_graceful_close_after_the_peer_closed_does_not_raise).
            await trio.aclose_forcefully(server_ssl)
            assert server_conn.state is WriterState.CLOSED
    assert got_up == upstream
    assert got_down == downstream
    # Every byte the SSLStreams sent went through the writers.
    for conn in (client_conn, server_conn):
        stats = conn.statistics()
        assert stats.bytes_sent == stats.bytes_written
        assert stats.state is WriterState.CLOSED


async def check_ssl_over_writer(
    client_ctx: ssl.SSLContext,
    server_ctx: ssl.SSLContext,
    wrap: Callable[[BufferedStream], trio.abc.Stream],
) -> None:
    """trio's check_two_way_stream on SSLStream(wrap(BufferedStream(transport)))."""
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:

            async def buffered(pair: Pair) -> tuple[BufferedStream, BufferedStream]:
                a, b = BufferedStream(pair[0]), BufferedStream(pair[1])
                await nursery.start(a.run)
                await nursery.start(b.run)
                return a, b

            async def stream_maker() -> SSLPair:
                a, b = await buffered(trio.testing.memory_stream_pair())
                return ssl_pair(wrap(a), wrap(b), client_ctx, server_ctx)

            async def clogged_stream_maker() -> SSLPair:
                # As in trio's own SSLStream tests: a lockstep transport, and
                # the handshake done up front.
                a, b = await buffered(trio.testing.lockstep_stream_pair())
                client, server = ssl_pair(wrap(a), wrap(b), client_ctx, server_ctx)
                await handshake(client, server)
                # Then clog each writer: one record queued (below the default
                # high water, so send_all returns) that the lockstep transport
                # holds until the peer reads; high water 0 then makes every
                # send-side method wait for that read.  The peer's reads see
                # one stray b"-", which the clogged checks ignore.
                await client.send_all(b"-")
                await server.send_all(b"-")
                await trio.testing.wait_all_tasks_blocked()
                assert a.buffered
                assert b.buffered
                a.set_water_marks(0, 0)
                b.set_water_marks(0, 0)
                return client, server

            await trio.testing.check_two_way_stream(stream_maker, clogged_stream_maker)
            nursery.cancel_scope.cancel()


async def test_ssl_over_writer_passes_trios_two_way_stream_checks(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    # The writer is used only through send_all here, so its aclose() keeps
    # trio's semantics: SSLStream's close_notify to a peer that already left
    # does not make the graceful close raise.
    await check_ssl_over_writer(client_ctx, server_ctx, lambda conn: conn)


async def test_graceful_close_after_the_peer_closed_does_not_raise(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    # Two well-behaved TLS peers each close gracefully, one after the other.
    # Over raw transports this never raises (see trio's SSLStream.aclose).
    with trio.fail_after(10):
        client_transport, server_transport = trio.testing.memory_stream_pair()
        async with (
            open_buffered_stream(client_transport) as client_conn,
            open_buffered_stream(server_transport) as server_conn,
        ):
            client_ssl, server_ssl = ssl_pair(client_conn, server_conn, client_ctx, server_ctx)
            await handshake(client_ssl, server_ssl)
            await client_ssl.aclose()
            assert await server_ssl.receive_some() == b""
            try:
                await server_ssl.aclose()
            except trio.BrokenResourceError as exc:
                pytest.fail(f"a graceful close after the peer's raised {exc!r}")
