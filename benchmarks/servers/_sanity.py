"""Before a server is measured: does it answer correctly?  Checked over a raw
socket, with a timeout on every step, for RESP and for HTTP."""

from __future__ import annotations

import socket
import time

import h11

from ._hello import BODY

#: The longest a whole check may take.
CHECK_TIMEOUT = 10.0


class SanityError(Exception):
    """A server answered wrongly, or not at all."""


def _exchange(sock: socket.socket, request: bytes, size: int) -> bytes:
    """Send *request*, then receive until *size* bytes (or more) have come back."""
    sock.sendall(request)
    received = b""
    while len(received) < size:
        data = sock.recv(65536)
        if not data:
            raise SanityError(f"the server closed the connection after {received!r}")
        received += data
    return received


def _connect(port: int, deadline: float) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=CHECK_TIMEOUT)
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    return sock


def _command(*arguments: bytes) -> bytes:
    """A RESP command, as clients send it."""
    parts = [b"*%d\r\n" % len(arguments)]
    parts += [b"$%d\r\n%b\r\n" % (len(argument), argument) for argument in arguments]
    return b"".join(parts)


def _check_exchanges(port: int, exchanges: list[tuple[bytes, bytes]]) -> None:
    """Send each request on one connection; its reply must be the one expected."""
    deadline = time.monotonic() + CHECK_TIMEOUT
    try:
        with _connect(port, deadline) as sock:
            for request, expected in exchanges:
                reply = _exchange(sock, request, len(expected))
                if reply != expected:
                    raise SanityError(f"{request!r} got {reply!r}, not {expected!r}")
    except OSError as exc:
        raise SanityError(f"RESP check on port {port}: {exc!r}") from None


def check_resp(port: int) -> None:
    """``SET k v``, ``GET k``, then both pipelined in one send, must get Redis's replies.

    Raises:
      SanityError: a wrong reply, a closed connection, or no reply in time.
    """
    exchanges = [
        (_command(b"SET", b"bench:k", b"v"), b"+OK\r\n"),
        (_command(b"GET", b"bench:k"), b"$1\r\nv\r\n"),
        (
            _command(b"SET", b"bench:k", b"value 2") + _command(b"GET", b"bench:k"),
            b"+OK\r\n$7\r\nvalue 2\r\n",
        ),
    ]
    _check_exchanges(port, exchanges)


def check_resp_canned(port: int) -> None:
    """What :func:`check_resp` sends must get ``trio-floor``'s canned
    replies: ``+OK`` to ``SET``, redis-benchmark's 3-byte value to ``GET``,
    one reply per command, pipelined ones too.

    Raises:
      SanityError: a wrong reply, a closed connection, or no reply in time.
    """
    value = b"$3\r\nxxx\r\n"
    exchanges = [
        (_command(b"SET", b"bench:k", b"v"), b"+OK\r\n"),
        (_command(b"GET", b"bench:k"), value),
        (
            _command(b"SET", b"bench:k", b"value 2") + _command(b"GET", b"bench:k"),
            b"+OK\r\n" + value,
        ),
    ]
    _check_exchanges(port, exchanges)


def check_http(port: int, requests: int = 2) -> None:
    """*requests* ``GET /`` in turn on one keep-alive connection must each get
    200 and ``Hello, world!``.

    Raises:
      SanityError: a wrong response, a closed connection, or none in time.
    """
    deadline = time.monotonic() + CHECK_TIMEOUT
    client = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target="/", headers=[("Host", f"127.0.0.1:{port}")])
    try:
        with _connect(port, deadline) as sock:
            for _ in range(requests):
                sock.sendall(client.send(request) + client.send(h11.EndOfMessage()))
                status, body = _read_response(sock, client)
                if (status, body) != (200, BODY):
                    raise SanityError(f"GET / got {status} {body!r}, not 200 {BODY!r}")
                client.start_next_cycle()
    except (OSError, h11.ProtocolError) as exc:
        raise SanityError(f"HTTP check on port {port}: {exc!r}") from None


def _read_response(sock: socket.socket, client: h11.Connection) -> tuple[int, bytes]:
    """Receive one response on *client*; return its status and body."""
    status = 0
    body = b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, body
        else:
            raise SanityError(f"unexpected {event!r} from the server")
