"""``integrity``: every order the storefront confirmed is found afterwards through its API,
and sessions that existed before a cache failover survive it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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
    evidence = order_lookups(confirmed, checked)
    if not evidence["confirmed"]:
        return CheckResult(name, "integrity", SKIPPED, "no confirmed orders in this run",
                           figure=None)
    failed_statuses = evidence.pop("lookup_failed_statuses")
    missing, unverified, unchecked = (evidence[k] for k in ("missing", "lookup_failed",
                                                            "not_looked_up"))
    lost = missing + unverified + unchecked
    if lost:
        why = []
        if missing:
            why.append(f"{missing} of {len(checked)} confirmed orders not found "
                       f"(e.g. {', '.join(evidence['missing_ids'][:3])})")
        if unverified:
            why.append(f"{unverified} lookups failed without an answer (HTTP status "
                       f"{', '.join(failed_statuses)})")
        if unchecked:
            why.append(f"{unchecked} confirmed orders never looked up")
        return CheckResult(name, "integrity", FAIL, "; ".join(why), measured=lost, threshold=0,
                           unit="orders lost", evidence=evidence, figure=None)
    return CheckResult(name, "integrity", PASS, f"all {len(checked)} confirmed orders found",
                       measured=0, threshold=0, unit="orders lost", evidence=evidence,
                       figure=None)


def order_lookups(confirmed: pd.DataFrame, checked: pd.DataFrame) -> dict[str, Any]:
    """Confirmed orders joined with their lookups in DuckDB (millions of ids: no Python
    loop, no Python string per id). ``missing`` (404/410), ``lookup_failed`` (another
    status) and ``not_looked_up`` (confirmed, never looked up) are counts; the ``*_ids`` lists show the
    first 20 (lookups in file order, never-looked-up ones sorted)."""
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    con.register("c", pa.table({"order_id": pa.array(confirmed["order_id"], pa.string())}))
    con.register("k", pa.table({
        "order_id": pa.array(checked["order_id"].astype(str), pa.string()),
        "found": pa.array(checked["found"].astype(bool)),
        "status": pa.array(checked["status"].astype("int64")),
        "row": pa.array(np.arange(len(checked)))}))

    def scalar(sql: str) -> int:
        return int(con.execute(sql).fetchone()[0])

    def ids(sql: str) -> list[str]:
        return [r[0] for r in con.execute(sql + " LIMIT 20").fetchall()]

    gone = "NOT found AND status IN (404, 410)"
    failed = "NOT found AND status NOT IN (404, 410)"
    unchecked = "SELECT DISTINCT order_id FROM c ANTI JOIN k USING (order_id)"
    statuses = con.execute("SELECT status::VARCHAR, count(*) AS n FROM k GROUP BY status "
                           "ORDER BY n DESC, status").fetchall()
    return {
        "confirmed": scalar("SELECT count(*) FROM (SELECT order_id FROM c UNION "
                            "SELECT order_id FROM k)"),
        "looked_up": len(checked), "missing": scalar(f"SELECT count(*) FROM k WHERE {gone}"),
        "lookup_failed": scalar(f"SELECT count(*) FROM k WHERE {failed}"),
        "not_looked_up": scalar(f"SELECT count(*) FROM ({unchecked})"),
        "missing_ids": ids(f"SELECT order_id FROM k WHERE {gone} ORDER BY row"),
        "lookup_failed_ids": ids(f"SELECT order_id FROM k WHERE {failed} ORDER BY row"),
        "not_looked_up_ids": ids(f"{unchecked} ORDER BY order_id"),
        "lookup_failed_statuses": [r[0] for r in con.execute(
            f"SELECT DISTINCT status::VARCHAR AS s FROM k WHERE {failed} ORDER BY s").fetchall()],
        "lookup_status": {s: int(n) for s, n in statuses}}


def _logged_in(ctx: Context, before_s: float) -> set[str]:
    """Users with a successful login before ``before_s``: only they had a session to lose."""
    return set(ctx.users({"start_s": -math.inf, "end_s": before_s}, LOGIN, ok=True).index)


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
        before = ctx.users({"start_s": max(0.0, fault.start_s - 30.0),
                            "end_s": fault.start_s})
        lost = ctx.users({"start_s": fault.start_s, "end_s": fault.end_s + 30.0},
                         error_prefix=SESSION_LOST)
        active = set(before.index) & _logged_in(ctx, fault.start_s)
        lost_active = set(lost.index) & active
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
                                         "lost_requests": int(lost.sum()),
                                         "lost_users": sorted(lost_active)[:20],
                                         "window_source": fault.source}))
    return out


KIND = register(CheckKind("integrity", validate, evaluate, order=90))
