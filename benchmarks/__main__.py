"""The lab's command line: ``python -m benchmarks COMMAND [OPTIONS]``, from the
repository's top folder.

Each command is a sub-parser whose ``run`` default takes the parsed arguments
and returns the exit status; add a command by adding a ``_add_...`` function
to :data:`_COMMANDS`.  (The library's own ``python -m trio_bufwriter demo``
is in the package.)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence

from trio_bufwriter._cli import positive_int


def _size_list(text: str) -> tuple[int, ...]:
    """Parse ``16,64,1024``: message sizes in bytes, for argparse."""
    return tuple(positive_int(part.strip()) for part in text.split(","))


def _part_list(text: str) -> tuple[str, ...]:
    """Parse ``throughput,latency``: parts of the bench, for argparse."""
    from .bench._config import PARTS

    chosen = {part.strip() for part in text.split(",")}
    unknown = sorted(chosen - set(PARTS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown part {', '.join(map(repr, unknown))}: choose from {','.join(PARTS)}"
        )
    return tuple(part for part in PARTS if part in chosen)


def _run_bench(args: argparse.Namespace) -> int:
    """Run ``bench`` with the parsed *args*."""
    from .bench._config import BenchOptions
    from .bench._run import run_bench

    options = BenchOptions(
        quick=args.quick,
        sizes=args.sizes,
        repeat=args.repeat,
        json_path=args.json,
        chart_path=args.chart,
        pin=args.pin,
        only=args.only,
    )
    return run_bench(options, command=args.command_line)


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` command."""
    # Only the (light) option defaults: the bench itself is imported when it runs.
    from .bench._config import DEFAULT_SIZES, PARTS

    parser = commands.add_parser(
        "bench",
        help="the benchmark suite: throughput, latency, memory, write() cost",
        description=(
            "Measure, in one run and side by side: throughput over loopback TCP "
            "(raw sockets, asyncio, uvloop, trio send_all, trio_bufwriter) for each "
            "message size, 64-byte ping-pong latency with the echo peer on the same "
            "and on the other CPU, memory per idle writer and peak RSS while pushing "
            "1 GiB, and the cost of write() against a bare bytearray +=.  Prints "
            "medians of interleaved runs, ratios measured in the same run, and the "
            "targets met or not."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller workloads and 3 rounds: under a minute (a smoke run)",
    )
    parser.add_argument(
        "--sizes",
        type=_size_list,
        default=DEFAULT_SIZES,
        metavar="N,N,...",
        help=f"throughput message sizes in bytes (default: {','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=None,
        metavar="R",
        help="timed rounds of throughput and latency (default: 5, or 3 with --quick)",
    )
    parser.add_argument("--json", metavar="PATH", help="also save everything measured as JSON")
    parser.add_argument(
        "--chart",
        metavar="PATH",
        help="also save a PNG chart of throughput / raw bulk (needs matplotlib)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the throughput sender to one CPU and the receiver to another "
        "(latency always measures same-CPU and other-CPU placements where it can)",
    )
    parser.add_argument(
        "--only",
        type=_part_list,
        default=PARTS,
        metavar="PART,...",
        help=f"run only these parts (default: {','.join(PARTS)})",
    )
    parser.set_defaults(run=_run_bench)


def _add_soak(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``soak`` command (defined with the soak test itself)."""
    from .soak import add_soak_command

    add_soak_command(commands)


def _add_fanout(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``fanout`` command (defined with the load test itself)."""
    from .fanout import add_fanout_command

    add_fanout_command(commands)


def _add_servers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``servers`` command (defined with the benchmark itself)."""
    from .servers.run import add_servers_command

    add_servers_command(commands)


def _add_positional_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``positional-bench`` command (defined with the benchmark itself)."""
    from .positional import add_positional_bench_command

    add_positional_bench_command(commands)


def _add_reads(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``reads`` command (defined with the benchmark itself)."""
    from .reads import add_reads_command

    add_reads_command(commands)


def _add_latest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``latest`` command (defined with the benchmark itself)."""
    from .latest import add_latest_command

    add_latest_command(commands)


def _add_sendfile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sendfile`` command (defined with the benchmark itself)."""
    from .sendfile import add_sendfile_command

    add_sendfile_command(commands)


_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_bench,
    _add_soak,
    _add_fanout,
    _add_positional_bench,
    _add_servers,
    _add_reads,
    _add_latest,
    _add_sendfile,
]


def _parser() -> argparse.ArgumentParser:
    """Build the argument parser, with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="trio_bufwriter's measuring lab: benchmarks and load tests.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True)
    for add_command in _COMMANDS:
        add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line *argv* (default: this process's); return the exit status."""
    if argv is None:
        argv = sys.argv[1:]
        command_line = shlex.join(sys.orig_argv)
    else:
        command_line = shlex.join(["python", "-m", "benchmarks", *argv])
    args = _parser().parse_args(argv)
    args.command_line = command_line
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
