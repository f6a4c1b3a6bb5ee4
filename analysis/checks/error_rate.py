"""``error_rate``: failed requests over all requests per endpoint and window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.checks import fields
from analysis.checks.context import Context, no_window, win
from analysis.checks.registry import Asks, CheckKind, SloLine, phase_refs, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult


def validate(errors: list[str], where: str, value: Any) -> None:
    for w, item in fields.items(errors, where, value, "{endpoint, phase, max}"):
        fields.known(errors, w, item, {"endpoint", "phase", "max", "min_requests"})
        fields.selector(errors, w, item, "endpoint")
        fields.selector(errors, w, item, "phase")
        fields.number(errors, w, item, "max", lo=0, hi=1)
        fields.number(errors, w, item, "min_requests", required=False, lo=1, integer=True)


def slo_lines(cfg: Any) -> list[SloLine]:
    """The tightest whole-shop limit (one line on the error-rate axis)."""
    limits = [float(c["max"]) for c in cfg or [] if c.get("endpoint", "*") == "*"]
    return [SloLine("error_rate", "max error rate", min(limits))] if limits else []


def asks(ctx: Context, cfg: Any) -> Asks:
    return Asks([(w["start_s"], w["end_s"], ()) for item in cfg
                 for w in ctx.window(item.get("phase", "*"))])


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    out: list[CheckResult] = []
    for item in cfg:
        out += _one(ctx, item)
    return out


def _one(ctx: Context, item: dict[str, Any]) -> list[CheckResult]:
    limit = float(item["max"])
    min_requests = int(item.get("min_requests", 1))
    windows = ctx.window(item.get("phase", "*"))
    if not windows:
        return [no_window("error_rate", item.get("phase", "*"), ctx)]
    out = []
    for window in windows:
        for endpoint in ctx.endpoints(item.get("endpoint", "*")):
            name = f"error rate {endpoint} in {window['name']}"
            st = ctx.stats(window, endpoint)
            if st.requests < min_requests:
                out.append(CheckResult(name, "error_rate", SKIPPED,
                                       f"{st.requests} requests in the window: no evidence",
                                       threshold=limit, unit="ratio", window=win(window)))
                continue
            errors, rate = st.errors, st.error_rate
            top = ctx.top_errors(window, endpoint, 3) if errors else {}
            verdict = PASS if rate <= limit else FAIL
            out.append(CheckResult(
                name, "error_rate", verdict,
                f"{errors}/{st.requests} failed = {rate:.2%} "
                f"{'<=' if verdict == PASS else '>'} {limit:.2%}",
                measured=rate, threshold=limit, unit="ratio", window=win(window),
                evidence={"requests": st.requests, "errors": errors, "top_errors": top}))
    return out


KIND = register(CheckKind("error_rate", validate, evaluate, order=20,
                          refs=phase_refs("error_rate"), slo_lines=slo_lines,
                          asks=asks))
