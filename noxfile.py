"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``,
``nox -s demo``, ``nox -s bench``, ``nox -s soak``, ``nox -s fanout``,
``nox -s examples``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


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


@nox.session
def thorough(session: nox.Session) -> None:
    """The test suite with many more hypothesis examples."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env={"HYPOTHESIS_PROFILE": "thorough"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", "trio_bufwriter")


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
        "trio_bufwriter",
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
    session.run("python", "-m", "trio_bufwriter", "soak", *session.posargs)


@nox.session
def fanout(session: nox.Session) -> None:
    """The slow-consumer load test: 500 clients, one stuck, 10 s per phase."""
    session.install("-e", ".")
    session.run("python", "-m", "trio_bufwriter", "fanout", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """The examples' tests (they drive each example with real clients)."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", "examples")
    session.run("pytest", "tests/test_example_chat.py", *session.posargs)
