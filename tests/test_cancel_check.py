"""drain()'s fast cancellation check must agree with trio's own, on this trio."""

from __future__ import annotations

import math

import trio

from trio_bufwriter._cancel import RUN_CONTEXT


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
