"""An echo server: every byte a client sends comes straight back to it.

Run ``python examples/echo_server.py --port 7000``, then ``nc 127.0.0.1 7000``.
It prints the port it listens on first (handy with ``--port 0``).
"""

from __future__ import annotations

import argparse
import signal
from functools import partial

import trio

from trio_bufwriter import open_buffered_stream


async def echo(stream: trio.SocketStream) -> None:
    """Send back everything received on *stream* until the client stops sending."""
    try:
        async with open_buffered_stream(stream) as conn:
            async for chunk in conn:  # reads pass straight through
                conn.write(chunk)  # queued at once: write() never blocks
                # Backpressure: a client that sends but never reads must not
                # make us buffer without bound.  Below the high-water mark
                # this returns at once, so a burst of echoes still coalesces.
                await conn.drain()
        # Leaving the block sent whatever was still queued, then closed.
    except trio.BrokenResourceError:
        pass  # The client vanished mid-conversation: nobody is left to tell.


async def serve(port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve :func:`echo` on 127.0.0.1:*port*; ``nursery.start`` returns the real port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo, port, host="127.0.0.1"))
        task_status.started(listeners[0].socket.getsockname()[1])


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        print(await nursery.start(serve, port), flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:  # wait for Ctrl-C
                break
        # Cancelling makes every open_buffered_stream close its connection at once.
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="An echo server on trio_bufwriter.")
    parser.add_argument("--port", type=int, default=7000, help="0 picks a free one")
    trio.run(main, parser.parse_args().port)
