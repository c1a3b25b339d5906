"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``,
``nox -s docs``, ``nox -s examples``, ``nox -s demo``, ``nox -s bench``,
``nox -s positional_bench``, ``nox -s servers``, ``nox -s sendfile``,
``nox -s soak``, ``nox -s fanout``,
``nox -s thorough``, ``nox -s stress_tests``, and the version matrix,
``nox -s matrix``: the test suite on the oldest and the newest Python this
project supports (3.10 and 3.13), each with the minimum versions
``pyproject.toml`` declares for what the library runs on (``trio='min'``:
trio, exceptiongroup and anyio pinned by ``tools/min_versions.py``; the test
tools at their latest) and with the latest
(``trio='latest'``); one leg is ``nox -s "matrix-3.10(trio='min')"``.
CONTRIBUTING.md says what each is for."""

from __future__ import annotations

import os
import runpy
import shutil
import sys
from pathlib import Path

import nox

EXAMPLE_TESTS = sorted(str(path) for path in Path("tests").glob("test_example_*.py"))

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
# A Python the matrix names but this machine lacks fails the session.
nox.options.error_on_missing_interpreters = True

#: The oldest and the newest Python the matrix tests.
MATRIX_PYTHONS = ["3.10", "3.13"]


def _expose_matrix_pythons() -> None:
    """Put ``python3.10`` and ``python3.13`` on nox's PATH where only pyenv has
    them (its shims run only the versions it made active): a folder of links
    to what ``tools/find_python.py`` finds, ahead of the rest of PATH."""
    find_python = runpy.run_path(str(Path(__file__).parent / "tools" / "find_python.py"))[
        "find_python"
    ]
    links = Path(".nox", "_pythons").resolve()
    for version in MATRIX_PYTHONS:
        path = find_python(version)
        if path is None or path == shutil.which(f"python{version}"):
            continue  # missing: the session fails; on PATH: nothing to do
        links.mkdir(parents=True, exist_ok=True)
        link = links / f"python{version}"
        link.unlink(missing_ok=True)
        link.symlink_to(path)
    if links.is_dir():
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ['PATH']}"


_expose_matrix_pythons()


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with branch coverage (pass extra pytest args after --)."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "--cov=trio_bufwriter",
        "--cov-branch",
        "--cov-report=term-missing",
        *session.posargs,
    )


@nox.session(python=MATRIX_PYTHONS)
@nox.parametrize("trio", ["min", "latest"])
def matrix(session: nox.Session, trio: str) -> None:
    """The test suite on one Python with the declared minimum versions
    (``trio='min'``) or the latest ones (``trio='latest'``); pass pytest
    args after ``--`` (``-- --ignore=tests/lab`` as CI's extra legs do)."""
    if trio == "min":
        constraints = Path(session.create_tmp()) / "min-versions.txt"
        # Read by nox's own Python (which has tomllib or tomli), not the new venv's.
        pins = session.run(
            sys.executable, "tools/min_versions.py", "anyio", silent=True, external=True
        )
        assert isinstance(pins, str)
        constraints.write_text(pins)
        session.install("-c", str(constraints), "-e", ".[test]")
    else:
        session.install("--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]")
    session.run("python", "-m", "pip", "list")
    session.run("pytest", *session.posargs)


@nox.session
def thorough(session: nox.Session) -> None:
    """The test suite with many more hypothesis examples."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env={"HYPOTHESIS_PROFILE": "thorough"})


@nox.session(name="stress_tests")
def stress_tests(session: nox.Session) -> None:
    """The test suite 5 times beside two busy-loop processes, then 5 times
    without: every verdict must be the same on a loaded machine (pass
    ``--runs``/``--busy`` and, after ``--``, pytest args)."""
    session.install("-e", ".[test]")
    session.run("python", "tools/stress_tests.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, the examples and the lab."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", "trio_bufwriter")
    session.run("mypy", "--strict", "examples")
    session.run("mypy", "--strict", "benchmarks", "tools")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs with warnings as errors, run the docs' snippets, and
    check the rendered pages for markup left over (double backticks, roles)."""
    session.install("-e", ".[docs,test]")
    # docs/conf.py links to the Python and trio docs when it can reach them.
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run("pytest", "tests/test_docs_snippets.py", "tests/test_docs_html.py")


@nox.session
def demo(session: nox.Session) -> None:
    """The loopback demo (pass demo options after --)."""
    session.install("-e", ".")
    session.run("python", "-m", "trio_bufwriter", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The full benchmark suite, saving bench.json and the docs' chart
    (pass bench options after --, e.g. ``-- --quick`` or ``-- --pin``)."""
    session.install("-e", ".[bench]")
    session.run(
        "python",
        "-m",
        "benchmarks",
        "bench",
        "--json",
        "bench.json",
        "--chart",
        "docs/_static/bench.png",
        *session.posargs,
    )


@nox.session
def soak(session: nox.Session) -> None:
    """The soak: 1,000 loopback connections for 60 s (pass soak options after --)."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", "soak", *session.posargs)


@nox.session
def fanout(session: nox.Session) -> None:
    """The slow-consumer load test: 500 clients, one stuck, 10 s per phase."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", "fanout", *session.posargs)


@nox.session
def latest(session: nox.Session) -> None:
    """Staleness and memory for a slow client, FIFO against conflated."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", "latest", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """The examples' tests: each drives its example with a real client
    (httpx, redis-py, raw sockets)."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", "examples")
    session.run("pytest", *EXAMPLE_TESTS, *session.posargs)


@nox.session
def servers(session: nox.Session) -> None:
    """The many-connection server benchmark: redis-benchmark and wrk against
    the examples and the same code on plain trio, asyncio and uvloop, 3
    interleaved rounds (needs Debian's redis-server, redis-tools and wrk;
    pass options after --, e.g. ``-- --only resp``)."""
    session.install("-e", ".[bench,test]")
    session.run("python", "-m", "benchmarks", "servers", *session.posargs)


@nox.session
def sendfile(session: nox.Session) -> None:
    """Files and large payloads: write_file() against plain trio (read +
    send_all) and asyncio's loop.sendfile on a 1 GiB file, 1 MiB bytes
    write+drain against sendall, and wrk against the static-file example and
    the same server on plain trio and asyncio, 3 interleaved rounds (needs
    wrk; pass options after --, e.g. ``-- --size-mib 256 --parts bulk``)."""
    session.install("-e", ".[bench,test]")
    session.run("python", "-m", "benchmarks", "sendfile", *session.posargs)


@nox.session
def reads(session: nox.Session) -> None:
    """The reads benchmark: receive_exactly / receive_until / receive_line, and
    receive_frames, against asyncio's StreamReader and anyio's buffered
    stream, side by side."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks", "reads", *session.posargs)


@nox.session(name="positional_bench")
def positional_bench(session: nox.Session) -> None:
    """The positional-writer benchmark: a 256 MiB file in 16 KiB pieces from
    8 tasks, against a thread hop per piece and one sequential write."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", "positional-bench", *session.posargs)
