"""``fault`` results, always evaluated: a planned fault whose method never ran or failed
tested nothing, and one whose rollbacks failed or never ran may have left the system
broken; each is a failed result so a gate never passes them. Nothing to configure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.checks.context import Context
from analysis.checks.registry import CheckKind, register
from analysis.checks.result import FAIL, CheckResult


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    from peakready.chaos.journal import outcome_from_journal

    planned = [f.get("name") for f in ctx.run.plan.get("faults") or [] if isinstance(f, dict)]
    out = []
    for name in dict.fromkeys([n for n in planned if n] + list(ctx.run.journals)):
        journal = ctx.run.journals.get(name)
        why, undone = None, None
        if journal is None:
            if ctx.run.status != "completed":
                continue  # an aborted or interrupted run may end before a fault's offset
            why = f"no journal chaos/{name}.journal.json: the fault never ran"
        else:
            outcome = outcome_from_journal(journal)
            if outcome.failed_activities:
                why = ("method activity failed (" + ", ".join(outcome.failed_activities)
                       + "): the fault may never have been injected")
            elif outcome.fault_start is None:
                why = f"experiment {outcome.status} before its method ran: nothing was injected"
            if outcome.rollbacks_failed:
                undone = "rollback failed: " + ", ".join(outcome.rollbacks_failed)
            elif (journal.get("experiment") or {}).get("rollbacks") and not outcome.rollbacks_ran:
                undone = "the experiment's rollbacks did not run"
        if why:
            out.append(CheckResult(f"fault {name} injected", "fault", FAIL, why,
                                   evidence={"fault": name}, figure=None))
        if undone:
            out.append(CheckResult(f"fault {name} rolled back", "fault", FAIL, undone,
                                   evidence={"fault": name}, figure=None))
    return out


KIND = register(CheckKind("faults", None, evaluate, implicit=True, order=80))
