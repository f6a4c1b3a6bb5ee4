"""Fault start/end events from the chaos journals of the run.

The journal's method activities bound when the fault was *requested*; the real window
comes from infrastructure events (see events.py). A fault whose process died before it
wrote a journal still gets its events, from the times the run loop launched and ended
it, marked ``journal: null`` so analysis can tell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peakready.collect.events import _epoch, event


@dataclass(frozen=True)
class FaultRecord:
    """What the run loop knows about one fault it launched."""

    name: str
    experiment: str
    journal: str
    launched_at: float
    ended_at: float | None
    returncode: int | None = None
    interrupted: bool = False


def fault_rows(faults: Iterable[FaultRecord], read_outcome: Any) -> list[dict]:
    rows: list[dict] = []
    for fault in faults:
        journal = Path(fault.journal)
        common: dict[str, Any] = {"experiment": fault.experiment, "returncode": fault.returncode,
                                  "interrupted": fault.interrupted}
        if journal.exists():
            outcome = read_outcome(journal)
            start = _epoch(getattr(outcome, "fault_start", None)) or fault.launched_at
            end = _epoch(getattr(outcome, "fault_end", None)) or fault.ended_at or start
            common.update(
                journal=str(journal), status=getattr(outcome, "status", None),
                deviated=getattr(outcome, "deviated", None), ok=getattr(outcome, "ok", None),
                reason=getattr(outcome, "reason", ""),
                rollbacks_ran=getattr(outcome, "rollbacks_ran", None),
                steady_state_before_met=getattr(outcome, "steady_state_before_met", None),
                steady_state_after_met=getattr(outcome, "steady_state_after_met", None),
                deviations_during=_plain(getattr(outcome, "deviations_during", None)),
            )
        else:
            start = fault.launched_at
            end = fault.ended_at or fault.launched_at
            common.update(journal=None, status="interrupted" if fault.interrupted else "no journal",
                          deviated=None, ok=False, reason="the experiment wrote no journal")
        rows.append(event(start, "chaos", "fault_start", fault.name, **common))
        rows.append(event(end, "chaos", "fault_end", fault.name, **common))
    return rows


def _plain(value: Any) -> Any:
    """Outcome fields may be dataclasses, tuples or lists: make them JSON-friendly."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
