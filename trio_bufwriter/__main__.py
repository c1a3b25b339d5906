"""The command line: ``python -m trio_bufwriter COMMAND [OPTIONS]``.

Each command is a sub-parser whose ``run`` default takes the parsed arguments
and returns the exit status; add a command by adding a ``_add_...`` function
to :data:`_COMMANDS`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence

from ._cli import positive_int


def _run_demo(args: argparse.Namespace) -> int:
    """Run ``demo`` with the parsed *args*."""
    # Imported here so that --help stays fast and other commands stay independent.
    from ._demo import run_demo

    return run_demo(args.messages, args.size, args.repeat, command=args.command_line)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    parser = commands.add_parser(
        "demo",
        help="compare BufferedWriter with plain send_all over loopback TCP",
        description=(
            "Send many small messages to a receiver in another process over "
            "loopback TCP, through a BufferedWriter (write + drain) and with one "
            "send_all per message, alternating; print the median rates."
        ),
    )
    parser.add_argument(
        "--messages",
        type=positive_int,
        default=300_000,
        metavar="N",
        help="messages per run (default: %(default)s)",
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=64,
        metavar="BYTES",
        help="bytes per message (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        metavar="R",
        help="timed runs of each method (default: %(default)s)",
    )
    parser.set_defaults(run=_run_demo)


#: The commands that live in the repository's measuring lab (``benchmarks/``),
#: not in the installed package.
_LAB_COMMANDS = ("bench", "positional-bench", "soak", "fanout", "servers")

_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_demo,
]


def _parser() -> argparse.ArgumentParser:
    """Build the argument parser, with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m trio_bufwriter",
        description="trio_bufwriter tools.",
        epilog="The benchmarks and load tests (bench, positional-bench, soak, fanout, "
        "servers) are not installed with the library: run them from a clone of the "
        "repository with python -m benchmarks COMMAND.",
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
        command_line = shlex.join(["python", "-m", "trio_bufwriter", *argv])
    if argv and argv[0] in _LAB_COMMANDS:
        print(
            f"python -m trio_bufwriter: {argv[0]!r} is part of the measuring lab, which is "
            "not installed with the library; from a clone of the repository, run: "
            f"python -m benchmarks {shlex.join(argv)}",
            file=sys.stderr,
        )
        return 2
    args = _parser().parse_args(argv)
    args.command_line = command_line
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
