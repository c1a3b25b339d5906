"""Shared fixtures and helpers for the trio_bufwriter tests."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI runs a bounded, derandomized set of examples, so that its verdict does
# not depend on the seed; HYPOTHESIS_PROFILE=thorough (nox -s thorough)
# explores with fresh random examples and many more of them.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# CI's extra legs (the fallback and the version legs) check that the same
# properties hold there, with fewer examples: the main leg explores.
settings.register_profile(
    "legs",
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
