"""The fallback leg: CI runs the whole suite a second time with
TRIO_BUFWRITER_PUBLIC_ONLY=1, so that the library uses only trio's public API.

One promise is not kept there, and the docs say so: without trio's count of
a task's yields, a task's writes between two parks of the sender are one
"step", so at most one of them goes straight to the socket (the others go
through the sender).  Tests of that promise are marked ``needs_internals``.
"""

from __future__ import annotations

import pytest

from trio_bufwriter._run_context import USES_INTERNALS

needs_internals = pytest.mark.skipif(
    not USES_INTERNALS,
    reason="public fallback: one direct send per idle spell of the sender, not per task step",
)
