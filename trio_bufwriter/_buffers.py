"""What the writers accept as data, and the errors for what they do not."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

#: What ``write()`` accepts.  Any object with a C-contiguous buffer works at run
#: time (``array.array``, ``mmap``...); these are the types trio itself names.
BytesLike: TypeAlias = "bytes | bytearray | memoryview"


def bad_data(data: object, what: str = "write()") -> TypeError:
    """The :exc:`TypeError` for *data* that *what* cannot take, saying what to do instead."""
    if isinstance(data, memoryview) and not data.c_contiguous:
        return TypeError(
            f"{what} needs a C-contiguous buffer; got a non-contiguous "
            "memoryview (copy it with .tobytes() first)"
        )
    if isinstance(data, str):
        return TypeError(
            f"{what} takes bytes-like objects, not str: encode the text first "
            "(for example data.encode())"
        )
    return TypeError(
        f"{what} takes a bytes-like object (bytes, bytearray, memoryview or "
        f"another C-contiguous buffer), not {type(data).__name__!r}"
    )


def is_contiguous_buffer(obj: object) -> bool:
    """Whether *obj* exposes a C-contiguous buffer."""
    try:
        with memoryview(obj) as view:  # type: ignore[arg-type]
            return view.c_contiguous
    except TypeError:
        return False
