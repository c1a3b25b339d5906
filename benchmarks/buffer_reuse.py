"""``python -m benchmarks.buffer_reuse``: does reusing the sender's buffers pay?

The sender task swaps in a fresh ``bytearray`` for every send
(``_sender.py``).  The classic alternative keeps two buffers alternating:
the one a completed send used is cleared and becomes the next one to fill,
unless it grew past a cap.  This measures both, interleaved, in one
process: a :class:`~trio_bufwriter.BufferedWriter` over a loopback
``trio.SocketStream``, ``write(); await drain()`` of N messages, a reader
thread draining the other end; CPU seconds of the process per message.

The variant is patched in here, not in the library: it is the experiment.
(CPython's ``bytearray.clear()`` gives its memory back, so a "reused" buffer
regrows from nothing all the same; what reuse saves is the object.)
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from trio_bufwriter import BufferedWriter, open_buffered_writer
from trio_bufwriter._sender import _Sender

#: A buffer that grew past this is dropped after its send, not kept.
REUSE_CAP = 1024 * 1024
_SPARE: dict[int, bytearray] = {}
_fresh = _Sender._send_buffer


async def _reusing_send_buffer(self: Any, stream: trio.abc.SendStream) -> bool:
    """``_send_buffer`` with two buffers alternating (the experiment)."""
    buf = self._buf
    spare = _SPARE.pop(id(self), None)
    if self._probe is not None or self._segments:
        # Keep the experiment simple: the rare paths as they are.
        if spare is not None:
            _SPARE[id(self)] = spare
        done: bool = await _fresh(self, stream)
        return done
    self._buf = bytearray() if spare is None else spare
    self._inflight += len(buf)
    self._sending = True
    try:
        done = await self._send_segments(stream, [buf])
    finally:
        self._sending = False
    if done and len(buf) <= REUSE_CAP:
        # The send has completed: nothing refers to buf any more.
        buf.clear()
        _SPARE[id(self)] = buf
    return done


def _reader(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            if not sock.recv(1 << 20):
                return
        except TimeoutError:
            continue


async def _push(size: int, count: int) -> float:
    a, b = socket.socketpair()
    stop = threading.Event()
    thread = threading.Thread(target=_reader, args=(b, stop), daemon=True)
    thread.start()
    message = bytes(size)
    try:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        start = time.process_time()
        async with open_buffered_writer(stream) as writer:
            for _ in range(count):
                writer.write(message)
                await writer.drain()
            await writer.flush()
        return (time.process_time() - start) / count
    finally:
        stop.set()
        thread.join()
        b.close()


def _measure(reuse: bool, size: int, count: int) -> float:
    send_buffer: Callable[..., Awaitable[bool]] = _reusing_send_buffer if reuse else _fresh
    BufferedWriter._send_buffer = send_buffer  # type: ignore[method-assign,assignment]
    try:
        return trio.run(_push, size, count)
    finally:
        BufferedWriter._send_buffer = _fresh  # type: ignore[method-assign]


def main(rounds: int = 7) -> None:
    """Print CPU per message, fresh against reused, median of *rounds*."""
    print(f"CPU per message (process time), median of {rounds} interleaved rounds")
    for size, count in ((64, 400_000), (16384, 40_000)):
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for reuse in (False, True):
                times[reuse].append(_measure(reuse, size, count))
        fresh, reused = (statistics.median(times[k]) * 1e9 for k in (False, True))
        print(
            f"  {size:>6} B: fresh {fresh:8.0f} ns, reused {reused:8.0f} ns, "
            f"reused/fresh {reused / fresh:.3f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
