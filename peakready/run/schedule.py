"""When each fault of the plan starts, relative to the load's start (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakready.chaos.spec import FaultSpec


@dataclass(frozen=True)
class ScheduledFault:
    name: str
    experiment: str
    at_s: float
    configuration: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the experiment file the plan found (None: ``experiment``)

    @property
    def file_stem(self) -> str:
        """Journal and log names in the run folder: the fault's name, made path-safe."""
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in self.name)


def fault_schedule(faults: Iterable[Mapping[str, Any]]) -> list[ScheduledFault]:
    """The plan's ``faults`` sorted by offset; a nameless fault takes its experiment's stem."""
    out = [
        ScheduledFault(
            name=str(f.get("name") or Path(str(f["experiment"])).stem),
            experiment=str(f["experiment"]),
            at_s=float(f.get("at_s", 0.0)),
            configuration=dict(f.get("configuration") or {}),
        )
        for f in faults
    ]
    return sorted(out, key=lambda f: (f.at_s, f.name))


def from_specs(specs: Iterable[FaultSpec]) -> list[ScheduledFault]:
    """The plan's faults (``Plan.fault_specs``) sorted by offset, each with the experiment
    file the plan found when it loaded: the run launches that file, it never looks again."""
    out = [ScheduledFault(s.name, s.experiment, s.at_s, dict(s.configuration), s.path)
           for s in specs]
    return sorted(out, key=lambda f: (f.at_s, f.name))


def due(schedule: Sequence[ScheduledFault], launched: set[str], elapsed_s: float) -> list[ScheduledFault]:
    """Faults whose offset has passed and that were not launched yet."""
    return [f for f in schedule if f.name not in launched and f.at_s <= elapsed_s]


def next_fault(schedule: Sequence[ScheduledFault], launched: set[str],
               elapsed_s: float) -> tuple[str, float] | None:
    """The next fault still to come and the seconds until it starts."""
    for f in schedule:
        if f.name not in launched:
            return f.name, max(0.0, f.at_s - elapsed_s)
    return None


def phase_at(phases: Sequence[Mapping[str, Any]] | None, elapsed_s: float) -> str:
    """The plan phase covering ``elapsed_s`` (the live view shows it)."""
    for p in phases or []:
        if float(p.get("start_s", 0)) <= elapsed_s < float(p.get("end_s", float("inf"))):
            return str(p.get("name", "?"))
    return "load" if not phases else "-"
