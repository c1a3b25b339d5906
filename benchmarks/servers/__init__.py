"""Many-connection server benchmark: the examples' RESP and HTTP servers on
trio_bufwriter against plain trio, asyncio, uvloop, hypercorn and Redis
itself, each loaded by an unmodified redis-benchmark or wrk.

Run ``python -m benchmarks.servers --help``; from code, :func:`run_servers`;
in a command-line tool, :func:`add_servers_command`.
"""

from __future__ import annotations

from .run import add_servers_command, run_servers

__all__ = ["add_servers_command", "run_servers"]
