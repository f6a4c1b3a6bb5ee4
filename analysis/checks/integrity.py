"""``integrity``: every order the storefront confirmed is found afterwards through its API,
and sessions that existed before a cache failover survive it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis.checks import fields
from analysis.checks.context import Context, fault_window, win
from analysis.checks.registry import CheckKind, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult

SESSION_LOST = "session lost"
LOGIN = "POST /api/login"


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"orders", "sessions"})
        fields.boolean(errors, where, value, "orders")
        sessions = value.get("sessions")
        if sessions is not None and not isinstance(sessions, bool) and not (
                fields.is_number(sessions) and 0 <= sessions <= 1):
            errors.append(f"{where}.sessions: must be true, false or a surviving fraction 0..1")


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    out = []
    if cfg.get("orders"):
        out.append(orders_integrity(ctx))
    if cfg.get("sessions") not in (None, False):
        out += session_survival(ctx, cfg["sessions"])
    return out


def orders_integrity(ctx: Context) -> CheckResult:
    """Every order the storefront confirmed must be found afterwards through its API."""
    name = "data integrity: confirmed orders"
    confirmed = ctx.run.orders
    checked = ctx.run.integrity
    if checked is None:
        if confirmed.empty:
            return CheckResult(name, "integrity", SKIPPED, "no confirmed orders in this run",
                               figure=None)
        return CheckResult(name, "integrity", SKIPPED,
                           f"{len(confirmed)} confirmed orders but integrity/orders.parquet was "
                           "not written (the orders were not looked up after the load)",
                           figure=None)
    checked = checked.assign(order_id=lambda d: d["order_id"].astype(str))
    confirmed_ids = pd.Index(confirmed["order_id"]).unique()
    checked_ids = pd.Index(checked["order_id"]).unique()
    ids = confirmed_ids.union(checked_ids)
    if not len(ids):
        return CheckResult(name, "integrity", SKIPPED, "no confirmed orders in this run",
                           figure=None)
    not_found = checked.loc[~checked["found"].astype(bool)]
    gone = not_found["status"].astype(int).isin([404, 410])
    missing = not_found.loc[gone, "order_id"].tolist()
    unverified = not_found.loc[~gone, "order_id"].tolist()
    unchecked = sorted(confirmed_ids.difference(checked_ids))
    lost = len(missing) + len(unverified) + len(unchecked)
    evidence = {"confirmed": len(ids), "looked_up": len(checked), "missing": len(missing),
                "lookup_failed": len(unverified), "not_looked_up": len(unchecked),
                "missing_ids": missing[:20], "lookup_failed_ids": unverified[:20],
                "not_looked_up_ids": unchecked[:20],
                "lookup_status": checked["status"].astype(str).value_counts().to_dict()}
    if lost:
        why = []
        if missing:
            why.append(f"{len(missing)} of {len(checked)} confirmed orders not found "
                       f"(e.g. {', '.join(missing[:3])})")
        if unverified:
            why.append(f"{len(unverified)} lookups failed without an answer (HTTP status "
                       f"{', '.join(sorted(set(not_found.loc[~gone, 'status'].astype(str))))})")
        if unchecked:
            why.append(f"{len(unchecked)} confirmed orders never looked up")
        return CheckResult(name, "integrity", FAIL, "; ".join(why), measured=lost, threshold=0,
                           unit="orders lost", evidence=evidence, figure=None)
    return CheckResult(name, "integrity", PASS, f"all {len(checked)} confirmed orders found",
                       measured=0, threshold=0, unit="orders lost", evidence=evidence,
                       figure=None)


def _logged_in(samples: pd.DataFrame, before_ts: float) -> set[str]:
    """Users with a successful login before ``before_ts``: only they had a session to lose."""
    login = samples.loc[(samples["endpoint"] == LOGIN) & samples["ok"]
                        & (samples["ts"] < before_ts), "user"]
    return set(login.astype(str))


def session_survival(ctx: Context, required: bool | float) -> list[CheckResult]:
    """Users with a session (logged in before a cache failover and active in the 30 s before
    it) whose session was lost during it; users who never logged in had nothing to lose."""
    need = 1.0 if required is True else float(required)
    cache = ctx.faults.loc[ctx.faults["kind"] == "cache"]
    if cache.empty:
        return [CheckResult("session survival", "integrity", SKIPPED,
                            "no cache failover in this run: session survival not exercised",
                            threshold=need, comparison=">=", unit="ratio")]
    out = []
    for fault in cache.itertuples():
        before = ctx.samples({"start_s": max(0.0, fault.start_s - 30.0),
                              "end_s": fault.start_s}, "*")
        during = ctx.samples({"start_s": fault.start_s, "end_s": fault.end_s + 30.0}, "*")
        active = set(before["user"].astype(str)) & _logged_in(ctx.run.samples,
                                                              ctx.run.t0 + fault.start_s)
        lost_mask = during["error"].astype(str).str.startswith(SESSION_LOST)
        lost_active = set(during.loc[lost_mask, "user"].astype(str)) & active
        name = f"session survival {fault.name}"
        window = win(fault_window(fault))
        if not active:
            out.append(CheckResult(name, "integrity", SKIPPED, "no logged-in user was active "
                                   "in the 30 s before the cache failover", threshold=need,
                                   comparison=">=", unit="ratio", window=window))
            continue
        survival = 1.0 - len(lost_active) / len(active)
        verdict = PASS if survival >= need else FAIL
        out.append(CheckResult(name, "integrity", verdict,
                               f"{len(active) - len(lost_active)} of {len(active)} active "
                               f"sessions survived ({survival:.1%} "
                               f"{'>=' if verdict == PASS else '<'} {need:.1%})",
                               measured=survival, threshold=need, comparison=">=",
                               unit="ratio", window=window,
                               evidence={"active_users": len(active), "lost": len(lost_active),
                                         "lost_requests": int(lost_mask.sum()),
                                         "lost_users": sorted(lost_active)[:20],
                                         "window_source": fault.source}))
    return out


KIND = register(CheckKind("integrity", validate, evaluate, order=90))
