"""Parsed frames: a parse function run over the received bytes (``receive_parsed``).

``receive_frames`` hands its decoder a :class:`~._frames.FrameReader`, and
every field costs a method call.  ``receive_parsed(parse)`` hands the
parser the bytes themselves and a position, as tokio's ``Decoder``,
Netty's ``ByteToMessageDecoder`` and asyncio's ``BufferedProtocol`` do:
``parse(data, start)`` returns ``(frame, end)``, or ``None`` when the frame
is not all there yet (or the frame's size, when it can tell).  One call per
frame; inside it the parser is a hand-written one (``bytes.find``,
``int()`` on slices), with nothing of the library in between.

The loop here is sans-IO: it runs *parse* over a
:class:`~._receive_buffer.ReceiveBuffer`, frame after frame, and moves the
buffer's position past what it returns.  The bytes given to *parse* are
always one ``bytes`` object: a frame's fields are slices of it, immutable
and hashable.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TypeVar, cast

from ._receive_buffer import ReceiveBuffer

T = TypeVar("T")

#: What a parser returns: a frame and where it ended; or, for a frame not
#: all there yet, None, or how many bytes it takes at least, when it can tell.
ParseResult = tuple[T, int] | int | None
#: ``parse(data, start)``: see :meth:`~trio_bufwriter.BufferedReader.receive_parsed`.
Parser = Callable[[bytes, int], ParseResult[T]]

#: The default *max_frame* of ``receive_parsed``: 64 KiB, as the lines'.
DEFAULT_MAX_FRAME = 64 * 1024


class FrameTooLargeError(Exception):
    """A frame was longer than the *max_frame* ``receive_parsed`` allowed.

    Raised when the parser returns a frame longer than *max_frame*, says
    that a frame not complete yet will be (its size), or still needs more
    bytes when *max_frame* of them are buffered: so a peer that never
    completes a frame cannot make the buffer hold more than *max_frame*
    bytes of it.  The frame's bytes stay in the buffer, unread.  Usually
    the peer is broken or hostile: answer with an error and close.

    Attributes:
      max_frame: the limit.
      size: the frame's size if known (returned or announced by the
          parser), else the bytes buffered when the parser asked for more.
    """

    def __init__(self, max_frame: int, size: int) -> None:
        super().__init__(
            f"a frame of {size} bytes or more, over max_frame={max_frame}; "
            "its bytes are left in the buffer"
        )
        self.max_frame = max_frame
        self.size = size


def _checked_int(parse: object, value: object, what: str) -> int:
    """*value*, an end or a size that is not exactly an ``int``, as one (an
    integer type such as numpy's), or the :exc:`TypeError` for it (a float,
    a str, None, a bool)."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise TypeError(f"{parse!r} returned {what} {value!r}: it must be an int")


def _bad_end(parse: object, start: int, end: int, size: int) -> RuntimeError:
    return RuntimeError(
        f"{parse!r} returned a frame ending at {end!r}, given {size} bytes from {start}: "
        "a frame must end after its start, within the bytes given"
    )


def _bad_result(parse: object, result: object) -> TypeError:
    return TypeError(
        f"{parse!r} returned {result!r}: a parser returns a tuple (frame, end), "
        "an int (the frame's size) or None"
    )


def _checked_result(parse: object, result: object) -> object:
    """A result that is not a tuple, an int or None: a tuple subclass (a
    named tuple) as a tuple, an integer type as an int, else the
    :exc:`TypeError` for it (a list, a float, a bool, a coroutine...),
    before it can move the buffer."""
    if isinstance(result, tuple):
        return tuple(result)
    try:
        return _checked_int(parse, result, "a size of")
    except TypeError:
        raise _bad_result(parse, result) from None


def parse_buffered(rbuf: ReceiveBuffer, parse: Parser[T], max_frame: int) -> tuple[list[T], int]:
    """Every frame *parse* finds in *rbuf*, in order, and what the next needs.

    Returns the frames, and the size the parser announced for the
    incomplete frame after them (0 if it did not say, or if none is).  The
    buffer's position moves past the frames returned.  If *parse* raises,
    or a frame breaks *max_frame*, the error propagates only if no frame
    came before it; otherwise the frames are returned and the error comes
    again at the next call (the frame's bytes stay unread).  A
    :exc:`BaseException` that is not an :exc:`Exception` propagates at
    once, with every byte of this call left unread.

    Raises:
      FrameTooLargeError: see the class.
      TypeError: *parse* returned something other than ``(frame, end)``
          with an int *end*, an int or None.
      RuntimeError: *parse* returned an end outside ``(start, len(data)]``.
    """
    data = rbuf.data
    if type(data) is not bytes:
        data = rbuf.make_bytes()
    pos = rbuf.pos
    size = len(data)
    frames: list[T] = []
    append = frames.append
    need = 0
    try:
        while pos < size:
            result = parse(data, pos)
            if type(result) is not tuple:
                if result is not None and type(result) is not int:
                    result = cast("ParseResult[T]", _checked_result(parse, result))
                if type(result) is not tuple:
                    # The frame is not all there: None, or its size.
                    if result is not None:
                        need = cast(int, result)
                        if need > max_frame:
                            raise FrameTooLargeError(max_frame, need)
                    if size - pos >= max_frame:
                        raise FrameTooLargeError(max_frame, size - pos)
                    break
            try:
                frame, end = result
            except ValueError:
                raise _bad_result(parse, result) from None
            if type(end) is not int:
                end = _checked_int(parse, end, "a frame ending at")
            if not pos < end <= size:
                raise _bad_end(parse, pos, end, size)
            if end - pos > max_frame:
                raise FrameTooLargeError(max_frame, end - pos)
            append(frame)
            pos = end
    except Exception:
        if not frames:
            raise
        rbuf.pos = pos
        return frames, 0
    rbuf.pos = pos
    return frames, need
