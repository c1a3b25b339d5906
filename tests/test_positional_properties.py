"""Property tests: the planned batch and the whole writer against a model file.

The model is a ``bytearray`` with every write applied in call order; the
file (or the planned runs) must equal it byte for byte.
"""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import pytest
import trio
import trio.testing
from hypothesis import given

from trio_bufwriter import open_positional_writer
from trio_bufwriter._ranges import coalesce, plan_batch

pieces_strategy = st.lists(
    st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=40)), min_size=1, max_size=40
)


def _apply(model: bytearray, offset: int, data: bytes) -> None:
    if len(model) < offset:
        model.extend(bytes(offset - len(model)))
    model[offset : offset + len(data)] = data


@given(pieces=pieces_strategy, iov_max=st.integers(1, 8), max_run=st.integers(1, 100))
def test_the_plan_writes_what_call_order_would(
    pieces: list[tuple[int, bytes]], iov_max: int, max_run: int
) -> None:
    model = bytearray()
    for offset, data in pieces:
        _apply(model, offset, data)
    plan = plan_batch(pieces, iov_max=iov_max, max_run_bytes=max_run)

    written = bytearray(len(model))
    covered: list[tuple[int, int]] = []
    previous_end = -1
    for run in plan.runs:
        assert run.offset >= previous_end  # sorted and disjoint
        assert run.length == sum(len(buffer) for buffer in run.buffers)
        assert len(run.buffers) <= iov_max
        assert run.length <= max(max_run, max(len(buffer) for buffer in run.buffers))
        written[run.offset : run.end] = b"".join(run.buffers)
        covered.append((run.offset, run.end))
        previous_end = run.end
    assert coalesce(covered) == coalesce([(o, o + len(d)) for o, d in pieces])
    for start, end in covered:
        assert written[start:end] == model[start:end]
    total = sum(len(data) for _, data in pieces)
    assert plan.superseded == total - sum(run.length for run in plan.runs)


@given(pieces=pieces_strategy)
def test_runs_are_as_few_as_the_gaps_allow(pieces: list[tuple[int, bytes]]) -> None:
    plan = plan_batch(pieces)
    assert len(plan.runs) == len(coalesce([(o, o + len(d)) for o, d in pieces]))


@given(ranges=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20))))
def test_coalesce_joins_exactly_the_ranges_that_touch(ranges: list[tuple[int, int]]) -> None:
    spans = [(start, start + length) for start, length in ranges if length]
    merged = coalesce(spans)
    points = {p for start, end in spans for p in range(start, end)}
    assert {p for start, end in merged for p in range(start, end)} == points
    for (_, end), (start, _) in itertools.pairwise(merged):
        assert end < start  # neither overlapping nor touching


# ----------------------------------------------------------------------
# The whole writer, several tasks, flushes and drains


operation = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 300), st.integers(1, 64)),
    st.tuples(st.just("flush"), st.booleans(), st.just(0)),
    st.tuples(st.just("drain"), st.just(0), st.just(0)),
    st.tuples(st.just("yield"), st.just(0), st.just(0)),
)


@given(
    scripts=st.lists(st.lists(operation, max_size=25), min_size=1, max_size=4),
    high_water=st.integers(1, 400),
)
def test_the_file_equals_the_writes_applied_in_call_order(
    tmp_path_factory: pytest.TempPathFactory,
    scripts: list[list[tuple[str, int, int]]],
    high_water: int,
) -> None:
    path = tmp_path_factory.mktemp("prop") / "out.bin"
    log: list[tuple[int, bytes]] = []

    def model_of(writes: list[tuple[int, bytes]]) -> bytearray:
        model = bytearray()
        for offset, data in writes:
            _apply(model, offset, data)
        return model

    async def main() -> None:
        async with open_positional_writer(
            path, high_water=high_water, low_water=high_water // 2
        ) as writer:

            async def task(script: list[tuple[str, int, int]]) -> None:
                for kind, a, b in script:
                    if kind == "write":
                        # Logged at the moment of the call: the order the
                        # writer must honour.
                        data = bytes([len(log) % 251 + 1]) * b
                        log.append((a, data))
                        writer.write_at(a, data)
                    elif kind == "flush":
                        before = len(log)
                        await writer.flush(fsync=bool(a))
                        # Every write before the call is in the file, except
                        # where a write made since may have replaced it.
                        expected = model_of(log[:before])
                        later = {p for o, d in log[before:] for p in range(o, o + len(d))}
                        actual = path.read_bytes()
                        for position, byte in enumerate(expected):
                            if position not in later:
                                assert actual[position] == byte
                    elif kind == "drain":
                        await writer.drain()
                        assert writer.pending <= high_water
                    else:
                        await trio.lowlevel.checkpoint()

            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    for script in scripts:
                        nursery.start_soon(task, script)
        stats = writer.statistics()
        assert stats.bytes_accepted == sum(len(data) for _, data in log)
        assert stats.bytes_written + stats.bytes_superseded == stats.bytes_accepted

    trio.run(main)
    assert path.read_bytes() == bytes(model_of(log))
