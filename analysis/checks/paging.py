"""``paging``: did the right alarms reach someone, in time, and the wrong ones stay quiet?

Evidence (docs/run-folder.md, "Paging"): ``page`` events (a notification that reached the
sandbox's pager or the run's temporary SQS queue, at its arrival time), ``alarm_state``
transitions, and the alarm history's ``alarm_action`` / ``page_failed`` items. Results:

- per fault that must page: fault start -> alarm ALARM -> notification delivered
  (-> incident opened), against ``max_time_to_page_s``;
- per ``quiet`` fault: no page from its start to ``max_time_to_page_s`` after its end
  (cut at the next fault's start): a page there is noise and fails;
- ``alarm notifications delivered``: every alarm that went to ALARM in the run paged (an
  ``undelivered`` alarm fails, named with the alarm history's reason);
- ``pages resolved``: every alarm that paged ALARM paged OK again before the run's end.

``time_to_detect`` stays the alarm-state view; the fault table shows both side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis.checks import fields
from analysis.checks.context import Context, alarm_events, fault_window, win
from analysis.checks.registry import CheckKind, Ref, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult
from analysis.load import parse_detail

KEYS = {"max_time_to_page_s", "faults", "quiet", "alarms", "resolve"}
SCALING_ALARMS = "TargetTracking-"  # AWS's own alarms drive a policy and page nobody
OBSERVER_DIR = "paging"


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, KEYS)
        fields.number(errors, where, value, "max_time_to_page_s", lo=0, lo_open=True)
        fields.names(errors, where, value, "faults", "fault")
        fields.names(errors, where, value, "quiet", "fault")
        fields.names(errors, where, value, "alarms", "alarm")
        fields.boolean(errors, where, value, "resolve")
        both = set(value.get("faults") or []) & set(value.get("quiet") or [])
        if both:
            errors.append(f"{where}.quiet: {sorted(both)[0]} is also in {where}.faults "
                          "(a fault either must page or must stay quiet)")


def refs(cfg: Any) -> list[Ref]:
    return [Ref(f"checks.paging.{key}[{i}]", "fault", name)
            for key in ("faults", "quiet") for i, name in enumerate((cfg or {}).get(key) or [])]


def _rows(ctx: Context, kind: str, names: list[str] | None) -> pd.DataFrame:
    ev = ctx.run.events.loc[ctx.run.events["kind"] == kind].copy()
    if names:
        ev = ev.loc[ev["resource"].isin(names)]
    ev["d"] = [parse_detail(d) for d in ev["detail"]]
    ev["state"] = [d.get("state") for d in ev["d"]]
    return ev.sort_values("ts", kind="stable")


def _observed(ctx: Context) -> bool:
    """A page observer ran (sandbox pager or temporary queue): its folder exists, or it
    recorded pages; an observer that saw nothing is evidence too (nothing paged)."""
    return (ctx.run.run_dir / OBSERVER_DIR).is_dir() or \
        bool((ctx.run.events["kind"] == "page").any())


def _paging_alarm(name: str, names: list[str] | None) -> bool:
    return name in names if names else not name.startswith(SCALING_ALARMS)


def _why_undelivered(actions: pd.DataFrame, failed: pd.DataFrame, alarm: str, at: float,
                     until: float) -> str:
    """The alarm history's word on a notification that never arrived."""
    near = failed.loc[(failed["resource"] == alarm) & (failed["ts"] >= at - 1)
                      & (failed["ts"] <= until)]
    if len(near):
        return str(near.iloc[0]["d"].get("summary") or "the alarm action failed")
    done = actions.loc[(actions["resource"] == alarm) & (actions["ts"] >= at - 1)
                       & (actions["ts"] <= until)]
    if len(done):
        topic = done.iloc[0]["d"].get("topic") or "its topic"
        return (f"the alarm history says the action to {topic} succeeded, but no "
                "notification reached the observer (no reachable subscriber, a KMS key "
                "CloudWatch may not use, or a subscription filter)")
    return "no Action in the alarm history: the alarm has no SNS action for ALARM, or its " \
           "actions are disabled"


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    max_s = float(cfg["max_time_to_page_s"])
    names = cfg.get("alarms")
    quiet = list(cfg.get("quiet") or [])
    if not _observed(ctx):
        return [CheckResult("paging", "paging", SKIPPED,
                            "no page observer in this run (the sandbox's pager, or "
                            "target.paging.topics on AWS): whether alarms reach anyone is "
                            "unknown", threshold=max_s, unit="s")]
    end = float(ctx.run.events["ts"].max()) if len(ctx.run.events) else 0.0
    pages = _rows(ctx, "page", names)
    alarm_pages = pages.loc[pages["state"] == "ALARM"]
    transitions = alarm_events(ctx, names)
    to_alarm = transitions.loc[transitions["to"] == "ALARM"]
    actions, failed = _rows(ctx, "alarm_action", names), _rows(ctx, "page_failed", names)
    must = [n for n in (cfg.get("faults") or ctx.faults["name"].tolist()) if n not in quiet]
    faults = ctx.faults.sort_values("start_s")
    out: list[CheckResult] = []
    for i, fault in enumerate(faults.itertuples()):
        if fault.name in quiet:
            nxt = faults.iloc[i + 1]["start_s"] if i + 1 < len(faults) else None
            out.append(_quiet(ctx, fault, alarm_pages, max_s, nxt))
        elif fault.name in must:
            out.append(_must_page(ctx, fault, alarm_pages, to_alarm, actions, failed, max_s))
    out.append(_delivered(ctx, to_alarm, transitions, alarm_pages, actions, failed, names,
                          end))
    if cfg.get("resolve", True):
        out.append(_resolved(ctx, pages, names))
    return out


def _must_page(ctx: Context, fault: Any, alarm_pages: pd.DataFrame, to_alarm: pd.DataFrame,
               actions: pd.DataFrame, failed: pd.DataFrame, max_s: float) -> CheckResult:
    start = ctx.run.t0 + fault.start_s
    name, window = f"time to page {fault.name}", win(fault_window(fault))
    detected = to_alarm.loc[to_alarm["ts"] >= start]
    paged = alarm_pages.loc[alarm_pages["ts"] >= start]
    evidence: dict[str, Any] = {"fault": fault.name, "fault_start_s": fault.start_s,
                                "window_source": fault.source}
    if len(detected):
        evidence.update(alarm=detected.iloc[0]["resource"],
                        detect_s=float(detected.iloc[0]["ts"] - start))
    if paged.empty:
        if detected.empty:
            reason = "no alarm went to ALARM after the fault started, so nobody was paged"
        else:
            first = detected.iloc[0]
            reason = (f"{first['resource']} went to ALARM {first['ts'] - start:.1f} s after "
                      f"the fault started, but no page arrived: "
                      + _why_undelivered(actions, failed, first["resource"], first["ts"],
                                         first["ts"] + max_s))
        return CheckResult(name, "paging", FAIL, reason, threshold=max_s, unit="s",
                           window=window, evidence=evidence)
    page = paged.iloc[0]
    ttp = float(page["ts"] - start)
    verdict = PASS if ttp <= max_s else FAIL
    incident = page["d"].get("incident_action")
    evidence.update(paged_by=page["resource"], page_s=float(page["ts"] - ctx.run.t0),
                    observer=page["source"], incident=page["d"].get("incident_id"),
                    incident_action=incident)
    opened = f", incident {page['d'].get('incident_id')} {incident}" if incident else ""
    return CheckResult(name, "paging", verdict,
                       f"{page['resource']} paged {ttp:.1f} s after the fault started"
                       f"{opened} ({'<=' if verdict == PASS else '>'} {max_s:g} s)",
                       measured=ttp, threshold=max_s, unit="s", window=window,
                       evidence=evidence)


def _quiet(ctx: Context, fault: Any, alarm_pages: pd.DataFrame, max_s: float,
           next_start_s: float | None) -> CheckResult:
    lo = fault.start_s
    hi = fault.end_s + max_s if next_start_s is None else min(fault.end_s + max_s, next_start_s)
    window = {"name": f"fault:{fault.name}", "start_s": lo, "end_s": hi}
    noise = alarm_pages.loc[(alarm_pages["ts"] >= ctx.run.t0 + lo)
                            & (alarm_pages["ts"] < ctx.run.t0 + hi)]
    name = f"quiet during {fault.name}"
    if len(noise):
        first = noise.iloc[0]
        return CheckResult(name, "paging", FAIL,
                           f"noise: {first['resource']} paged "
                           f"{first['ts'] - ctx.run.t0 - lo:.1f} s after {fault.name} started, "
                           "a fault listed as quiet (the platform should absorb it)",
                           threshold=0, unit="pages", window=win(window),
                           evidence={"fault": fault.name, "count": len(noise),
                                     "pages": sorted(set(noise["resource"])),
                                     "first_page_s": float(first["ts"] - ctx.run.t0)})
    return CheckResult(name, "paging", PASS,
                       f"no page from {lo:.0f} s to {hi:.0f} s ({fault.name} and "
                       f"{hi - fault.end_s:.0f} s after it)", threshold=0, unit="pages",
                       window=win(window), evidence={"fault": fault.name, "count": 0})


def _delivered(ctx: Context, to_alarm: pd.DataFrame, transitions: pd.DataFrame,
               alarm_pages: pd.DataFrame, actions: pd.DataFrame, failed: pd.DataFrame,
               names: list[str] | None, end: float) -> CheckResult:
    """Every transition to ALARM of a paging alarm has an ALARM page of that alarm before
    the alarm's next transition."""
    lo, hi = ctx.run.t0, ctx.run.t0 + ctx.run.duration_s
    paging = to_alarm["resource"].map(lambda n: _paging_alarm(n, names)).astype(bool)
    judged = to_alarm.loc[(to_alarm["ts"] >= lo) & (to_alarm["ts"] <= hi) & paging]
    name = "alarm notifications delivered"
    if judged.empty:
        return CheckResult(name, "paging", SKIPPED, "no paging alarm went to ALARM during "
                           "the run: no notification to check", threshold=0, unit="alarms")
    undelivered = []
    for row in judged.itertuples():
        later = transitions.loc[(transitions["resource"] == row.resource)
                                & (transitions["ts"] > row.ts)]
        until = float(later["ts"].iloc[0]) if len(later) else end
        got = alarm_pages.loc[(alarm_pages["resource"] == row.resource)
                              & (alarm_pages["ts"] >= row.ts - 1) & (alarm_pages["ts"] <= until + 1)]
        if got.empty:
            undelivered.append({"alarm": row.resource, "alarm_s": float(row.ts - lo),
                                "reason": _why_undelivered(actions, failed, row.resource,
                                                           row.ts, until)})
    if undelivered:
        first = undelivered[0]
        return CheckResult(name, "paging", FAIL,
                           f"undelivered: {first['alarm']} went to ALARM at "
                           f"{first['alarm_s']:.0f} s and never paged: {first['reason']}"
                           + (f" (and {len(undelivered) - 1} more)" if len(undelivered) > 1
                              else ""),
                           measured=len(undelivered), threshold=0, unit="alarms",
                           evidence={"undelivered": undelivered,
                                     "alarms_in_alarm": len(judged)})
    return CheckResult(name, "paging", PASS,
                       f"all {len(judged)} transitions to ALARM paged "
                       f"({', '.join(sorted(set(judged['resource'])))})",
                       measured=0, threshold=0, unit="alarms",
                       evidence={"alarms_in_alarm": len(judged)})


def _resolved(ctx: Context, pages: pd.DataFrame, names: list[str] | None) -> CheckResult:
    """Every alarm that paged ALARM in the run paged OK afterwards (PagerDuty resolves the
    incident only on OK, and only when OKActions point at the topic)."""
    lo = ctx.run.t0
    in_run = pages.loc[pages["ts"] >= lo]
    name = "pages resolved"
    opened = in_run.loc[in_run["state"] == "ALARM"]
    if opened.empty:
        return CheckResult(name, "paging", SKIPPED, "no page was opened during the run",
                           threshold=0, unit="pages")
    still_open = []
    for alarm, rows in in_run.groupby("resource"):
        last = rows.iloc[-1]
        if (rows["state"] == "ALARM").any() and last["state"] != "OK":
            still_open.append({"alarm": alarm, "paged_s": float(
                rows.loc[rows["state"] == "ALARM", "ts"].iloc[-1] - lo)})
    if still_open:
        first = still_open[0]
        return CheckResult(name, "paging", FAIL,
                           f"{first['alarm']} paged at {first['paged_s']:.0f} s and no OK "
                           "followed before the run ended: the incident stays open (no "
                           "recovery, or no OKActions on the topic)",
                           measured=len(still_open), threshold=0, unit="pages",
                           evidence={"open": still_open})
    resolved = in_run.loc[in_run["state"] == "OK"]
    return CheckResult(name, "paging", PASS,
                       f"every page resolved: {len(opened)} opened, all followed by OK",
                       measured=0, threshold=0, unit="pages",
                       evidence={"opened": len(opened), "ok_pages": len(resolved)})


KIND = register(CheckKind("paging", validate, evaluate, order=55, refs=refs,
                          fault_column=("time_to_page", "{:.1f} s")))
