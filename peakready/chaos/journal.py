"""Read a Chaos Toolkit journal into the outcome a gate needs.

``chaos run`` exits 0 in cases a readiness gate must call failures (see
research/chaos-pitfalls.md): the steady state already failing before the method (status
``completed``, ``deviated: false``), deviations recorded only in
``steady_states.during`` when the system recovered before the final check, and a method
action that failed (the fault was probably never injected). ``read_outcome`` names each.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["Outcome", "outcome_from_journal", "read_outcome"]


@dataclass(frozen=True)
class Outcome:
    """What one experiment did. Times are UTC epoch seconds (None when unknown)."""

    status: str  # completed | failed | aborted | interrupted | missing
    deviated: bool
    steady_state_before_met: bool | None  # None: no hypothesis ran before the method
    deviations_during: int
    deviation_times: list[float] = field(default_factory=list)
    steady_state_after_met: bool | None = None
    fault_start: float | None = None  # first method activity started
    fault_end: float | None = None  # last method activity ended
    rollbacks_ran: bool = False
    rollbacks_failed: list[str] = field(default_factory=list)
    failed_activities: list[str] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    ok: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).timestamp()


def _failed_probe(state: dict[str, Any]) -> dict[str, Any] | None:
    """The first probe run of a hypothesis check that failed or missed its tolerance."""
    for run in state.get("probes") or []:
        if run.get("status") == "failed" or run.get("tolerance_met") is False:
            return run
    return None


def _first_failed_probe(state: dict[str, Any]) -> str:
    run = _failed_probe(state)
    if run is None:
        return "?"
    output = run.get("output")
    why = output.get("reason") if isinstance(output, dict) else None
    why = why or (run.get("exception") or [""])[-1].strip() or f"output {output!r}"
    return f"{(run.get('activity') or {}).get('name', '?')} ({why})"


def _state_time(state: dict[str, Any]) -> float | None:
    """When the deviation was observed: the end of the first probe that failed."""
    run = _failed_probe(state)
    return None if run is None else _ts(run.get("end")) or _ts(run.get("start"))


def outcome_from_journal(journal: dict[str, Any]) -> Outcome:
    """Pure: the outcome of a parsed journal."""
    status = journal.get("status") or "missing"
    deviated = bool(journal.get("deviated"))
    states = journal.get("steady_states") or {}
    before, after = states.get("before"), states.get("after")
    during = [s for s in states.get("during") or [] if s]
    bad_during = [s for s in during if s.get("steady_state_met") is False]
    before_met = before.get("steady_state_met") if before else None
    after_met = after.get("steady_state_met") if after else None

    runs = journal.get("run") or []
    starts = [t for t in (_ts(r.get("start")) for r in runs) if t is not None]
    ends = [t for t in (_ts(r.get("end")) for r in runs) if t is not None]
    failed = [(r.get("activity") or {}).get("name", "?") for r in runs
              if r.get("status") == "failed"]
    rollbacks = journal.get("rollbacks") or []
    rollbacks_failed = [(r.get("activity") or {}).get("name", "?") for r in rollbacks
                        if r.get("status") == "failed"]
    declared_rollbacks = bool((journal.get("experiment") or {}).get("rollbacks"))

    problems = []
    if status != "completed":
        problems.append(f"experiment {status}")
    if before_met is False:
        problems.append("steady state failed before the method: "
                        + _first_failed_probe(before) + "; the fault's effect cannot be judged")
    if deviated and after_met is False:
        problems.append("steady state not met after the method: " + _first_failed_probe(after))
    elif after_met is False:
        problems.append("steady state not met after the method")
    if bad_during:
        problems.append(f"steady state deviated {len(bad_during)}x during the method, first: "
                        + _first_failed_probe(bad_during[0]))
    if failed:
        problems.append("method activity failed (fault may not have been injected): "
                        + ", ".join(failed))
    if declared_rollbacks and not rollbacks and status != "missing":
        problems.append("rollbacks did not run")
    if rollbacks_failed:
        problems.append("rollback failed: " + ", ".join(rollbacks_failed))

    return Outcome(
        status=status,
        deviated=deviated,
        steady_state_before_met=before_met,
        deviations_during=len(bad_during),
        deviation_times=[t for t in map(_state_time, bad_during) if t is not None],
        steady_state_after_met=after_met,
        fault_start=min(starts) if starts else None,
        fault_end=max(ends) if ends else None,
        rollbacks_ran=bool(rollbacks),
        rollbacks_failed=rollbacks_failed,
        failed_activities=failed,
        start=_ts(journal.get("start")),
        end=_ts(journal.get("end")),
        ok=not problems,
        reason="; ".join(problems) if problems else "steady state held before, during and after",
    )


def read_outcome(journal_path: str | Path) -> Outcome:
    """The outcome of the journal at ``journal_path``; a missing or unreadable journal
    (the process was killed before writing it) is a failed outcome, never a pass."""
    path = Path(journal_path)
    try:
        journal = json.loads(path.read_text())
    except FileNotFoundError:
        return Outcome(status="missing", deviated=False, steady_state_before_met=None,
                       deviations_during=0, reason=f"no journal at {path}")
    except (OSError, ValueError) as exc:
        return Outcome(status="missing", deviated=False, steady_state_before_met=None,
                       deviations_during=0, reason=f"unreadable journal {path}: {exc}")
    return outcome_from_journal(journal)
