"""What the plain static-file servers share: ``--root``, ``--port``, and the
example's own request handling.

They answer with ``examples/static_server.py``'s code (its ``StaticServer.reply``:
the path checks, ``Range``, the headers; ``start_response``; h11's
placeholder for a body it does not carry), loaded unchanged, so that they
differ from it only in how they send.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

from ..servers._serving import load_example

#: The most bytes asked of the socket in one receive (the example's size).
RECEIVE_SIZE = 64 * 1024


def parse_arguments(description: str) -> argparse.Namespace:
    """``--root``, ``--port`` (0 picks a free one) and ``--host``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--root", type=Path, required=True, help="the folder to serve")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    return parser.parse_args()


def static_example() -> ModuleType:
    """``examples/static_server.py``, imported unchanged."""
    return load_example("static_server")
