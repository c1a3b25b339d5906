"""A lingering close: close a connection without letting a reset destroy the last reply.

Closing a TCP socket that still has unread bytes in its receive queue makes
the kernel send a reset (RST) instead of a FIN, and discard whatever it had
not yet sent.  A server that answers a request and closes while the client
has sent more (a pipelined request, the rest of a body it refused) can thus
lose its own last response: the client gets "connection reset by peer",
with part of the response or none of it.

The cure is old (Apache's ``lingering_close``, nginx's ``lingering_close``
and ``lingering_time``): half-close first, so the peer learns that no more
is coming, then read and throw away what it still sends until it closes its
side too, or a time limit passes, and only then close.
"""

from __future__ import annotations

import math

import trio

from ._stream import BufferedStream

#: How long :func:`aclose_lingering` waits for the peer by default, in seconds
#: (nginx's ``lingering_timeout``).
DEFAULT_LINGER_SECONDS = 5.0


async def aclose_lingering(stream: trio.abc.Stream, linger: float = DEFAULT_LINGER_SECONDS) -> None:
    """Close *stream* gently: half-close, read and discard until the peer closes, then close.

    For the side that decides to close a connection while its peer may
    still be sending (a server ending an HTTP/1.1 connection): closing a TCP
    socket with unread input makes the kernel reset the connection, and the
    reset can destroy the response still on its way.  In order, it:

    1. sends what is queued and the end-of-file, with ``await
       stream.send_eof()``, if *stream* can half-close (a
       :class:`trio.abc.HalfCloseableStream`; for a
       :class:`BufferedStream`, one whose wrapped stream is).  Otherwise it
       only waits for what is queued to be sent
       (:meth:`~BufferedWriter.flush`, for a :class:`BufferedStream`; a plain
       stream's ``send_all`` has returned once sent already);
    2. receives and discards whatever arrives until end-of-file (the peer
       closed its side) or until *linger* seconds have passed;
    3. closes *stream* with ``aclose()``, in every case: also when a step
       above raises or is cancelled.

    Over a stream that cannot half-close (an :class:`trio.SSLStream`: TLS
    has no half-close), the peer is not told that nothing more is coming,
    so step 2 ends early only if the protocol lets it know (an HTTP
    response with ``Connection: close`` and a ``Content-Length``, after
    which the client closes); otherwise it waits the whole *linger*.

    Waits for: the peer to accept the queued bytes (step 1, as
    :meth:`~BufferedWriter.aclose` does; *linger* does not bound it: use
    a cancel scope around the call, or the writer's ``stall_timeout``),
    then for the peer's end-of-file, *linger* seconds at most.

    Args:
      stream: the two-way stream to close, usually a
          :class:`BufferedStream`.  Nothing else may receive on it
          meanwhile.
      linger: the most seconds to wait for the peer's end-of-file after
          ours (default 5, as nginx's ``lingering_timeout``); 0 closes
          right after the half-close, ``math.inf`` waits for ever.

    Raises:
      ValueError: *linger* is negative or not a number.  Nothing is done:
          the stream is not closed.
      trio.BrokenResourceError: step 1 failed (the queued bytes did not
          all go out); *stream* is closed.  A broken connection during
          step 2 is no error: the peer reset it, and what was sent got
          there, or never will.
      trio.BusyResourceError: another task is receiving on *stream* (or
          sending, for a plain stream); *stream* is closed.
      trio.Cancelled: cancelled in step 1 or 2; *stream* is closed at once,
          as :func:`trio.aclose_forcefully` would (a :class:`BufferedStream`
          discards what it had not sent).  Cancelled in step 2 only, the
          response has gone out whole: the close then merely comes sooner.

    A stream closed already (or closed by another task meanwhile) is not an
    error: closing it is what was asked.
    """
    if not isinstance(linger, int | float) or math.isnan(linger) or linger < 0:
        raise ValueError(f"linger must be a number of seconds >= 0, not {linger!r}")
    try:
        try:
            if isinstance(stream, BufferedStream):
                # Its send_eof() would raise TypeError over a stream that
                # cannot half-close (an SSLStream): then only flush.
                if isinstance(stream.transport_stream, trio.abc.HalfCloseableStream):
                    await stream.send_eof()
                else:
                    await stream.flush()
            elif isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            with trio.move_on_after(linger):
                try:
                    while await stream.receive_some():
                        pass
                except trio.BrokenResourceError:
                    pass
        except trio.ClosedResourceError:
            pass
    finally:
        await stream.aclose()
