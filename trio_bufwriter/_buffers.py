"""What the writers accept as data, and the errors for what they do not."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

#: What ``write()`` accepts.  Any object with a C-contiguous buffer works at run
#: time (``array.array``, ``mmap``...); these are the types trio itself names.
BytesLike: TypeAlias = "bytes | bytearray | memoryview"


def byte_view(data: object, what: str = "write()") -> memoryview:
    """*data*'s bytes, as a C-contiguous memoryview of format ``"B"``.

    The one rule for what counts as bytes: any object exposing a C-contiguous
    buffer (``bytes``, ``bytearray``, ``memoryview``, ``array.array``,
    ``mmap``, ``pickle.PickleBuffer``...); its size is the view's ``nbytes``
    (``len()`` of the result).  Anything else (``str``, ``int``, ``None``, a
    non-contiguous buffer) raises :func:`bad_data`'s :exc:`TypeError`, with
    *what* (the caller, ``"write_at()"``...) in its message.

    The result shares *data*'s memory (no copy).  Hot paths test
    ``type(data) is bytes`` first and call this only for anything else.
    """
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise bad_data(data, what) from None
    if not view.c_contiguous:
        view.release()
        raise bad_data(data, what)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def bad_data(data: object, what: str = "write()") -> TypeError:
    """The :exc:`TypeError` for *data* that *what* cannot take, saying what to do instead."""
    if not is_contiguous_buffer(data) and _is_buffer(data):
        return TypeError(
            f"{what} needs a C-contiguous buffer; got a non-contiguous "
            f"{type(data).__name__} (copy it with memoryview(data).tobytes() first)"
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


def _is_buffer(obj: object) -> bool:
    """Whether *obj* exposes a buffer at all."""
    try:
        memoryview(obj).release()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def is_contiguous_buffer(obj: object) -> bool:
    """Whether *obj* exposes a C-contiguous buffer."""
    try:
        with memoryview(obj) as view:  # type: ignore[arg-type]
            return view.c_contiguous
    except (TypeError, ValueError):  # (ValueError: a released memoryview)
        return False
