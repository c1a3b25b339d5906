"""The benchmark's options: the command-line arguments, their defaults (full
and ``--quick``), and the settings a run resolves them to."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trio_bufwriter._cli import positive_float, positive_int

from ._variants import Kind, variant_names

#: Defaults of a full run, and of a ``--quick`` one (CI: about a minute).
FULL = {"rounds": 3, "requests": 40_000, "seconds": 5.0, "clients": 50}
QUICK = {"rounds": 1, "requests": 20_000, "seconds": 2.0, "clients": 50}


@dataclass(frozen=True)
class Settings:
    """What one run does."""

    rounds: int
    #: redis-benchmark's requests per measured run (``-n``) without
    #: pipelining; see :meth:`requests_for`.
    requests: int
    #: wrk's duration per measured run.
    seconds: float
    clients: int
    quick: bool
    kinds: tuple[Kind, ...]
    #: The variants to run, None for all.
    names: tuple[str, ...] | None

    def requests_for(self, pipeline: int) -> int:
        """redis-benchmark's ``-n`` at *pipeline* depth: scaled with it (a
        fifth of the depth, at least 1x), so that a pipelined run lasts about
        as long as an unpipelined one instead of a fraction of a second."""
        return self.requests * max(1, pipeline // 3)

    @property
    def warmup_requests(self) -> int:
        """redis-benchmark's requests in the warm-up before each measured run."""
        return max(500, self.requests // 10)

    @property
    def warmup_seconds(self) -> float:
        """wrk's warm-up before each measured run."""
        return 1.0

    @classmethod
    def resolve(
        cls,
        *,
        rounds: int | None = None,
        requests: int | None = None,
        seconds: float | None = None,
        clients: int | None = None,
        quick: bool = False,
        only: str | None = None,
        variants: list[str] | None = None,
    ) -> Settings:
        """Fill in the defaults (:data:`QUICK`'s with *quick*), and check.

        Raises:
          ValueError: an option is out of range, or names no variant.
        """
        defaults = QUICK if quick else FULL
        settings = cls(
            rounds=int(defaults["rounds"] if rounds is None else rounds),
            requests=int(defaults["requests"] if requests is None else requests),
            seconds=float(defaults["seconds"] if seconds is None else seconds),
            clients=int(defaults["clients"] if clients is None else clients),
            quick=quick,
            kinds=("resp", "http") if only is None else _kind(only),
            names=None if variants is None else tuple(variants),
        )
        for name in ("rounds", "requests", "seconds", "clients"):
            if getattr(settings, name) <= 0:
                raise ValueError(f"{name} must be more than 0")
        unknown = sorted(set(settings.names or ()) - set(variant_names()))
        if unknown:
            known = ", ".join(variant_names())
            raise ValueError(f"no variant named {', '.join(unknown)} (there are: {known})")
        return settings

    def describe(self) -> str:
        """The settings in one line, for the report."""
        chosen = "all variants" if self.names is None else ", ".join(self.names)
        return (
            f"{'quick, ' if self.quick else ''}{self.rounds} round(s), {self.clients} clients, "
            f"{self.requests} RESP requests, {self.seconds:g} s of HTTP per run; "
            f"{'/'.join(self.kinds)}; {chosen}"
        )


def _kind(only: str) -> tuple[Kind, ...]:
    if only == "resp":
        return ("resp",)
    if only == "http":
        return ("http",)
    raise ValueError(f"--only takes resp or http, not {only!r}")


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(variant_names()))
    if unknown or not names:
        known = ", ".join(variant_names())
        raise argparse.ArgumentTypeError(f"unknown variant(s) {text!r}; there are: {known}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to *parser*."""
    full, quick = FULL, QUICK
    parser.add_argument(
        "--rounds", type=positive_int,
        help=f"interleaved rounds; medians over them are reported (default {full['rounds']})",
    )  # fmt: skip
    parser.add_argument(
        "--requests", type=positive_int,
        help=f"redis-benchmark requests per measured run (default {full['requests']})",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=positive_float,
        help=f"wrk's duration per measured run, whole seconds (default {full['seconds']:g})",
    )  # fmt: skip
    parser.add_argument(
        "--clients", type=positive_int,
        help=f"connections of either load generator (default {full['clients']})",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true",
        help=f"for CI: {quick['rounds']} round, {quick['requests']} requests, "
        f"{quick['seconds']:g} s of wrk, unless given",
    )  # fmt: skip
    parser.add_argument("--only", choices=["resp", "http"], help="run one protocol's servers")
    parser.add_argument(
        "--variants", type=_names, metavar="A,B,...",
        help=f"run only these variants, of {', '.join(variant_names())}",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="save the results here")


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``run_servers`` from what :func:`add_arguments` parsed."""
    return {
        "rounds": args.rounds,
        "requests": args.requests,
        "seconds": args.seconds,
        "clients": args.clients,
        "quick": args.quick,
        "only": args.only,
        "variants": args.variants,
        "json_path": args.json,
    }
