"""``latency``: a percentile of successful requests' response time per endpoint and window,
optionally corrected for coordinated omission (schedule lag added)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.checks import fields
from analysis.checks.context import Context, no_window, win
from analysis.checks.registry import Asks, CheckKind, SloLine, phase_refs, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult


def validate(errors: list[str], where: str, value: Any) -> None:
    for w, item in fields.items(errors, where, value, "{endpoint, phase, percentile, max_ms}"):
        fields.known(errors, w, item, {"endpoint", "phase", "percentile", "max_ms",
                                       "corrected", "min_requests"})
        fields.selector(errors, w, item, "endpoint")
        fields.selector(errors, w, item, "phase")
        fields.number(errors, w, item, "percentile", lo=0, hi=100, lo_open=True)
        fields.number(errors, w, item, "max_ms", lo=0, lo_open=True)
        fields.number(errors, w, item, "min_requests", required=False, lo=1, integer=True)
        fields.boolean(errors, w, item, "corrected")


def slo_lines(cfg: Any) -> list[SloLine]:
    return [SloLine("latency_ms", f"p{float(c['percentile']):g}", float(c["max_ms"]))
            for c in cfg or [] if c.get("endpoint", "*") == "*"]


def asks(ctx: Context, cfg: Any) -> Asks:
    return Asks([(w["start_s"], w["end_s"], (float(item["percentile"]) / 100.0,))
                 for item in cfg for w in ctx.window(item.get("phase", "*"))])


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    out: list[CheckResult] = []
    for item in cfg:
        out += _one(ctx, item)
    return out


def _one(ctx: Context, item: dict[str, Any]) -> list[CheckResult]:
    pct, limit = float(item["percentile"]), float(item["max_ms"])
    corrected = bool(item.get("corrected", False))
    min_requests = int(item.get("min_requests", 1))
    label = f"p{pct:g}" + (" corrected" if corrected else "")
    windows = ctx.window(item.get("phase", "*"))
    if not windows:
        return [no_window("latency", item.get("phase", "*"), ctx)]
    out = []
    for window in windows:
        for endpoint in ctx.endpoints(item.get("endpoint", "*")):
            name = f"latency {label} {endpoint} in {window['name']}"
            st = ctx.stats(window, endpoint, (pct / 100.0,))
            if st.ok < min_requests:
                out.append(CheckResult(name, "latency", SKIPPED,
                                       f"{st.ok} successful requests in the window "
                                       f"(fewer than {min_requests}): no latency evidence",
                                       threshold=limit, unit="ms", window=win(window)))
                continue
            values = st.corrected if corrected else st.quantiles
            measured = values[pct / 100.0]
            verdict = PASS if measured <= limit else FAIL
            out.append(CheckResult(
                name, "latency", verdict,
                f"{label} {measured:.1f} ms {'<=' if verdict == PASS else '>'} {limit:g} ms "
                f"over {st.ok} successful requests",
                measured=measured, threshold=limit, unit="ms", window=win(window),
                evidence={"requests": st.requests, "successful": st.ok,
                          "p50_ms": values[0.5],
                          "max_ms": st.max_corrected_ms if corrected else st.max_ms,
                          "max_schedule_lag_ms": st.max_lag_ok_ms}))
    return out


KIND = register(CheckKind("latency", validate, evaluate, order=10, refs=phase_refs("latency"),
                          slo_lines=slo_lines, asks=asks))
