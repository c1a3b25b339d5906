"""What the benchmark's server scripts share: the examples' code, ``--port``,
and serving on trio or asyncio until SIGTERM or SIGINT.

Every script prints the port it listens on as its first line on stdout, as
the examples do, so the driver can start them all with ``--port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Protocol

import trio

from trio_bufwriter import FrameTooLargeError
from trio_bufwriter._parse import Parser, parse_buffered
from trio_bufwriter._receive_buffer import ReceiveBuffer

#: The repository's root, which holds ``examples/``.
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: The most bytes asked of the socket in one receive (the examples' size).
RECEIVE_SIZE = 64 * 1024


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as the module ``<name>_example``, unchanged.

    The variants share the examples' parser and commands this way rather
    than by a copy, so they differ only in how they send.
    """
    module_name = f"{name}_example"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: dataclasses look their module up.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def parse_arguments(description: str) -> argparse.Namespace:
    """Parse ``--port`` (0 picks a free one) and ``--host``, as the examples take them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    return parser.parse_args()


class Executes(Protocol):
    """What :class:`RespCommands` needs of the example's ``RespServer``."""

    def execute(self, arguments: list[bytes]) -> bytes: ...


class RespCommands:
    """The commands received on one RESP connection, answered by the example's code.

    :meth:`replies` takes what one receive gave and yields the reply to each
    complete command in it, in order, using ``parse_command`` and
    ``RespServer.execute`` from ``examples/resp_server.py``.  A partial
    command is kept for the next receive.

    The example parses with ``receive_parsed(parse_command, MAX_COMMAND)``;
    this runs the same parser over the same receive buffer, sans-IO (the
    library's private ``ReceiveBuffer`` and ``parse_buffered``), so that
    every variant parses exactly as the example does and they differ only
    in how they receive and send.
    """

    def __init__(self, example: ModuleType, server: Executes) -> None:
        self._parse: Parser[list[bytes]] = example.parse_command
        self._max_frame: int = example.MAX_COMMAND
        self._protocol_errors: tuple[type[Exception], ...] = (
            example.ProtocolError,
            FrameTooLargeError,
        )
        self._error: Callable[[str], bytes] = example.error
        self._execute = server.execute
        self._buffer = ReceiveBuffer()
        #: Set after a protocol error: its reply was the last one, close now.
        self.closing = False

    def replies(self, data: bytes) -> Iterator[bytes]:
        """Yield the replies to the complete commands in what was received so far."""
        buffer = self._buffer
        buffer.feed(data)
        execute = self._execute
        while buffer:
            try:
                commands, _ = parse_buffered(buffer, self._parse, self._max_frame)
            except self._protocol_errors as exc:
                self.closing = True
                yield self._error(f"ERR Protocol error: {exc}")
                return
            if not commands:
                return
            for arguments in commands:
                if arguments:
                    yield execute(arguments)


def serve_trio(
    handler: Callable[[trio.SocketStream], Awaitable[None]], host: str, port: int
) -> None:
    """Serve *handler* on trio at *host*:*port*; print the port; stop on SIGTERM/SIGINT."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, handler, port, host=host))
            print(listeners[0].socket.getsockname()[1], flush=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()

    trio.run(main)


StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve_asyncio(handler: StreamHandler, host: str, port: int) -> None:
    """Serve *handler* with asyncio streams at *host*:*port*; print the port;
    return on SIGTERM/SIGINT.  Run it with ``asyncio.run`` or ``uvloop.run``."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncio.start_server(handler, host, port)
    async with server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await stop.wait()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close an asyncio connection, ignoring a client that is already gone."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
