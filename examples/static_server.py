"""A static-file HTTP/1.1 server on h11: files go out with ``write_file()``.

Run it, then ask it for files under the folder it serves::

    python examples/static_server.py --root ./public --port 8080
    curl -i http://127.0.0.1:8080/index.html
    curl -i -r 0-99 http://127.0.0.1:8080/big.bin     # a Range: 206
    curl -I http://127.0.0.1:8080/big.bin              # HEAD

The first line it prints on stdout is the port it listens on (handy with
``--port 0``); a line per connection goes to stderr.  Ctrl-C stops it.

``GET`` and ``HEAD`` of a regular file under the root answer 200 with a
``Content-Length``, or 206 for a single satisfiable ``Range: bytes=...``
(416 for one past the end; several ranges get the whole file, as the RFC
allows).  A path that leaves the root (``..``, a symbolic link pointing
out of it) gets a 403, a missing file or a folder a 404, another method a
405.  Connections are kept alive.

The response's head is written with ``write()`` and its body with
``write_file()``: over a plain socket the file is handed to the kernel
with ``sendfile(2)`` and never passes through Python.  h11 still frames the
response: :meth:`h11.Connection.send_with_data_passthrough` is given a
placeholder that only has a length (h11's documented way to use
``sendfile``), and hands it back among the pieces to write.  Both go out
in order, the head and the file together, and ``drain()`` after each
response keeps a slow client from having more than the high-water mark of
file bytes queued ahead of it.
"""

from __future__ import annotations

import argparse
import email.utils
import mimetypes
import os
import signal
import sys
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO, TextIO
from urllib.parse import unquote

import h11
import trio

from trio_bufwriter import BufferedStream, aclose_lingering, open_buffered_stream

#: After a response on a connection the server then closes, how long it
#: waits for the client to close its side (see aclose_lingering).
LINGER_SECONDS = 5.0
_TEXT = b"text/plain; charset=utf-8"


class FileBody:
    """A placeholder for h11: *length* bytes of a file, to be sent by ``write_file()``."""

    def __init__(self, file: BinaryIO, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length

    def __len__(self) -> int:
        return self.length


def parse_range(header: bytes, size: int) -> tuple[int, int] | bool | None:
    """The (first, last) bytes a ``Range`` header asks for in a file of *size* bytes.

    Returns None to serve the whole file (no usable single byte range: a
    syntax this server ignores, or several ranges), or False when the range
    is unsatisfiable (416).
    """
    unit, _, spec = header.strip().partition(b"=")
    if unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition(b"-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if not first_text:  # bytes=-N: the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and not last_text.isdigit():
        return None
    if last_text and int(last_text) < first:
        return None  # a syntactically invalid range is ignored (RFC 9110, 14.1.2)
    if first >= size:
        return False
    last = min(int(last_text), size - 1) if last_text else size - 1
    return first, last


class StaticServer:
    """Serves the files under *root*; counts connections and requests."""

    def __init__(self, root: Path, *, log: TextIO | None = None) -> None:
        self.root = root.resolve(strict=True)
        self.log = sys.stderr if log is None else log
        self.connections = 0
        self.requests = 0

    def resolve(self, target: bytes) -> Path | int:
        """The file *target* names under the root, or the status to answer
        (403 for a path that leaves the root, 404 for no such file)."""
        path = target.partition(b"?")[0]
        if not path.startswith(b"/"):
            return 404  # absolute-form or "*": not a path under the root
        text = unquote(path.decode("utf-8", "replace"))
        if "\0" in text:
            return 404
        parts = [part for part in text.split("/") if part not in ("", ".")]
        if ".." in parts:
            return 403
        candidate = self.root.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return 404
        if not resolved.is_relative_to(self.root):
            return 403  # a symbolic link pointing out of the root
        if not resolved.is_file():
            return 404
        return resolved

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one client connection, from its first request to its close."""
        self.connections += 1
        number = self.connections
        try:
            async with open_buffered_stream(stream) as conn:
                await self.serve_connection(conn, h11.Connection(h11.SERVER))
        except trio.BrokenResourceError as exc:
            print(f"connection {number}: broken ({exc})", file=self.log, flush=True)
        else:
            stats = conn.statistics()
            print(
                f"connection {number}: {stats.bytes_sent} bytes in {stats.send_calls} sends",
                file=self.log,
                flush=True,
            )

    async def serve_connection(self, conn: BufferedStream, http: h11.Connection) -> None:
        """Answer requests until the client closes, asks us to, or breaks the protocol."""
        while True:
            try:
                event = await self.next_event(conn, http)
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request), event
                # A body is not expected; read past it if there is one.
                while True:
                    rest = await self.next_event(conn, http)
                    if isinstance(rest, h11.EndOfMessage):
                        break
                    if isinstance(rest, h11.ConnectionClosed):
                        return
            except h11.RemoteProtocolError as exc:
                if http.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    self.respond(conn, http, exc.error_status_hint, b"bad request\n", close=True)
                await aclose_lingering(conn, LINGER_SECONDS)
                return
            self.answer(conn, http, event)
            await conn.drain()
            self.requests += 1
            if http.our_state is h11.MUST_CLOSE:
                await aclose_lingering(conn, LINGER_SECONDS)
                return
            http.start_next_cycle()

    @staticmethod
    async def next_event(conn: BufferedStream, http: h11.Connection) -> h11.Event:
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(bytes(await conn.receive_some()))
            else:
                assert isinstance(event, h11.Event), event
                return event

    def reply(self, request: h11.Request) -> Reply:
        """What to answer *request* with (sans-IO: the caller sends it, and
        closes its file)."""
        head = request.method == b"HEAD"
        if request.method != b"GET" and not head:
            return Reply(405, b"use GET or HEAD\n", [(b"Allow", b"GET, HEAD")])
        found = self.resolve(request.target)
        if isinstance(found, int):
            return Reply(found, HTTPStatus(found).phrase.encode() + b"\n", head=head)
        try:
            file = found.open("rb")
        except OSError:
            return Reply(404, b"Not Found\n", head=head)
        size = os.fstat(file.fileno()).st_size
        status, first, length = 200, 0, size
        headers = [(b"Accept-Ranges", b"bytes")]
        ranges = dict(request.headers).get(b"range")
        if ranges is not None:
            wanted = parse_range(ranges, size)
            if wanted is False:
                file.close()
                headers.append((b"Content-Range", b"bytes */%d" % size))
                return Reply(416, b"Range Not Satisfiable\n", headers, head=head)
            if isinstance(wanted, tuple):
                first, last = wanted
                status, length = 206, last - first + 1
                headers.append((b"Content-Range", b"bytes %d-%d/%d" % (first, last, size)))
        kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return Reply(
            status, b"", headers, head=head, kind=kind.encode(), file=FileBody(file, first, length)
        )

    def answer(self, conn: BufferedStream, http: h11.Connection, request: h11.Request) -> None:
        """Write the response to *request* (sent at the next drain or receive)."""
        reply = self.reply(request)
        # One cork: the head, the file and the end leave together, in order.
        with conn.corked():
            conn.write(start_response(http, reply))
            body = reply.file
            if body is None:
                if not reply.head:
                    conn.write(http.send(h11.Data(data=reply.body)) or b"")
            else:
                with body.file:
                    if not reply.head and body.length:
                        for piece in send_file_body(http, body):
                            if piece is body:
                                # The descriptor is duplicated: closing the
                                # file at the end of this block is safe.
                                conn.write_file(body.file, body.offset, body.length)
                            else:
                                conn.write(piece)  # type: ignore[arg-type]
            conn.write(http.send(h11.EndOfMessage()) or b"")

    def respond(
        self,
        conn: BufferedStream,
        http: h11.Connection,
        status: int,
        body: bytes,
        *,
        close: bool = False,
    ) -> None:
        """Write a whole short response."""
        with conn.corked():
            conn.write(start_response(http, Reply(status, body, close=close)))
            conn.write(http.send(h11.Data(data=body)) or b"")
            conn.write(http.send(h11.EndOfMessage()) or b"")


@dataclass
class Reply:
    """A response, decided: its status, its headers and its body (bytes, or a file's region)."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: A HEAD request: the same headers, no body.
    head: bool = False
    kind: bytes = _TEXT
    close: bool = False
    #: The body, when it is (part of) a file; the file is the caller's to close.
    file: FileBody | None = None

    @property
    def length(self) -> int:
        return len(self.body) if self.file is None else self.file.length


def start_response(http: h11.Connection, reply: Reply) -> bytes:
    """The status line and headers of *reply*, through *http*."""
    headers = [
        (b"Date", email.utils.formatdate(usegmt=True).encode()),
        (b"Server", b"trio_bufwriter-static"),
        (b"Content-Type", reply.kind),
        (b"Content-Length", b"%d" % reply.length),
        *reply.headers,
    ]
    if reply.close:
        headers.append((b"Connection", b"close"))
    reason = HTTPStatus(reply.status).phrase.encode()
    return http.send(h11.Response(status_code=reply.status, reason=reason, headers=headers)) or b""


def send_file_body(http: h11.Connection, body: FileBody) -> list[bytes | FileBody]:
    """Tell h11 of a body it does not carry; return the pieces to write, in
    which *body* itself stands for the file's bytes (h11's sendfile support:
    a placeholder with a length, handed back as it is)."""
    data = h11.Data(data=body)  # type: ignore[arg-type]
    return list(http.send_with_data_passthrough(data) or ())


async def serve(
    root: Path,
    port: int,
    *,
    server: StaticServer | None = None,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *root* on *host*:*port*; ``await nursery.start(serve, root, 0)``
    returns the port actually listened on."""
    handler = (server or StaticServer(root)).handle
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, port, host=host))
        task_status.started(listeners[0].socket.getsockname()[1])


async def main(root: Path, port: int, host: str) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, root, port, host=host))
        print(port, flush=True)
        print(f"serving {root} on http://{host}:{port}/", file=sys.stderr, flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A static-file HTTP server on trio_bufwriter.")
    parser.add_argument("--root", type=Path, default=Path("."), help="the folder to serve")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    args = parser.parse_args()
    trio.run(main, args.root, args.port, args.host)
