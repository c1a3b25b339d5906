"""An HTTP/1.1 server on h11: keep-alive, pipelined requests, backpressure.

Run it, then ask it things::

    python examples/http_server.py --port 8080
    curl -i http://127.0.0.1:8080/
    curl -i http://127.0.0.1:8080/bytes/100000
    curl -i --data 'hi there' http://127.0.0.1:8080/echo

The first line it prints on stdout is the port it listens on (handy with
``--port 0``); a line per connection goes to stderr.  Ctrl-C stops it.

Routes: ``GET /`` says hello, ``GET /bytes/N`` sends N bytes, ``POST /echo``
sends the request body back; ``HEAD`` works wherever ``GET`` does.  Anything
else gets a 404 (or a 405 for the wrong method on a known path).

h11 does the parsing and the framing; the buffered writer does the sending.
Each response is written with ``write()`` and followed by ``await drain()``.
Pipelined requests (a client sending several before reading any response)
arrive in one receive, and h11 hands them out one by one from its buffer
without another receive.  ``drain()`` only waits over the high-water mark,
so answering them never yields to the scheduler: the responses pile up in
the writer's buffer, in order, and go out together in one send when the
server next waits for the client.  The log line for each connection shows
it: many writes, few sends.  A big response (``/bytes/N``) is written in chunks
with a ``drain()`` after each, so however big N is, a slow reader never has
more than the writer's high-water mark plus one chunk waiting in memory.
"""

from __future__ import annotations

import argparse
import email.utils
import signal
import sys
from functools import partial
from http import HTTPStatus
from typing import TextIO

import h11
import trio

from trio_bufwriter import BufferedStream, aclose_lingering, open_buffered_stream

#: The largest request body accepted; a bigger one gets a 413.
MAX_BODY = 1024 * 1024
#: ``/bytes/N`` is written in pieces of this size, with a drain() after each.
CHUNK_SIZE = 64 * 1024
#: After sending its last response on a connection the server closes, how
#: long it waits for the client to close its side (see aclose_lingering).
LINGER_SECONDS = 5.0

# One immutable chunk, written again and again: a bytes object this big is
# queued by reference, not copied.
_FILLER = b"x" * CHUNK_SIZE
_TEXT = b"text/plain; charset=utf-8"


def _bytes_size(path: bytes) -> int | None:
    """N for a ``/bytes/N`` path (N up to 15 digits), else None."""
    digits = path[len(b"/bytes/") :]
    if path.startswith(b"/bytes/") and digits.isdigit() and len(digits) <= 15:
        return int(digits)
    return None


class BadRequest(Exception):
    """A request this server will not serve.  Like h11's own errors, it is
    answered with its ``error_status_hint``, then the connection is closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.error_status_hint = status


class HTTPConnection:
    """One client connection: an h11 state machine in front of a :class:`BufferedStream`."""

    def __init__(self, stream: BufferedStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER)
        #: The method of the request being answered (a HEAD gets no body).
        self.method = b""

    async def next_event(self) -> h11.Event:
        """Return h11's next event, receiving from the client only when h11
        has nothing left in its buffer.

        Raises:
          h11.RemoteProtocolError: the client broke the protocol.
        """
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                # Up to 64 KiB; what the stream's reads left buffered would
                # come first.  b"" at end-of-file tells h11 the client closed
                # its side.  (bytes() costs nothing: a socket gives bytes.)
                self.h11.receive_data(bytes(await self.stream.receive_some()))
            else:
                # PAUSED comes only between a finished cycle and
                # start_next_cycle(), and this server never reads there.
                assert isinstance(event, h11.Event), event
                return event

    async def read_body(self, request: h11.Request) -> bytes:
        """Read *request*'s body, up to :data:`MAX_BODY` bytes.

        Raises:
          BadRequest: the body is bigger than that (413).
          h11.RemoteProtocolError: the client broke the protocol.
        """
        # (h11 has checked that a Content-Length is a number.)
        length = dict(request.headers).get(b"content-length", b"0")
        if int(length) > MAX_BODY:
            # Refuse before any of it is sent, or asked for.
            raise BadRequest(413, f"request body over {MAX_BODY} bytes")
        if self.h11.they_are_waiting_for_100_continue:
            # "Expect: 100-continue": the client waits for a go-ahead before
            # sending the body (curl does, for bodies over 1 KiB).
            self.stream.write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = bytearray()
        while True:
            event = await self.next_event()
            if isinstance(event, h11.EndOfMessage):
                return bytes(body)
            assert isinstance(event, h11.Data), event
            body += event.data
            if len(body) > MAX_BODY:  # a chunked body has no Content-Length
                raise BadRequest(413, f"request body over {MAX_BODY} bytes")

    def start_response(
        self,
        status: int,
        length: int,
        *,
        content_type: bytes = _TEXT,
        close: bool = False,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Write the status line and headers of a response of *length* bytes."""
        headers = [
            (b"Date", email.utils.formatdate(usegmt=True).encode()),
            (b"Server", b"trio_bufwriter-example"),
            (b"Content-Type", content_type),
            (b"Content-Length", b"%d" % length),
        ]
        if close:
            headers.append((b"Connection", b"close"))
        headers += extra_headers or []
        reason = HTTPStatus(status).phrase.encode()
        response = h11.Response(status_code=status, reason=reason, headers=headers)
        self.stream.write(self.h11.send(response))

    def write_body(self, data: bytes) -> None:
        """Write part of the body of the response started (nothing for a HEAD)."""
        if self.method != b"HEAD":
            # send_with_data_passthrough hands back the body as it is, so a
            # big piece is queued by reference rather than copied.
            for piece in self.h11.send_with_data_passthrough(h11.Data(data=data)) or ():
                self.stream.write(piece)

    def end_response(self) -> None:
        self.stream.write(self.h11.send(h11.EndOfMessage()))

    def respond(
        self,
        status: int,
        body: bytes,
        *,
        close: bool = False,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Write a whole response with *body* (not sent yet: see :meth:`BufferedStream.drain`)."""
        # The cork makes the head, body and end leave in one send: over a
        # socket, a write to an idle writer would otherwise go out at once,
        # alone, and the rest in a second packet.
        with self.stream.corked():
            self.start_response(status, len(body), close=close, extra_headers=extra_headers)
            if body:
                self.write_body(body)
            self.end_response()

    def can_respond(self) -> bool:
        """Whether a response can still be started (none is half-written)."""
        return self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE)


class HTTPServer:
    """The routes, and counters over every connection served."""

    def __init__(self, *, log: TextIO | None = None) -> None:
        self.log = sys.stderr if log is None else log
        #: Connections accepted so far.
        self.connections = 0
        #: Requests answered so far (error responses not included).
        self.requests = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one client connection, from its first request to its close."""
        self.connections += 1
        number = self.connections
        requests = self.requests
        try:
            async with open_buffered_stream(stream) as conn:
                await self.serve_connection(HTTPConnection(conn))
        except trio.BrokenResourceError as exc:
            # The client went away in the middle of an exchange.
            print(f"connection {number}: broken ({exc.__cause__!r})", file=self.log, flush=True)
        else:
            stats = conn.statistics()
            print(
                f"connection {number}: {self.requests - requests} requests, "
                f"{stats.write_calls} writes in {stats.batches} batches "
                f"({stats.send_calls} sends), "
                f"at most {stats.peak_buffered} bytes buffered",
                file=self.log,
                flush=True,
            )

    async def serve_connection(self, http: HTTPConnection) -> None:
        """Answer requests on *http* until the client closes, or asks us to,
        or breaks the protocol."""
        while True:
            try:
                event = await http.next_event()
                if isinstance(event, h11.ConnectionClosed):
                    return  # The client closed between requests: we are done.
                assert isinstance(event, h11.Request), event
                http.method = event.method
                body = await http.read_body(event)
            except (h11.RemoteProtocolError, BadRequest) as exc:
                if http.can_respond():
                    http.respond(exc.error_status_hint, f"{exc}\n".encode(), close=True)
                # The client may still be sending (the rest of a refused
                # body): closing with its bytes unread would make the kernel
                # reset the connection, which can destroy the response.  So
                # half-close, read and discard until it closes, then close.
                await aclose_lingering(http.stream, LINGER_SECONDS)
                return
            await self.route(http, event, body)
            # Backpressure between responses: below the high-water mark this
            # returns at once, and pipelined responses coalesce.
            await http.stream.drain()
            self.requests += 1
            if http.h11.our_state is h11.MUST_CLOSE:
                # "Connection: close" from the client (or an HTTP/1.0 client).
                await aclose_lingering(http.stream, LINGER_SECONDS)
                return
            http.h11.start_next_cycle()

    async def route(self, http: HTTPConnection, request: h11.Request, body: bytes) -> None:
        """Answer *request*."""
        path = request.target.partition(b"?")[0]
        method = request.method
        if path == b"/":
            if method not in (b"GET", b"HEAD"):
                http.respond(405, b"use GET\n", extra_headers=[(b"Allow", b"GET, HEAD")])
            else:
                http.respond(200, b"Hello, world!\n")
        elif (size := _bytes_size(path)) is not None:
            if method not in (b"GET", b"HEAD"):
                http.respond(405, b"use GET\n", extra_headers=[(b"Allow", b"GET, HEAD")])
            else:
                await self.send_bytes(http, size)
        elif path == b"/echo":
            if method != b"POST":
                http.respond(405, b"use POST\n", extra_headers=[(b"Allow", b"POST")])
            else:
                http.respond(200, body)
        else:
            http.respond(404, b"not found\n")

    async def send_bytes(self, http: HTTPConnection, size: int) -> None:
        """Answer with *size* bytes of ``x``, written a chunk at a time."""
        http.start_response(200, size, content_type=b"application/octet-stream")
        if http.method != b"HEAD":
            for start in range(0, size, CHUNK_SIZE):
                http.write_body(_FILLER[: size - start])
                # Without this, a client that reads slowly would have the
                # whole response sitting in our memory at once.
                await http.stream.drain()
        http.end_response()


async def serve(
    port: int,
    *,
    server: HTTPServer | None = None,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *server* (a new :class:`HTTPServer` by default) on *host*:*port*.

    ``await nursery.start(serve, 0)`` returns the port actually listened on.
    """
    handler = (server or HTTPServer()).handle
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, port, host=host))
        task_status.started(listeners[0].socket.getsockname()[1])


async def main(port: int, host: str) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, port, host=host))
        print(port, flush=True)
        print(f"HTTP server on http://{host}:{port}/", file=sys.stderr, flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:  # wait for Ctrl-C
                break
        # Cancelling makes every open_buffered_stream close its connection at once.
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="An HTTP/1.1 server on h11 and trio_bufwriter.")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    args = parser.parse_args()
    trio.run(main, args.port, args.host)
