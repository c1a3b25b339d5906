"""PositionalWriter failures: real failing files, sticky errors, the unwritten ranges."""

from __future__ import annotations

import errno
import json
import os
import resource
import sys
import textwrap
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_bufwriter import (
    PositionalWriteError,
    PositionalWriter,
    WriterState,
    open_positional_writer,
)
from trio_bufwriter import _positional as positional_module
from trio_bufwriter import _pwrite as pwrite_module
from trio_bufwriter._pwrite import write_runs
from trio_bufwriter._ranges import Run

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


def _dev_full() -> int:
    return os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)


@needs_dev_full
async def test_a_full_disk_breaks_the_writer_with_the_unwritten_ranges() -> None:
    fd = _dev_full()
    try:
        with trio.fail_after(10):
            async with open_positional_writer(fd) as writer:
                writer.write_at(100, b"x" * 50)
                writer.write_at(0, b"y" * 10)
                with pytest.raises(PositionalWriteError) as caught:
                    await writer.flush()
                error = caught.value
                assert isinstance(error, trio.BrokenResourceError)
                assert isinstance(error.__cause__, OSError)
                assert error.__cause__.errno == errno.ENOSPC
                # Two runs; the first failed, so the second was not tried.
                assert error.unwritten == [(0, 10), (100, 150)]
                assert "60 bytes in 2 ranges not written: [0, 10), [100, 150)" in str(error)
                assert writer.state is WriterState.BROKEN
                # Sticky: every later call raises the same failure.
                with pytest.raises(PositionalWriteError) as again:
                    writer.write_at(0, b"z")
                assert again.value.__cause__ is error.__cause__
                assert again.value.unwritten == error.unwritten
                with pytest.raises(PositionalWriteError):
                    await writer.drain()
                stats = writer.statistics()
                assert stats.error == f"{error}: OSError: {error.__cause__}"
                assert stats.bytes_written == 0
                assert stats.pending == 0
                assert stats.syscalls == 1  # the one that failed
                assert stats.runs == 0
    finally:
        os.close(fd)


@needs_dev_full
async def test_failure_says_why_the_writer_broke_without_reporting_it() -> None:
    fd = _dev_full()
    try:
        with trio.fail_after(10):
            writer = PositionalWriter(fd)
            # The owner returns once the writer is broken.  (Not
            # wait_all_tasks_blocked: the owner waiting for its worker
            # thread counts as blocked.)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                assert writer.failure is None
                writer.write_at(3, b"abc")
            failure = writer.failure
            assert isinstance(failure, PositionalWriteError)
            assert failure.unwritten == [(3, 6)]
            assert isinstance(failure.__cause__, OSError)
            assert failure.__cause__.errno == errno.ENOSPC
            # Reading it reported nothing: aclose still raises it.
            with pytest.raises(PositionalWriteError) as caught:
                await writer.aclose()
            assert caught.value.__cause__ is failure.__cause__
            assert writer.state is WriterState.CLOSED
            assert writer.failure is not None
    finally:
        os.close(fd)


async def test_failure_is_none_for_a_writer_closed_normally(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_positional_writer(tmp_path / "out.bin") as writer:
            writer.write_at(0, b"fine")
            await writer.flush()
            assert writer.failure is None
    assert writer.state is WriterState.CLOSED
    assert writer.failure is None
    assert writer.statistics().error is None


@needs_dev_full
async def test_an_unreported_failure_comes_out_of_the_async_with_as_itself() -> None:
    fd = _dev_full()
    try:

        async def write_without_looking() -> None:
            async with open_positional_writer(fd) as writer:
                writer.write_at(0, b"x")

        with trio.fail_after(10), pytest.raises(PositionalWriteError) as caught:
            await write_without_looking()
        assert caught.value.unwritten == [(0, 1)]
    finally:
        os.close(fd)


@needs_dev_full
async def test_pieces_queued_behind_a_failure_are_listed_as_unwritten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from positional_testing import gated_trips

    fd = _dev_full()
    try:
        with trio.fail_after(10), gated_trips(monkeypatch) as gate:
            async with open_positional_writer(fd) as writer:
                writer.write_at(0, b"a")
                await gate.wait_entered()
                writer.write_at(5, b"bb")
                gate.release()
                with pytest.raises(PositionalWriteError) as caught:
                    await writer.flush()
                assert caught.value.unwritten == [(0, 1), (5, 7)]
    finally:
        os.close(fd)


async def test_a_descriptor_that_is_not_open_fails_with_ebadf() -> None:
    # Not a closed descriptor of our own: another thread could reuse its
    # number.  No descriptor can be open at the hard limit or above.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    fd = hard if 0 < hard < 1 << 30 else (1 << 30)

    async def write_to_it() -> None:
        async with open_positional_writer(fd) as writer:
            writer.write_at(0, b"x")
            await writer.flush()

    with trio.fail_after(10), pytest.raises(PositionalWriteError) as caught:
        await write_to_it()
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.EBADF


async def test_an_fsync_failure_is_sticky_and_names_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(pwrite_module.os, "fsync", failing_fsync)
    with trio.fail_after(10):
        async with open_positional_writer(tmp_path / "f") as writer:
            writer.write_at(0, b"x")
            with pytest.raises(PositionalWriteError, match="fsync failed") as caught:
                await writer.flush(fsync=True)
            assert caught.value.unwritten == []
            assert writer.statistics().bytes_written == 1
            with pytest.raises(PositionalWriteError, match="fsync failed"):
                writer.write_at(1, b"y")


_EFBIG_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import trio
    from trio_bufwriter import PositionalWriteError, open_positional_writer

    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    async def main():
        try:
            async with open_positional_writer(sys.argv[1]) as writer:
                writer.write_at((1 << 20) - 100, b"a" * 300)  # crosses the limit
                writer.write_at(5 << 20, b"b" * 10)  # wholly past it
        except PositionalWriteError as exc:
            print(json.dumps({"errno": exc.__cause__.errno, "unwritten": exc.unwritten}))

    trio.run(main)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE semantics are Linux's")
async def test_a_file_size_limit_fails_with_efbig_after_a_short_write(tmp_path: Path) -> None:
    target = tmp_path / "limited.bin"
    result = await trio.run_process(
        [sys.executable, "-c", _EFBIG_SCRIPT, str(target)],
        capture_stdout=True,
        capture_stderr=True,
    )
    report = json.loads(result.stdout)
    assert report["errno"] == errno.EFBIG
    # The first 100 bytes fit under the limit: a short write, then EFBIG.
    assert report["unwritten"] == [[1 << 20, (1 << 20) + 200], [5 << 20, (5 << 20) + 10]]
    assert target.stat().st_size == 1 << 20
    assert target.read_bytes()[-100:] == b"a" * 100


# ----------------------------------------------------------------------
# The worker-thread side, with the kernel's answers made up


def _runs(*pieces: tuple[int, bytes]) -> list[Run]:
    runs = []
    for offset, data in pieces:
        run = Run(offset)
        run.buffers.append(memoryview(data))
        run.length = len(data)
        runs.append(run)
    return runs


def test_short_writes_are_continued_to_the_last_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pwrite_module._pwritev

    def one_byte_at_a_time(fd: int, buffers: list[memoryview], offset: int) -> int:
        return real(fd, [buffers[0][:1]], offset)

    monkeypatch.setattr(pwrite_module, "_pwritev", one_byte_at_a_time)
    run = Run(0, [memoryview(b"ab"), memoryview(b"cde")], 5)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    try:
        outcome = write_runs(fd, [run, *_runs((10, b"fg"))], sync=False)
        assert outcome.error is None
        assert outcome.syscalls == 7
        assert outcome.bytes_written == 7
        assert os.pread(fd, 12, 0) == b"abcde" + bytes(5) + b"fg"
    finally:
        os.close(fd)


def test_a_write_that_makes_no_progress_is_an_error_not_a_spin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pwrite_module, "_pwritev", lambda fd, buffers, offset: 0)
    outcome = write_runs(-1, _runs((3, b"abc")), sync=False)
    assert isinstance(outcome.error, OSError)
    assert outcome.error.errno == errno.EIO
    assert outcome.unwritten == [(3, 6)]
    assert outcome.syscalls == 1


def test_a_bool_is_not_a_file_descriptor() -> None:
    with pytest.raises(TypeError, match="bool"):
        PositionalWriter(True)


async def test_a_trip_that_raises_breaks_the_writer_and_lists_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_trip(fd: int, runs: list[Run], sync: bool, datasync: bool) -> None:
        raise RuntimeError("a bug in the worker thread")

    monkeypatch.setattr(positional_module, "write_runs", broken_trip)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC)
    writer = PositionalWriter(fd, close_fd=True)

    async def run_it() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            writer.write_at(0, b"abc")

    with trio.fail_after(10), pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="a bug")):
        await run_it()
    assert writer.state is WriterState.BROKEN
    # Nothing of the batch is recorded as written: it is all listed.
    with pytest.raises(PositionalWriteError, match="owner task") as caught:
        await writer.aclose()
    assert caught.value.unwritten == [(0, 3)]
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert writer.statistics().bytes_written == 0


async def test_a_failing_close_is_reported_by_aclose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_close = os.close
    ours: list[int] = []

    def close_then_fail(fd: int) -> None:
        real_close(fd)
        if fd in ours:
            raise OSError(errno.EIO, "simulated write-back error on close")

    monkeypatch.setattr(os, "close", close_then_fail)
    writers: list[PositionalWriter] = []

    async def write_one_byte() -> None:
        async with open_positional_writer(tmp_path / "f") as writer:
            writers.append(writer)
            ours.append(writer.fd)
            writer.write_at(0, b"x")

    with trio.fail_after(10), pytest.raises(PositionalWriteError, match="close failed") as caught:
        await write_one_byte()
    writer = writers[0]
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.unwritten == []
    assert writer.state is WriterState.CLOSED


async def test_the_blocks_exception_is_not_masked_by_a_failing_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_close = os.close
    ours: list[int] = []

    def close_then_fail(fd: int) -> None:
        real_close(fd)
        if fd in ours:
            raise OSError(errno.EIO, "simulated write-back error on close")

    monkeypatch.setattr(os, "close", close_then_fail)
    writers: list[PositionalWriter] = []

    async def body() -> None:
        async with open_positional_writer(tmp_path / "f") as writer:
            writers.append(writer)
            ours.append(writer.fd)
            writer.write_at(0, b"x")
            raise KeyError("from the block")

    with trio.fail_after(10), pytest.raises(KeyError, match="from the block") as caught:
        await body()
    assert caught.value.__context__ is None
    assert writers[0].state is WriterState.CLOSED


async def test_a_failed_preallocate_is_not_masked_by_a_failing_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_close = os.close

    def fallocate(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "simulated full disk")

    def close_then_fail(fd: int) -> None:
        real_close(fd)
        raise OSError(errno.EIO, "simulated write-back error on close")

    monkeypatch.setattr(os, "posix_fallocate", fallocate, raising=False)
    monkeypatch.setattr(os, "close", close_then_fail)
    with trio.fail_after(10), pytest.raises(OSError, match="simulated full disk"):
        async with open_positional_writer(tmp_path / "f", preallocate=100):
            raise AssertionError("the block must not run")  # pragma: no cover


async def test_entering_open_positional_writer_twice_is_a_clear_runtime_error(
    tmp_path: Path,
) -> None:
    manager = open_positional_writer(tmp_path / "f")
    with trio.fail_after(10):
        async with manager as writer:
            writer.write_at(0, b"x")
        with pytest.raises(RuntimeError, match=r"only be entered once.*open_positional_writer\("):
            async with manager:
                raise AssertionError("the block must not run")  # pragma: no cover
    assert (tmp_path / "f").read_bytes() == b"x"


@pytest.mark.parametrize("close_fd", [False, True])
def test_an_append_mode_descriptor_is_refused_and_left_open(tmp_path: Path, close_fd: bool) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC)
    try:
        with pytest.raises(ValueError, match=r"O_APPEND.*without append mode"):
            PositionalWriter(fd, close_fd=close_fd)
        os.fstat(fd)  # still open: a constructor that raises leaves it to the caller
    finally:
        os.close(fd)


def test_open_positional_writer_refuses_an_append_mode_descriptor_when_called(
    tmp_path: Path,
) -> None:
    with open(tmp_path / "f", "ab") as file:
        with pytest.raises(ValueError, match="O_APPEND"):
            open_positional_writer(file.fileno())
        file.write(b"still usable")
    assert (tmp_path / "f").read_bytes() == b"still usable"


async def test_an_interrupted_owner_breaks_the_writer_without_a_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted_trip(fd: int, runs: list[Run], sync: bool, datasync: bool) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(positional_module, "write_runs", interrupted_trip)
    writer = PositionalWriter(os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT), close_fd=True)
    caught: BaseException | None = None
    with trio.fail_after(10):
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                writer.write_at(0, b"abc")
        except BaseException as exc:  # (caught here: pytest must not see it)
            caught = exc
        assert isinstance(caught, BaseExceptionGroup)
        assert caught.split(KeyboardInterrupt)[1] is None
        with pytest.raises(
            PositionalWriteError, match="the PositionalWriter's owner task was interrupted"
        ) as error:
            await writer.aclose()
    assert error.value.__cause__ is None
    assert error.value.unwritten == [(0, 3)]
