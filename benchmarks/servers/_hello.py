"""The example HTTP server's ``/`` route on h11, without any I/O: what the
plain h11 variants (``http_trio_h11.py``, ``http_asyncio_h11.py``) share.

:class:`HelloConnection` is fed what a receive gave and hands back, for each
complete request, its response as the bytes of each h11 event (head, body,
end), with the headers ``examples/http_server.py`` sends, so the variants
differ from the example only in how those bytes are sent.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from http import HTTPStatus

import h11

#: What ``GET /`` answers, as in ``examples/http_server.py``.
BODY = b"Hello, world!\n"
_NOT_FOUND = b"not found\n"
_TEXT = b"text/plain; charset=utf-8"


def response_events(request: h11.Request, server: bytes) -> list[h11.Event]:
    """The h11 events answering *request*: 200 and :data:`BODY` for ``GET /``
    (no body for ``HEAD``), 404 for anything else."""
    path = request.target.partition(b"?")[0]
    found = path == b"/" and request.method in (b"GET", b"HEAD")
    body = BODY if found else _NOT_FOUND
    headers = [
        (b"Date", email.utils.formatdate(usegmt=True).encode()),
        (b"Server", server),
        (b"Content-Type", _TEXT),
        (b"Content-Length", b"%d" % len(body)),
    ]
    status = 200 if found else 404
    reason = HTTPStatus(status).phrase.encode()
    events: list[h11.Event] = [h11.Response(status_code=status, reason=reason, headers=headers)]
    if request.method != b"HEAD":
        events.append(h11.Data(data=body))
    events.append(h11.EndOfMessage())
    return events


class HelloConnection:
    """The server side of one HTTP/1.1 connection, keep-alive and pipelining included."""

    def __init__(self, server: bytes) -> None:
        self.h11 = h11.Connection(h11.SERVER)
        self._server = server
        self._request: h11.Request | None = None
        #: Set when the connection is over: the client closed, or asked us to.
        self.closing = False

    def responses(self, data: bytes) -> Iterator[list[bytes]]:
        """Take what a receive gave (b"" at end-of-file); yield the response to
        each request now complete, as one piece of bytes per h11 event.

        Raises:
          h11.RemoteProtocolError: the client broke the protocol.
        """
        self.h11.receive_data(data)
        while not self.closing:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.ConnectionClosed):
                self.closing = True
            elif isinstance(event, h11.Request):
                self._request = event
            elif isinstance(event, h11.EndOfMessage):
                assert self._request is not None
                events = response_events(self._request, self._server)
                yield [self.h11.send(event) or b"" for event in events]
                if self.h11.our_state is h11.MUST_CLOSE:
                    self.closing = True
                else:
                    self.h11.start_next_cycle()
            # (h11.Data, a request body, is ignored: "/" takes none.)
