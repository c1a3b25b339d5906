"""A model-based property test of ConflatingWriter: latest value wins, per key.

A producer runs a hypothesis-chosen program of keyed writes (a few keys,
frames of varied sizes), plain writes and pauses, over a
:func:`trio.testing.lockstep_stream_pair` whose receiver reads at
hypothesis-chosen moments, in hypothesis-chosen chunk sizes (the writer is
blocked until it does).  At the end the conflating writer is closed, which
flushes, while the receiver reads to end-of-file.  Each frame carries its key
and its write's global sequence number, so the received bytes can be checked
against the model:

* every frame arrives whole (the bytes parse back into frames);
* per key, the frames received are a subsequence of those written for it,
  in order (never an older one after a newer one), ending with the last one
  written;
* every plain write arrives, in order, and each is a barrier: nothing
  written after it arrives before it, and for every key the last frame
  written before it arrives before it;
* the statistics add up, and the frames waiting never hold more than one
  frame per key (plus, while there were no plain writes, the writer holds
  at most high water plus one frame).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trio_bufwriter import BufferedWriter, ConflatingWriter

KEYS = 4
MAX_PAD = 24
MAX_FRAME = len(b"K0:00000:") + MAX_PAD + 1
_FRAME = re.compile(rb"(?:K(\d):(\d{5}):x*|P:(\d{5}))\n")


def keyed(key: int, seq: int, pad: int) -> bytes:
    return b"K%d:%05d:" % (key, seq) + b"x" * pad + b"\n"


def plain(seq: int) -> bytes:
    return b"P:%05d\n" % seq


@dataclass(frozen=True)
class Item:
    key: int | None  # None: a plain write
    seq: int


def parse(data: bytes) -> list[Item]:
    items = []
    at = 0
    while at < len(data):
        match = _FRAME.match(data, at)
        assert match is not None, f"a torn frame at byte {at}: {data[at : at + 40]!r}"
        key, seq, plain_seq = match.groups()
        if key is not None:
            items.append(Item(int(key), int(seq)))
        else:
            items.append(Item(None, int(plain_seq)))
        at = match.end()
    return items


_latest = st.tuples(st.just("latest"), st.integers(0, KEYS - 1), st.integers(0, MAX_PAD))
# Keyed writes are the ones that conflate: make them most of the program.
operations = st.lists(
    st.one_of(
        _latest,
        _latest,
        _latest,
        _latest,
        # n keyed writes in a row, keys cycling from a chosen one.
        st.tuples(st.just("burst"), st.integers(1, 40), st.integers(0, KEYS - 1)),
        st.tuples(st.just("plain"), st.just(0), st.just(0)),
        st.tuples(st.just("read"), st.integers(1, 200), st.just(0)),
        st.tuples(st.just("settle"), st.just(0), st.just(0)),
    ),
    max_size=150,
)


@given(
    program=operations,
    high_water=st.sampled_from([0, 16, 48, 200]),
    final_chunk=st.integers(1, 64),
)
def test_the_consumer_sees_per_key_the_newest_frames_in_order_and_every_plain_write(
    program: list[tuple[str, int, int]], high_water: int, final_chunk: int
) -> None:
    trio.run(_check_program, program, high_water, final_chunk)


async def _check_program(
    program: list[tuple[str, int, int]], high_water: int, final_chunk: int
) -> None:
    sender, receiver = trio.testing.lockstep_stream_pair()
    writer = BufferedWriter(sender, high_water=high_water)
    latest = ConflatingWriter(writer)
    written: list[Item] = []
    received = bytearray()

    async def read(max_bytes: int) -> None:
        await trio.testing.wait_all_tasks_blocked()
        if writer.buffered:
            # The sender is inside the lockstep send_all: there is something to read.
            received.extend(await receiver.receive_some(max_bytes))
            await trio.testing.wait_all_tasks_blocked()

    async def read_to_the_end() -> None:
        while chunk := await receiver.receive_some(final_chunk):
            received.extend(chunk)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await nursery.start(latest.run)
            for op, arg, pad in program:
                seq = len(written)
                if op == "latest":
                    latest.write_latest(arg, keyed(arg, seq, pad))
                    written.append(Item(arg, seq))
                elif op == "burst":
                    for n in range(arg):
                        key = (pad + n) % KEYS
                        latest.write_latest(key, keyed(key, len(written), n % MAX_PAD))
                        written.append(Item(key, len(written)))
                elif op == "plain":
                    latest.write(plain(seq))
                    written.append(Item(None, seq))
                elif op == "read":
                    await read(arg)
                else:
                    await trio.testing.wait_all_tasks_blocked()
                assert latest.statistics().pending_bytes <= KEYS * MAX_FRAME
                if all(item.key is not None for item in written):
                    assert writer.buffered <= high_water + MAX_FRAME
            nursery.start_soon(read_to_the_end)
            await latest.aclose()
        await receiver.aclose()

    got = parse(bytes(received))
    # Plain writes: all of them, in order.
    assert [i.seq for i in got if i.key is None] == [i.seq for i in written if i.key is None]
    # Per key: a subsequence, in order, ending with the last one written.
    for key in range(KEYS):
        sent = [i.seq for i in written if i.key == key]
        seen = [i.seq for i in got if i.key == key]
        assert seen == sorted(set(seen)), f"key {key}: out of order or repeated: {seen}"
        assert set(seen) <= set(sent)
        assert seen[-1:] == sent[-1:], f"key {key}: the last frame {sent[-1:]} is not last"
    # Plain writes are barriers.
    for at, item in enumerate(got):
        if item.key is not None:
            continue
        assert all(before.seq < item.seq for before in got[:at])
        assert all(after.seq > item.seq for after in got[at + 1 :])
        for key in range(KEYS):
            last_before = [i.seq for i in written if i.key == key and i.seq < item.seq][-1:]
            assert set(last_before) <= {i.seq for i in got[:at]}
    stats = latest.statistics()
    frames = sum(1 for i in written if i.key is not None)
    delivered = sum(1 for i in got if i.key is not None)
    assert stats.frames_written == frames
    assert stats.frames_sent == delivered
    assert stats.frames_superseded == frames - delivered
    assert (stats.frames_lost, stats.pending_frames, stats.pending_bytes) == (0, 0, 0)
    assert stats.plain_writes == len(written) - frames
