"""What is measured: the server variants, the workloads, and the tools each needs."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._serving import EXAMPLES

HERE = Path(__file__).resolve().parent
Kind = Literal["resp", "http"]


@dataclass(frozen=True)
class Requirement:
    """A program or Python module a variant or a workload needs, and how to get it."""

    name: str
    program: bool
    install: str

    def missing(self) -> bool:
        """Whether it is not there: not on PATH, or not importable."""
        if self.program:
            return shutil.which(self.name) is None
        return importlib.util.find_spec(self.name) is None

    def skip_message(self) -> str:
        """What the report says when it is missing."""
        found = "not found" if self.program else "not installed"
        return f"{self.name} {found}; {self.install}"


REDIS_BENCHMARK = Requirement("redis-benchmark", True, "apt-get install redis-tools")
WRK = Requirement("wrk", True, "apt-get install wrk")
REDIS_SERVER = Requirement("redis-server", True, "apt-get install redis-server")
HYPERCORN = Requirement("hypercorn", False, "pip install hypercorn")
UVLOOP = Requirement("uvloop", False, "pip install uvloop")
H11 = Requirement("h11", False, "pip install h11")


@dataclass(frozen=True)
class Variant:
    """One server: how to start it, and what it needs."""

    name: str
    kind: Kind
    #: The Python script to run, or None for redis-server.
    script: Path | None
    needs: tuple[Requirement, ...] = ()
    #: It answers with canned replies (``trio-floor``): checked for those,
    #: not for a store's answers.
    canned: bool = False

    def command(self, port: int | str = 0) -> list[str]:
        """The command line that starts it on *port* (0: the script picks one;
        a str stands for a port in the report)."""
        if self.script is None:
            # No snapshots, no append-only file: an in-memory store, like the others.
            return [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
            ]  # fmt: skip
        return [sys.executable, str(self.script), "--port", str(port)]

    @property
    def announces_port(self) -> bool:
        """Whether it picks its own port and prints it (all but redis-server)."""
        return self.script is not None

    def missing(self) -> list[Requirement]:
        """What it needs that is not installed."""
        return [need for need in self.needs if need.missing()]


#: The variants, in the order of the report's rows.
VARIANTS: tuple[Variant, ...] = (
    Variant("bufwriter", "resp", EXAMPLES / "resp_server.py"),
    Variant("bufwriter-hand", "resp", HERE / "resp_bufwriter_hand.py"),
    Variant("trio-send-all", "resp", HERE / "resp_trio_send_all.py"),
    Variant("trio-joined", "resp", HERE / "resp_trio_joined.py"),
    Variant("asyncio", "resp", HERE / "resp_asyncio.py"),
    Variant("uvloop", "resp", HERE / "resp_uvloop.py", (UVLOOP,)),
    Variant("trio-floor", "resp", HERE / "resp_trio_floor.py", canned=True),
    Variant("redis-server", "resp", None, (REDIS_SERVER,)),
    Variant("bufwriter", "http", EXAMPLES / "http_server.py", (H11,)),
    Variant("bufwriter-h11", "http", HERE / "http_bufwriter_h11.py", (H11,)),
    Variant("trio-h11", "http", HERE / "http_trio_h11.py", (H11,)),
    Variant("asyncio-h11", "http", HERE / "http_asyncio_h11.py", (H11,)),
    Variant("uvloop-h11", "http", HERE / "http_uvloop_h11.py", (H11, UVLOOP)),
    Variant("hypercorn-trio", "http", HERE / "http_hypercorn_trio.py", (HYPERCORN,)),
)

#: The variant each kind's ratio column compares against.
BASELINES: dict[Kind, str] = {"resp": "trio-send-all", "http": "trio-h11"}
#: What each kind's load generator is.
LOAD_GENERATORS: dict[Kind, Requirement] = {"resp": REDIS_BENCHMARK, "http": WRK}


@dataclass(frozen=True)
class Workload:
    """One table of the report: a load generator's run, the same for every variant."""

    name: str
    kind: Kind
    #: redis-benchmark's test (``set``, ``get``), None for wrk.
    test: str | None = None
    pipeline: int = 1


WORKLOADS: tuple[Workload, ...] = (
    Workload("RESP SET -P1", "resp", "set", 1),
    Workload("RESP GET -P1", "resp", "get", 1),
    Workload("RESP SET -P16", "resp", "set", 16),
    Workload("RESP GET -P16", "resp", "get", 16),
    Workload("HTTP GET /", "http"),
)


def variant_names() -> list[str]:
    """Every variant name, each once (``bufwriter`` is one of each kind)."""
    return list(dict.fromkeys(variant.name for variant in VARIANTS))
