"""The ``--json`` file: everything the report says, and every measured run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ._report import Sample, verdicts

if TYPE_CHECKING:
    from ._options import Settings
    from .run import Outcome


def results(
    facts: dict[str, object],
    settings: Settings,
    commands: list[str],
    outcome: Outcome,
    medians: dict[tuple[str, str], float],
    elapsed: float,
) -> dict[str, object]:
    """The results as JSON-ready data."""

    def sample(s: Sample) -> dict[str, object]:
        return {**dataclasses.asdict(s), "cpu_us_per_request": s.cpu_us_per_request}

    return {
        "machine": facts,
        "settings": {**dataclasses.asdict(settings), "describe": settings.describe()},
        "commands": commands,
        "samples": [sample(s) for s in outcome.samples],
        "median_rps": [
            {"workload": workload, "variant": variant, "rps": rps}
            for (workload, variant), rps in medians.items()
        ],
        "targets": [
            {
                "workload": v.workload,
                "variant": v.target.variant,
                "other": v.target.other,
                "minimum": v.target.minimum,
                "level": v.target.level,
                "ratio": v.ratio,
                "met": v.met,
            }
            for v in verdicts(medians)
        ],
        "skipped": outcome.skipped,
        "problems": outcome.problems,
        "seconds": elapsed,
    }


def write_json(
    path: Path,
    facts: dict[str, object],
    settings: Settings,
    commands: list[str],
    outcome: Outcome,
    medians: dict[tuple[str, str], float],
    elapsed: float,
) -> None:
    """Write :func:`results` to *path*."""
    data = results(facts, settings, commands, outcome, medians, elapsed)
    path.write_text(json.dumps(data, indent=2) + "\n")
