"""``time_to_detect``: fault start -> the first alarm that went to ALARM (the alarm-state
view; whether the notification reached anyone is the ``paging`` kind's question)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.checks import fields
from analysis.checks.context import Context, alarm_events, fault_window, win
from analysis.checks.registry import CheckKind, Ref, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"max_s", "alarms", "faults"})
        fields.number(errors, where, value, "max_s", lo=0, lo_open=True)
        fields.names(errors, where, value, "alarms", "alarm")
        fields.names(errors, where, value, "faults", "fault")


def refs(cfg: Any) -> list[Ref]:
    names = (cfg or {}).get("faults") or []
    return [Ref(f"checks.time_to_detect.faults[{i}]", "fault", name)
            for i, name in enumerate(names)]


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    max_s = float(cfg["max_s"])
    names = cfg.get("alarms")
    judged = ctx.faults
    if cfg.get("faults"):
        # only faults that should page are judged: an instance loss the ASG absorbs
        # without user impact is not expected to raise an alarm
        judged = judged.loc[judged["name"].isin(cfg["faults"])]
    if judged.empty:
        reason = ("none of the faults named in time_to_detect.faults ran"
                  if cfg.get("faults") else "no fault in this run")
        return [CheckResult("time to detect", "time_to_detect", SKIPPED, reason,
                            threshold=max_s, unit="s")]
    planned = (ctx.run.plan.get("target") or {}).get("alarms")
    if alarm_events(ctx, None).empty and not planned and not names:
        return [CheckResult("time to detect", "time_to_detect", SKIPPED,
                            "no alarm history was collected (no alarm_state events, no alarms "
                            "in the plan)", threshold=max_s, unit="s")]
    alarms = alarm_events(ctx, names)
    to_alarm = alarms.loc[alarms["to"] == "ALARM"]
    out = []
    for fault in judged.itertuples():
        start = ctx.run.t0 + fault.start_s
        window = win(fault_window(fault))
        after = to_alarm.loc[to_alarm["ts"] >= start]
        name = f"time to detect {fault.name}"
        if after.empty:
            out.append(CheckResult(name, "time_to_detect", FAIL,
                                   "no alarm went to ALARM after the fault started",
                                   threshold=max_s, unit="s", window=window,
                                   evidence={"fault": fault.name,
                                             "alarms_watched": names or planned or "all"}))
            continue
        first = after.iloc[0]
        ttd = float(first["ts"] - start)
        verdict = PASS if ttd <= max_s else FAIL
        out.append(CheckResult(name, "time_to_detect", verdict,
                               f"{first['resource']} went to ALARM {ttd:.1f} s after the fault "
                               f"started ({'<=' if verdict == PASS else '>'} {max_s:g} s)",
                               measured=ttd, threshold=max_s, unit="s", window=window,
                               evidence={"fault": fault.name, "alarm": first["resource"],
                                         "alarm_s": float(first["ts"] - ctx.run.t0),
                                         "fault_start_s": fault.start_s,
                                         "window_source": fault.source}))
    return out


KIND = register(CheckKind("time_to_detect", validate, evaluate, order=50, refs=refs,
                          fault_column=("time_to_detect", "{:.1f} s")))
