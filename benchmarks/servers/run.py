"""The driver: start each server variant, check it answers, load it with
redis-benchmark or wrk, stop it; in interleaved rounds; then report.

In each round, for each workload, every variant is run in turn (started,
checked, warmed up, measured, stopped), so that slow spells of a shared
machine fall on all variants alike; each round starts the variants one
further along, so none is always first.  The report gives the median over
rounds of each measure.

Speed targets are reported, never failed: the exit status is 0 when
everything that could run ran and answered correctly, 1 on a correctness
problem (a server that did not start, answered wrongly or died, a load
generator that saw errors), 2 on bad options.  A missing tool skips the
rows that need it, with a word in the report on how to install it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ._loadgen import (
    LoadError,
    LoadResult,
    check_redis_benchmark,
    redis_benchmark_command,
    run_bounded,
    run_redis_benchmark,
    run_wrk,
    wrk_command,
)
from ._machine import format_facts, machine_facts
from ._options import Settings, add_arguments, settings_from_args
from ._process import ServerDidNotStart, ServerFailed, free_port, running_server
from ._report import Sample, format_table, summarize, verdicts
from ._results import write_json
from ._sanity import SanityError, check_http, check_resp, check_resp_canned
from ._serving import ROOT
from ._variants import BASELINES, LOAD_GENERATORS, VARIANTS, WORKLOADS, Variant, Workload

__all__ = ["add_servers_command", "check_answers", "main", "run_servers"]

#: How many times to try a server that listens on a port picked for it
#: (redis-server), in case another process took the port in between.
_PORT_TRIES = 3


@dataclass
class Outcome:
    """What a run has gathered so far."""

    samples: list[Sample] = field(default_factory=list)
    #: A line per skipped variant or workload, with what to install.
    skipped: list[str] = field(default_factory=list)
    #: A line per correctness problem; any makes the exit status 1.
    problems: list[str] = field(default_factory=list)
    #: (kind, name) of the variants that failed once: not run again.
    broken: set[tuple[str, str]] = field(default_factory=set)


def server_env() -> dict[str, str]:
    """The servers' environment: this checkout's root first on PYTHONPATH, so
    the examples import this checkout's trio_bufwriter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def plan(settings: Settings, outcome: Outcome) -> tuple[list[Workload], list[Variant]]:
    """The workloads and variants to run, less those whose tools are missing
    (each said in ``outcome.skipped``)."""
    kinds = [kind for kind in ("resp", "http") if kind in settings.kinds]
    for kind in list(kinds):
        tool = LOAD_GENERATORS[kind]
        if tool.missing():
            outcome.skipped.append(f"skipped {kind.upper()}: {tool.skip_message()}")
            kinds.remove(kind)
    variants = []
    for variant in VARIANTS:
        if variant.kind not in kinds:
            continue
        if settings.names is not None and variant.name not in settings.names:
            continue
        missing = variant.missing()
        if missing:
            why = "; ".join(need.skip_message() for need in missing)
            outcome.skipped.append(f"skipped {variant.kind.upper()} {variant.name}: {why}")
            continue
        variants.append(variant)
    workloads = [workload for workload in WORKLOADS if workload.kind in kinds]
    return workloads, variants


def commands(settings: Settings, workloads: list[Workload], variants: list[Variant]) -> list[str]:
    """The exact command lines used, with PORT for the port."""
    lines = []
    for v in variants:
        start = v.command(0 if v.announces_port else "PORT")
        said = "  (prints the port it picked)" if v.announces_port else ""
        lines.append(f"server {v.kind} {v.name}: {shlex.join(start)}{said}")
    for workload in workloads:
        if workload.test is None:
            command = wrk_command("PORT", clients=settings.clients, seconds=settings.seconds)
            warm = f"-d{settings.warmup_seconds:g}s"
        else:
            command = redis_benchmark_command(
                "PORT", clients=settings.clients,
                requests=settings.requests_for(workload.pipeline),
                pipeline=workload.pipeline, tests=workload.test,
            )  # fmt: skip
            warm = f"-n {settings.warmup_requests} -t set,get"
        lines.append(f"load {workload.name}: {shlex.join(command)}  (after a warm-up with {warm})")
    return lines


def check_answers(variant: Variant, port: int) -> None:
    """Check that *variant*, listening on *port*, answers as it should.

    Raises:
      SanityError: it does not.
    """
    if variant.kind == "http":
        check_http(port)
    elif variant.canned:
        check_resp_canned(port)
    else:
        check_resp(port)


def _start_command(variant: Variant) -> tuple[list[str], int | None]:
    """The command line to start *variant*, and the port picked for it, if any."""
    if variant.announces_port:
        return variant.command(0), None
    port = free_port()
    return variant.command(port), port


def warm_up(workload: Workload, settings: Settings, port: int) -> None:
    """A short run of the workload's load generator, unmeasured.

    Raises:
      LoadError: it failed, or saw errors.
    """
    if workload.test is None:
        seconds = settings.warmup_seconds
        run_wrk(port, clients=settings.clients, seconds=seconds, timeout=seconds + 30)
        return
    # SET and GET both, so that GET finds its key, as in redis-benchmark's own runs.
    command = redis_benchmark_command(
        port, clients=settings.clients, requests=settings.warmup_requests,
        pipeline=workload.pipeline, tests="set,get",
    )  # fmt: skip
    check_redis_benchmark(run_bounded(command, 60))


def load(workload: Workload, settings: Settings, port: int) -> LoadResult:
    """The measured run of the workload's load generator, bounded in time.

    Raises:
      LoadError: it failed, timed out, or saw errors.
    """
    if workload.test is None:
        seconds = settings.seconds
        return run_wrk(port, clients=settings.clients, seconds=seconds, timeout=seconds + 30)
    return run_redis_benchmark(
        port, clients=settings.clients, requests=settings.requests_for(workload.pipeline),
        pipeline=workload.pipeline, test=workload.test,
        timeout=60 + settings.requests_for(workload.pipeline) / 500,  # (500/s: very slow)
    )  # fmt: skip


def measure(
    variant: Variant, workload: Workload, settings: Settings, logdir: Path, round_number: int
) -> Sample:
    """Start *variant*, check its answers, warm it up, measure it once, stop it.

    Raises:
      ServerFailed, SanityError, LoadError: a correctness problem.
    """
    env = server_env()
    log = logdir / f"{variant.kind}-{variant.name}.log"
    for attempt in range(_PORT_TRIES):
        command, port = _start_command(variant)
        ready = None if variant.announces_port else "Ready to accept connections"
        try:
            with running_server(
                variant.name, command, log=log, env=env, cwd=ROOT, port=port, ready_text=ready
            ) as server:
                check_answers(variant, server.port)
                warm_up(workload, settings, server.port)
                before = server.cpu_seconds()
                result = load(workload, settings, server.port)
                after = server.cpu_seconds()
                server.check_alive()
        except ServerDidNotStart:
            if port is None or attempt + 1 == _PORT_TRIES:
                raise
            continue  # (its port may have been taken in between: try another)
        cpu = None if before is None or after is None else after - before
        return Sample(
            workload.name, variant.name, round_number, result.requests, result.rps,
            result.p50_ms, result.p99_ms, cpu,
        )  # fmt: skip
    raise AssertionError("unreachable")


def run_rounds(
    settings: Settings, workloads: list[Workload], variants: list[Variant], outcome: Outcome
) -> None:
    """Every round, every workload, every variant in turn; samples and
    problems go to *outcome*, progress to stderr."""
    with tempfile.TemporaryDirectory(prefix="servers-bench-") as logdir:
        for number in range(settings.rounds):
            for workload in workloads:
                line = [v for v in variants if v.kind == workload.kind]
                shift = number % len(line) if line else 0
                for variant in line[shift:] + line[:shift]:
                    if (variant.kind, variant.name) in outcome.broken:
                        continue
                    where = f"[round {number + 1}/{settings.rounds}] {workload.name:14}"
                    try:
                        sample = measure(variant, workload, settings, Path(logdir), number + 1)
                    except (ServerFailed, SanityError, LoadError) as exc:
                        outcome.broken.add((variant.kind, variant.name))
                        outcome.problems.append(f"{workload.name} {variant.name}: {exc}")
                        print(f"{where} {variant.name:15} FAILED: {exc}", file=sys.stderr)
                        continue
                    outcome.samples.append(sample)
                    print(f"{where} {variant.name:15} {sample.rps:12,.0f} req/s", file=sys.stderr)


def report(
    out: TextIO, workloads: list[Workload], variants: list[Variant], outcome: Outcome
) -> dict[tuple[str, str], float]:
    """Print a table per workload and the targets' verdicts; return the
    median req/s by (workload, variant)."""
    medians: dict[tuple[str, str], float] = {}
    for workload in workloads:
        rows = []
        for variant in variants:
            if variant.kind != workload.kind:
                continue
            samples = [
                s
                for s in outcome.samples
                if (s.workload, s.variant) == (workload.name, variant.name)
            ]
            if samples:
                rows.append(summarize(samples))
                medians[workload.name, variant.name] = rows[-1].rps
        print(f"\n{format_table(workload.name, rows, BASELINES[workload.kind])}", file=out)
    print("\nTargets (ratios of median req/s; reported, never a failure):", file=out)
    for verdict in verdicts(medians):
        if any(w.name == verdict.workload for w in workloads):
            print(f"  {verdict.line()}", file=out)
    return medians


def run_servers(
    *,
    rounds: int | None = None,
    requests: int | None = None,
    seconds: float | None = None,
    clients: int | None = None,
    quick: bool = False,
    only: str | None = None,
    variants: list[str] | None = None,
    json_path: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the benchmark, print its report to *out* (stdout); return the exit status.

    Options left None take their defaults (smaller ones with *quick*):
    see ``python -m benchmarks.servers --help``.
    """
    out = sys.stdout if out is None else out
    try:
        settings = Settings.resolve(
            rounds=rounds, requests=requests, seconds=seconds, clients=clients,
            quick=quick, only=only, variants=variants,
        )  # fmt: skip
    except ValueError as exc:
        print(f"servers: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    outcome = Outcome()
    workloads, chosen = plan(settings, outcome)
    facts = machine_facts(server_env())
    used = commands(settings, workloads, chosen)
    print(f"Server benchmark ({settings.describe()})", file=out)
    print(format_facts(facts), file=out)
    print("Commands:", *(f"  {line}" for line in used), sep="\n", file=out)
    for line in outcome.skipped:
        print(line, file=out)
    out.flush()
    run_rounds(settings, workloads, chosen, outcome)
    medians = report(out, workloads, chosen, outcome)
    elapsed = time.monotonic() - started
    for problem in outcome.problems:
        print(f"PROBLEM: {problem}", file=out)
    status = 1 if outcome.problems else 0
    print(f"\nTook {elapsed:.0f} s; exit status {status}.", file=out)
    if json_path is not None:
        write_json(json_path, facts, settings, used, outcome, medians, elapsed)
        print(f"Results saved to {json_path}", file=out)
    return status


def _run_parsed(args: argparse.Namespace) -> int:
    return run_servers(**settings_from_args(args))


def add_servers_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``servers`` subcommand to *commands*; its ``run`` default takes
    the parsed arguments and returns the exit status."""
    parser = commands.add_parser(
        "servers",
        help="many-connection server benchmark (redis-benchmark, wrk)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(run=_run_parsed)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.servers``: parse *argv*, run, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return _run_parsed(parser.parse_args(argv))
