"""RESP variant ``uvloop``: ``resp_asyncio.py``'s server, run on uvloop.

Run from anywhere: ``python benchmarks/servers/resp_uvloop.py --port 0``
prints the port, then serves until SIGTERM or Ctrl-C.  Needs
``pip install uvloop``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvloop

if not __package__:  # run as a script (PEP 366): import the package's modules relatively
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.servers"

from ._serving import parse_arguments, serve_asyncio
from .resp_asyncio import handle

if __name__ == "__main__":
    args = parse_arguments(__doc__.splitlines()[0])
    uvloop.run(serve_asyncio(handle, args.host, args.port))
