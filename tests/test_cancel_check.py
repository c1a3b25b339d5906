"""The two questions _run_context.py answers, checked against trio's public API,
in whichever mode this run uses (trio's internals, or the public fallbacks
forced with TRIO_BUFWRITER_PUBLIC_ONLY=1)."""

from __future__ import annotations

import math

import pytest
import trio
import trio.lowlevel
from internals_testing import needs_internals

from trio_bufwriter._run_context import USES_INTERNALS, cancel_pending, current_step


def _trio_says_cancelled() -> bool:
    return trio.current_effective_deadline() == -math.inf


@needs_internals
async def test_the_fast_path_is_in_use_on_the_installed_trio() -> None:
    # If trio moves its internals, the hot paths silently fall back to the
    # slower public answers; this makes that visible.
    assert USES_INTERNALS


async def test_cancel_pending_agrees_with_trio_inside_and_outside_cancelled_scopes() -> None:
    assert cancel_pending() is _trio_says_cancelled() is False
    with trio.CancelScope() as outer:  # noqa: ASYNC100 - no await on purpose
        outer.cancel()
        assert cancel_pending() is _trio_says_cancelled() is True
        with trio.CancelScope(shield=True):  # noqa: ASYNC100
            assert cancel_pending() is _trio_says_cancelled() is False
        assert cancel_pending() is True
    with trio.move_on_after(1000):  # noqa: ASYNC100
        assert cancel_pending() is False


async def test_cancel_pending_sees_a_cancelled_nursery_from_a_child_task() -> None:
    seen: list[bool] = []

    async def child() -> None:
        seen.append(cancel_pending())
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
        seen.append(cancel_pending())
    assert seen == [False, True]


@needs_internals
async def test_the_step_changes_when_the_task_yields_and_only_then() -> None:
    first = current_step()
    assert current_step() == first
    await trio.lowlevel.cancel_shielded_checkpoint()
    second = current_step()
    assert second != first
    assert second[0] is first[0] is trio.lowlevel.current_task()
    await trio.lowlevel.checkpoint()
    assert current_step() != second


@pytest.mark.skipif(USES_INTERNALS, reason="the public fallback's own rule")
async def test_without_internals_every_call_of_a_task_is_one_step() -> None:
    first = current_step()
    await trio.lowlevel.checkpoint()
    assert current_step() == first
    assert first[0] is trio.lowlevel.current_task()
