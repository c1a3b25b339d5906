"""Write the public API's snapshot: ``python tests/api_snapshot.py > tests/data/public_api.txt``.

One line per public name, class member, parameter list and default; see
tests/test_public_api.py.
"""

from __future__ import annotations

import enum
import inspect
import types
from collections.abc import Iterator

import trio_bufwriter


def _inherited_from_python(cls: type, member: str) -> bool:
    """Whether *member* comes from a builtin or enum base (int, Exception,
    Enum...): those vary with Python's version and are not our API."""
    for base in cls.__mro__:
        if member in vars(base):
            return base.__module__ in ("builtins", "enum")
    return True


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(?)"


def _is_type_alias(obj: object) -> bool:
    """A type alias (``Literal[...]``, ``Callable[...]``, a union): shown as
    its value, not as a callable."""
    return isinstance(obj, types.GenericAlias | types.UnionType) or (
        type(obj).__module__ == "typing"
    )


def lines() -> Iterator[str]:
    for name in sorted(trio_bufwriter.__all__):
        obj = getattr(trio_bufwriter, name)
        if _is_type_alias(obj):
            yield f"{name} = {obj!r}"
        elif inspect.isclass(obj):
            # Exceptions and enums: their constructors are Python's (and vary
            # with its version), so only the members are listed.
            plain = not issubclass(obj, BaseException | enum.Enum)
            yield f"class {name}{_signature(obj) if plain else ''}"
            if issubclass(obj, enum.Enum):
                yield from (f"  {name}.{member.name} = {member.value!r}" for member in obj)
            for member in sorted(dir(obj)):
                if member.startswith("_") or _inherited_from_python(obj, member):
                    continue
                value = inspect.getattr_static(obj, member)
                if isinstance(value, property):
                    yield f"  {name}.{member}: property"
                elif callable(value) or isinstance(value, staticmethod | classmethod):
                    kind = "async def" if inspect.iscoroutinefunction(value) else "def"
                    yield f"  {kind} {name}.{member}{_signature(getattr(obj, member))}"
        elif callable(obj):
            kind = "async def" if inspect.iscoroutinefunction(obj) else "def"
            yield f"{kind} {name}{_signature(obj)}"
        else:
            yield f"{name} = {obj!r}"


if __name__ == "__main__":
    print("\n".join(lines()))
