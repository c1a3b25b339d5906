"""Run the test suite several times, with CPU-bound neighbours and without.

``python tools/stress_tests.py --runs 5 --busy 2 -- [pytest args]`` starts
``--busy`` processes that each spin in a busy loop, runs the README's test
command (``python -m pytest`` with branch coverage) ``--runs`` times in a row
beside them, stops them, then does the same ``--runs`` times on the quiet
machine, and prints one line per run and the counts.  The exit status is 0
only if every run passed.

It checks the promise the suite makes: every test gives the same verdict on
a fast or a slow machine, idle or loaded (CONTRIBUTING.md, "Test
standards").  ``nox -s stress_tests`` runs it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

#: The README's test command, with the coverage CI measures.
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=trio_bufwriter"]
PYTEST += ["--cov-branch", "--cov-report="]


def _spin() -> None:  # pragma: no cover - runs in the child
    while True:
        pass


@contextmanager
def busy_neighbours(count: int) -> Iterator[None]:
    """Keep *count* processes spinning on the CPU while inside."""
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_spin, daemon=True) for _ in range(count)]
    for child in children:
        child.start()
    try:
        yield
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.join()


def run_suite(label: str, number: int, extra: Sequence[str]) -> bool:
    """Run the suite once; print its closing line; return whether it passed."""
    started = time.monotonic()
    result = subprocess.run([*PYTEST, *extra], capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    summary = next((line for line in reversed(lines) if re.search(r" (passed|failed)", line)), "")
    print(
        f"{label} run {number}: exit {result.returncode}, {time.monotonic() - started:.0f} s: "
        f"{summary.strip('= ')}",
        flush=True,
    )
    if result.returncode:
        failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        print("\n".join(f"    {line}" for line in failures[:20]), flush=True)
    return result.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (default: 5)")
    parser.add_argument("--busy", type=int, default=2, help="busy processes (default: 2)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args(argv)
    passed = {"loaded": 0, "quiet": 0}
    with busy_neighbours(args.busy):
        for number in range(1, args.runs + 1):
            passed["loaded"] += run_suite(f"loaded ({args.busy} busy)", number, args.pytest_args)
    for number in range(1, args.runs + 1):
        passed["quiet"] += run_suite("quiet", number, args.pytest_args)
    print(
        f"{passed['loaded']}/{args.runs} green with {args.busy} busy processes beside, "
        f"{passed['quiet']}/{args.runs} green without",
        flush=True,
    )
    return 0 if sum(passed.values()) == 2 * args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
