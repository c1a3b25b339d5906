"""What the writer reads of trio's run context must agree with trio, on this trio."""

from __future__ import annotations

import math

import trio
import trio.lowlevel

from trio_bufwriter._run_context import RUN_CONTEXT, current_step


def _trio_says_cancelled() -> bool:
    return trio.current_effective_deadline() == -math.inf


def _we_say_cancelled() -> bool:
    return bool(RUN_CONTEXT.task._cancel_status.effectively_cancelled)


async def test_the_fast_path_is_in_use_on_the_installed_trio() -> None:
    # If trio moves its internals, drain() silently falls back to the slower
    # public checkpoint_if_cancelled(); this makes that fallback visible.
    assert RUN_CONTEXT is not None


async def test_fast_check_agrees_with_trio_inside_and_outside_cancelled_scopes() -> None:
    assert _we_say_cancelled() is _trio_says_cancelled() is False
    with trio.CancelScope() as outer:  # noqa: ASYNC100 - no await on purpose
        outer.cancel()
        assert _we_say_cancelled() is _trio_says_cancelled() is True
        with trio.CancelScope(shield=True):  # noqa: ASYNC100
            assert _we_say_cancelled() is _trio_says_cancelled() is False
        assert _we_say_cancelled() is True
    with trio.move_on_after(1000):  # noqa: ASYNC100
        assert _we_say_cancelled() is False


async def test_fast_check_sees_a_cancelled_nursery_from_a_child_task() -> None:
    seen: list[bool] = []

    async def child() -> None:
        seen.append(_we_say_cancelled())
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.cancel_scope.cancel()
        nursery.start_soon(child)
    assert seen == [] or seen == [True]


async def test_the_step_changes_when_the_task_yields_and_only_then() -> None:
    first = current_step()
    assert current_step() == first
    await trio.lowlevel.cancel_shielded_checkpoint()
    second = current_step()
    assert second != first
    assert second[0] is first[0] is trio.lowlevel.current_task()
    await trio.lowlevel.checkpoint()
    assert current_step() != second


async def test_each_task_is_in_a_step_of_its_own() -> None:
    steps: list[tuple[object, int]] = []

    async def record() -> None:
        steps.append(current_step())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(record)
        nursery.start_soon(record)
    assert steps[0][0] is not steps[1][0]
    assert current_step()[0] not in (steps[0][0], steps[1][0])
