"""benchmarks/parse_cost.py and benchmarks/turn_steps.py: every method parses
the same commands, and the step counts are counted (no speed is judged)."""

from __future__ import annotations

import pytest
import trio

from benchmarks import parse_cost, turn_steps


@pytest.mark.parametrize("method", [m for m in parse_cost.METHODS if m != "source"])
def test_every_parsing_method_finds_the_same_commands(method: str) -> None:
    count = 3 * parse_cost.PER_RECEIVE + 5  # the last receive not full
    expected = [[b"SET", b"key:%012d" % i, b"xxx"] for i in range(count)]
    assert trio.run(parse_cost.run, method, count) == expected
    assert trio.run(parse_cost.run, method, 0) == []


def test_the_source_method_only_receives() -> None:
    assert trio.run(parse_cost.run, "source", 40) == []
    with pytest.raises(ValueError, match="no method"):
        trio.run(parse_cost.run, "nope", 1)


def test_one_run_prints_how_many_commands_it_parsed(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_cost.main(["--run", "parsed", "20"]) == 0
    assert capsys.readouterr().out == "20\n"


@pytest.mark.parametrize("name", list(turn_steps.SERVERS))
def test_turn_steps_counts_steps_of_each_task(name: str) -> None:
    steps, waits = trio.run(turn_steps.exchange, name, 16, 5)
    assert steps["server"] >= 5
    assert steps["exchange"] >= 5
    assert waits >= 0


@pytest.mark.parametrize("server", parse_cost.SERVERS)
@pytest.mark.parametrize("pipeline", [1, 16])
def test_each_server_answers_every_pipelined_set(server: str, pipeline: int) -> None:
    received = trio.run(parse_cost.serve_pipelined, server, 3, pipeline)
    assert received == len(b"+OK\r\n") * 3 * pipeline


def test_a_server_run_prints_the_bytes_received(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_cost.main(["--server-run", "hand", "2", "4"]) == 0
    assert capsys.readouterr().out.strip() == str(len(b"+OK\r\n") * 8)
