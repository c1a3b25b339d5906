"""The code paths of the platforms CI does not run on, forced on Linux.

Linux is the platform tested.  Elsewhere some of what the library uses is
missing: ``TCP_NOTSENT_LOWAT`` (Windows, older BSDs), ``os.pwritev`` (macOS
before 11), ``os.posix_fallocate`` (macOS), ``os.pwrite`` (Windows),
``sysconf("SC_IOV_MAX")``.  Each test takes one away with monkeypatch and
checks what the library does without it, through the public API where
there is one.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import trio
from fault_testing import tcp_pair

from trio_bufwriter import BufferedWriter, PositionalWriter, open_positional_writer
from trio_bufwriter._ranges import _iov_max

PAYLOAD = b"".join(b"line %d\n" % i for i in range(10_000))


async def receive_all(stream: trio.abc.ReceiveStream) -> bytes:
    received = bytearray()
    while chunk := await stream.receive_some():
        received += chunk
    return bytes(received)


@pytest.mark.parametrize("notsent_lowat", [None, 256 * 1024])
async def test_without_tcp_notsent_lowat_the_socket_is_left_alone_and_writes_arrive(
    monkeypatch: pytest.MonkeyPatch, notsent_lowat: int | None
) -> None:
    option = socket.TCP_NOTSENT_LOWAT  # Linux has it: keep it to read the socket
    monkeypatch.delattr(socket, "TCP_NOTSENT_LOWAT")
    with trio.fail_after(10):
        async with tcp_pair(small_buffers=False) as (client, server):
            before = client.getsockopt(socket.IPPROTO_TCP, option)
            async with trio.open_nursery() as nursery:
                writer = BufferedWriter(client, notsent_lowat=notsent_lowat)
                assert client.getsockopt(socket.IPPROTO_TCP, option) == before
                await nursery.start(writer.run)
                writer.write(PAYLOAD)
                await writer.send_eof()
                assert await receive_all(server) == PAYLOAD
                await writer.aclose()


async def test_without_pwritev_a_positional_writer_writes_a_run_one_piece_a_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "pwritev")
    path = tmp_path / "out.bin"
    pieces = [bytes([i]) * 100 for i in range(200)]
    with trio.fail_after(10):
        async with open_positional_writer(path) as writer:
            # In one tick, in reverse: one batch, one run of 200 buffers.
            for index in reversed(range(len(pieces))):
                writer.write_at(index * 100, pieces[index])
            await writer.flush()
            stats = writer.statistics()
    assert path.read_bytes() == b"".join(pieces)
    assert stats.runs == 1
    assert stats.syscalls == len(pieces)  # pwritev would have taken one
    assert stats.bytes_written == 200 * 100


async def test_without_posix_fallocate_preallocate_is_skipped_and_writes_go_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "posix_fallocate")
    path = tmp_path / "out.bin"
    with trio.fail_after(10):
        async with open_positional_writer(path, preallocate=1 << 20) as writer:
            assert os.fstat(writer.fd).st_size == 0  # nothing reserved
            writer.write_at(10, b"x")
    assert path.read_bytes() == bytes(10) + b"x"


async def test_without_pwrite_a_positional_writer_is_refused_before_anything_opens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "pwrite")
    path = tmp_path / "out.bin"
    with pytest.raises(NotImplementedError, match=r"os\.pwrite"):
        open_positional_writer(path)
    with pytest.raises(NotImplementedError, match=r"os\.pwrite"):
        PositionalWriter(0)
    assert not path.exists()


@pytest.mark.parametrize(
    "sysconf_error", [AttributeError, ValueError("unknown name"), OSError(22, "EINVAL")]
)
def test_without_sc_iov_max_a_run_gathers_at_most_posix_16_buffers(
    monkeypatch: pytest.MonkeyPatch, sysconf_error: BaseException | type[BaseException]
) -> None:
    def sysconf(name: str) -> int:
        raise sysconf_error

    monkeypatch.setattr(os, "sysconf", sysconf)
    assert _iov_max() == 16


def test_an_unknown_iov_max_is_posix_16(monkeypatch: pytest.MonkeyPatch) -> None:
    # sysconf says -1 where there is no limit it knows of.
    monkeypatch.setattr(os, "sysconf", lambda name: -1)
    assert _iov_max() == 16
