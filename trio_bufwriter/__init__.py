"""trio_bufwriter: the buffered writer Trio never shipped.

A synchronous ``write()``, an awaitable ``drain()`` for backpressure and an
awaitable ``flush()`` barrier, in front of any :class:`trio.abc.SendStream`,
with one background task that merges everything queued into one send.
"""

from types import FunctionType as _FunctionType
from types import GenericAlias as _GenericAlias

from ._broadcast import Broadcaster, BroadcastStatistics, Subscriber
from ._conflate import ConflatingWriter
from ._conflation_stats import ConflationStatistics
from ._frames import FrameReader
from ._limits import BufferLimitError, OverflowPolicy, StallTimeoutError
from ._linger import DEFAULT_LINGER_SECONDS, aclose_lingering
from ._open import open_buffered_stream, open_buffered_writer, open_conflating_writer
from ._open_file import open_positional_writer
from ._parse import DEFAULT_MAX_FRAME, FrameTooLargeError, Parser, ParseResult
from ._positional import DEFAULT_POSITIONAL_HIGH_WATER, PositionalWriteError, PositionalWriter
from ._reader import BufferedReader
from ._receive_buffer import DEFAULT_MAX_LINE, DelimiterNotFoundError, IncompleteReadError
from ._state import PositionalStatistics, WriterState, WriterStatistics
from ._stream import BufferedStream
from ._writer import (
    DEFAULT_HIGH_WATER,
    DEFAULT_MAX_SEND_SIZE,
    DEFAULT_NOTSENT_LOWAT,
    BufferedWriter,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_HIGH_WATER",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_LINE",
    "DEFAULT_LINGER_SECONDS",
    "DEFAULT_MAX_SEND_SIZE",
    "DEFAULT_NOTSENT_LOWAT",
    "DEFAULT_POSITIONAL_HIGH_WATER",
    "BroadcastStatistics",
    "Broadcaster",
    "BufferLimitError",
    "DelimiterNotFoundError",
    "FrameReader",
    "FrameTooLargeError",
    "IncompleteReadError",
    "BufferedReader",
    "BufferedStream",
    "BufferedWriter",
    "ConflatingWriter",
    "ConflationStatistics",
    "OverflowPolicy",
    "ParseResult",
    "Parser",
    "PositionalStatistics",
    "PositionalWriteError",
    "PositionalWriter",
    "StallTimeoutError",
    "Subscriber",
    "WriterState",
    "WriterStatistics",
    "aclose_lingering",
    "open_buffered_stream",
    "open_buffered_writer",
    "open_conflating_writer",
    "open_positional_writer",
]

# Show the public classes and functions as ours in reprs and docs, as trio
# does.  (Constants and type aliases keep theirs: a Union cannot be renamed,
# and on Python 3.10 a ``Callable[...]`` alias passes for a class.)
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type | _FunctionType) and not isinstance(_obj, _GenericAlias):
        _obj.__module__ = __name__
del _name, _obj
