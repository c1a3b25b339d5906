"""Test doubles and helpers shared by the BufferedWriter test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import trio
import trio.testing

from trio_bufwriter import BufferedStream, BufferedWriter

W = TypeVar("W", BufferedWriter, BufferedStream)


class ControlledStream(trio.abc.HalfCloseableStream):
    """A half-closeable stream that a test drives by hand.

    * Every ``send_all`` is recorded in :attr:`calls` (a copy of its bytes)
      as soon as it starts.
    * While :attr:`stalled`, each ``send_all`` then waits until the test
      calls :meth:`release` (one permit per call) or :meth:`unstall`.
    * If :attr:`fail_with` is set, a released ``send_all`` raises it.
    * Bytes of the calls that returned normally go to :attr:`accepted`.
    * Closing wakes a stalled ``send_all`` with ClosedResourceError, as trio's
      stream contract asks, unless :attr:`complete_after_close` is set.
    * :attr:`events` logs ``"send <n>"``, ``"eof"`` and ``"close"`` in order.
    """

    def __init__(self, *, stalled: bool = False) -> None:
        self.calls: list[bytes] = []
        self.accepted = bytearray()
        self.events: list[str] = []
        self.stalled = stalled
        self.fail_with: BaseException | None = None
        self.complete_after_close = False
        self.eof_stalled = False
        self.eof_fail_with: BaseException | None = None
        self.eof_calls = 0
        self.eof_sent = False
        self.close_calls = 0
        self.sending = False
        self._permits = 0
        self._lot = trio.lowlevel.ParkingLot()

    @property
    def closed(self) -> bool:
        return self.close_calls > 0

    def release(self, n: int = 1) -> None:
        """Let *n* stalled (or future) ``send_all`` calls complete."""
        self._permits += n
        self._lot.unpark_all()

    def unstall(self) -> None:
        self.stalled = False
        self._lot.unpark_all()

    def release_eof(self) -> None:
        self.eof_stalled = False
        self._lot.unpark_all()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise trio.ClosedResourceError("ControlledStream is closed")
        chunk = bytes(data)
        self.calls.append(chunk)
        self.sending = True
        try:
            await trio.lowlevel.checkpoint()
            while self.stalled:
                if self._permits:
                    self._permits -= 1
                    break
                if self.closed and not self.complete_after_close:
                    break
                await self._lot.park()
            if self.closed and not self.complete_after_close:
                raise trio.ClosedResourceError("ControlledStream closed during send_all")
            if self.fail_with is not None:
                raise self.fail_with
            self.accepted += chunk
            self.events.append(f"send {len(chunk)}")
        finally:
            self.sending = False

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        if self.closed:
            raise trio.ClosedResourceError("ControlledStream is closed")
        self.eof_calls += 1
        await trio.lowlevel.checkpoint()
        while self.eof_stalled and not self.closed:
            await self._lot.park()
        if self.closed and not self.complete_after_close:
            raise trio.ClosedResourceError("ControlledStream closed during send_eof")
        if self.eof_fail_with is not None:
            raise self.eof_fail_with
        self.eof_sent = True
        self.events.append("eof")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        return b""

    async def aclose(self) -> None:
        self.close_calls += 1
        self.events.append("close")
        self._lot.unpark_all()
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def running(writer: W) -> AsyncIterator[trio.Nursery]:
    """Run *writer*'s sender in a nursery for the duration of the block.

    When the block ends the nursery is cancelled, so a test never hangs on a
    sender it did not close; tests that check how the sender ends use a
    nursery of their own instead.
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        yield nursery
        nursery.cancel_scope.cancel()


async def settle() -> None:
    """Let every other task run until all are blocked."""
    await trio.testing.wait_all_tasks_blocked()
