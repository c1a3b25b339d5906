"""A counting TCP receiver in a process of its own, for demos and benchmarks.

The receiver is deliberately dull: plain blocking sockets, one connection at a
time, ``recv_into`` a preallocated 1 MiB buffer until end-of-file.  Running it
in a separate process (started with "spawn", so it shares neither the GIL nor
any state with the sender) means the sender's numbers measure the sender.

Two options serve the benchmarks: ``cpu`` pins the process to one CPU, and
``echo`` makes it an echo peer (it sends back every byte it reads, with
``TCP_NODELAY`` set, and counts them the same way) for ping-pong latency.

The protocol over the control pipe, parent to receiver::

    receiver -> parent   the listening port (int), once, at start-up
    parent -> receiver   True: accept the next connection and count its bytes
    receiver -> parent   the byte count (int), after that connection's EOF
    parent -> receiver   None (or closing the pipe): exit

The parent sends True *before* connecting; the listen backlog holds the
connection until the receiver gets to ``accept``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, final

import trio

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

#: The size of the receiver's one read buffer.
RECV_BUFFER_SIZE = 1024 * 1024

# How long either side waits for the other before giving up.  The receiver
# only waits for a connection the parent has just promised, and the parent
# only waits for a count after it has closed its end, so these are generous.
_ACCEPT_TIMEOUT = 60.0
_REPLY_TIMEOUT = 60.0


class ReceiverError(Exception):
    """The receiver process died, or did not answer in time."""


def _count_until_eof(sock: socket.socket, buffer: bytearray) -> int:
    """Read *sock* into *buffer* until end-of-file; return the number of bytes read."""
    total = 0
    with memoryview(buffer) as view:
        while True:
            received = sock.recv_into(view)
            if not received:
                return total
            total += received


def _echo_until_eof(sock: socket.socket, buffer: bytearray) -> int:
    """Send back everything read from *sock* until end-of-file; return the byte count."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    total = 0
    with memoryview(buffer) as view:
        while True:
            received = sock.recv_into(view)
            if not received:
                return total
            sock.sendall(view[:received])
            total += received


def _receiver_main(
    conn: Connection[int, bool | None], cpu: int | None = None, echo: bool = False
) -> None:
    """Run the receiver: the target of the receiver process.

    Pins itself to *cpu* if given, listens on an ephemeral port of
    127.0.0.1, sends the port over *conn*, then, for every True received on
    *conn*, accepts one connection, reads it to end-of-file (echoing it back
    if *echo*) and sends back how many bytes it got.  Returns on None or
    when the parent closes its end of *conn*.
    """
    # The parent decides when this process ends (and Ctrl-C reaches both).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    serve = _echo_until_eof if echo else _count_until_eof
    buffer = bytearray(RECV_BUFFER_SIZE)
    with conn, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(_ACCEPT_TIMEOUT)
        conn.send(listener.getsockname()[1])
        while True:
            try:
                command = conn.recv()
            except EOFError:
                return
            if not command:
                return
            sock, _ = listener.accept()
            with sock:
                sock.settimeout(None)
                conn.send(serve(sock, buffer))


@final
class LoopbackReceiver:
    """The parent's handle on a running receiver process; see :func:`start_receiver`."""

    __slots__ = ("_conn", "_process", "port")

    def __init__(self, process: BaseProcess, conn: Connection[bool | None, int]) -> None:
        self._process = process
        self._conn = conn
        #: The port the receiver listens on, on 127.0.0.1.
        self.port = self._recv_int()

    def expect_connection(self) -> None:
        """Tell the receiver to accept (and count) the next connection."""
        try:
            self._conn.send(True)
        except OSError as exc:
            raise ReceiverError(self._died_message()) from exc

    async def receive_count(self) -> int:
        """Wait for the byte count of the connection that was just closed."""
        return await trio.to_thread.run_sync(self._recv_int, abandon_on_cancel=True)

    def wait_count(self) -> int:
        """Block until the byte count of the connection that was just closed arrives.

        For benchmarks that time the whole exchange from any event loop (or
        none): it costs no thread hop, but blocks the caller's loop meanwhile.
        """
        return self._recv_int()

    def close(self) -> None:
        """Ask the receiver to exit, and make sure it has."""
        with suppress(OSError):  # it may be gone already
            self._conn.send(None)
        self._conn.close()
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()

    def _recv_int(self) -> int:
        """Receive one int from the receiver, or raise :exc:`ReceiverError`."""
        try:
            if not self._conn.poll(_REPLY_TIMEOUT):
                raise ReceiverError(f"the receiver did not answer within {_REPLY_TIMEOUT:g} s")
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            raise ReceiverError(self._died_message()) from exc

    def _died_message(self) -> str:
        self._process.join(1)
        return f"the receiver process died (exit code {self._process.exitcode})"


@contextmanager
def start_receiver(*, cpu: int | None = None, echo: bool = False) -> Iterator[LoopbackReceiver]:
    """Start a receiver process; yield a :class:`LoopbackReceiver` for it; stop it on exit.

    Blocks until the receiver is listening.  With *cpu*, the process pins
    itself to that CPU; with *echo*, it echoes what it reads (and still
    reports the byte count of each connection).
    """
    context = multiprocessing.get_context("spawn")
    parent_conn, child_conn = context.Pipe()
    process = context.Process(
        target=_receiver_main,
        args=(child_conn, cpu, echo),
        name=f"trio_bufwriter loopback {'echo peer' if echo else 'receiver'}",
        daemon=True,
    )
    process.start()
    # Only the child may hold its end now, so that its death reads as EOF here.
    child_conn.close()
    try:
        receiver = LoopbackReceiver(process, parent_conn)
    except BaseException:
        parent_conn.close()
        process.terminate()
        process.join()
        raise
    try:
        yield receiver
    finally:
        receiver.close()
