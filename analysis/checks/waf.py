"""``waf``: attacks blocked per category, shoppers not blocked, rate rules vs a surge.

Evidence: the attack requests the load tagged (``Run.attacks``), the shoppers' samples
(a 403 is the WAF's: the storefront never answers 403), and the WAF log records
(``logs/sandbox/waf-log.jsonl`` on the sandbox: AWS's fields, one per blocked or counted
request) that name the rule. A record without the load's attack tag header is a shopper.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.checks import fields
from analysis.checks.context import Context
from analysis.checks.registry import CheckKind, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult

KEYS = {"min_block_rate", "categories", "max_false_block_rate", "rate_rules"}
TAG = "x-peakready-attack"
LOGS = ("logs/sandbox/waf-log.jsonl", "logs/waf-log.jsonl")


def validate(errors: list[str], where: str, value: Any) -> None:
    if not fields.mapping(errors, where, value):
        return
    fields.known(errors, where, value, KEYS)
    fields.number(errors, where, value, "min_block_rate", required=False, lo=0, hi=1)
    fields.number(errors, where, value, "max_false_block_rate", required=False, lo=0, hi=1)
    fields.boolean(errors, where, value, "rate_rules")
    cats = value.get("categories")
    if cats is not None:
        if not isinstance(cats, dict):
            errors.append(f"{where}.categories: must map a category to its min block rate")
        else:
            for key in cats:
                fields.number(errors, f"{where}.categories", cats, key, lo=0, hi=1)


def read_log(run_dir: Path) -> list[dict] | None:
    """WAF log records of the run, None when the run has no WAF log at all."""
    for rel in LOGS:
        path = Path(run_dir) / rel
        if path.is_file():
            out = []
            for line in path.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
            return out
    return None


def _tag(record: dict) -> str:
    for h in (record.get("httpRequest") or {}).get("headers") or []:
        if str(h.get("name", "")).lower() == TAG:
            return str(h.get("value"))
    return ""


def _rule(record: dict) -> str:
    for g in record.get("ruleGroupList") or []:
        if g.get("terminatingRule"):
            return f"{record['terminatingRuleId']}:{g['terminatingRule']['ruleId']}"
    return str(record.get("terminatingRuleId"))


def _in_window(ctx: Context, records: list[dict]) -> list[dict]:
    lo, hi = ctx.run.t0 - 1.0, ctx.run.t_end + 5.0
    return [r for r in records if lo <= r.get("timestamp", 0) / 1000.0 <= hi]


def _waf_seen(ctx: Context, log: list[dict] | None) -> bool:
    m = ctx.run.metrics
    return log is not None or bool(len(m) and (m["namespace"] == "AWS/WAFV2").any())


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    cfg = cfg if isinstance(cfg, dict) else {}
    log = read_log(ctx.run.run_dir)
    records = _in_window(ctx, log) if log is not None else []
    blocks = [r for r in records if r.get("action") == "BLOCK"]
    shopper_blocks = [r for r in blocks if not _tag(r)]
    out = _attacks(ctx, cfg, blocks, [r for r in records if r.get("action") != "BLOCK"])
    out += _false_blocks(ctx, cfg, log, shopper_blocks)
    if cfg.get("rate_rules", True):
        out.append(_rate_rules(ctx, log, shopper_blocks))
    return out


def _counted(record: dict) -> list[str]:
    """The Count-mode rules a request matched (a group in Count mode, a rule overridden to
    Count), as ``group:rule`` like the blocking rules."""
    out = [f"{g['ruleGroupId'].split('#')[-1]}:{m['ruleId']}"
           for g in record.get("ruleGroupList") or []
           for m in g.get("nonTerminatingMatchingRules") or []]
    return out + [str(m.get("ruleId")) for m in record.get("nonTerminatingMatchingRules") or []]


def _attacks(ctx: Context, cfg: dict, blocks: list[dict], passed: list[dict]
             ) -> list[CheckResult]:
    attacks = ctx.run.attacks
    if attacks is None or not len(attacks):
        return [CheckResult("waf attacks blocked", "waf", SKIPPED,
                            "no attack requests in the samples (the plan has no load.attacks)")]
    default = float(cfg.get("min_block_rate", 0.99))
    per_cat = cfg.get("categories") or {}
    out = []
    for cat, part in attacks.groupby(attacks["attack"].astype(str), observed=True):
        by_rule = Counter(_rule(r) for r in blocks if _tag(r) == cat)
        counted = Counter(c for r in passed if _tag(r) == cat for c in _counted(r))
        need = float(per_cat.get(cat, default))
        n = len(part)
        blocked = int((part["status"] == 403).sum())
        rate = blocked / n
        verdict = PASS if rate >= need else FAIL
        missed = part.loc[part["status"] != 403, "status"].value_counts().to_dict()
        out.append(CheckResult(
            f"waf blocks {cat}", "waf", verdict,
            f"{cat}: {blocked}/{n} attack requests blocked = {rate:.1%} "
            f"{'>=' if verdict == PASS else '<'} {need:.1%}"
            + ("" if verdict == PASS else f"; missed ones answered {missed}")
            + ("" if verdict == PASS or not counted else "; only counted by "
               + ", ".join(f"{k} ({v})" for k, v in counted.most_common(3))
               + " (Count mode)"),
            measured=rate, threshold=need, comparison=">=", unit="ratio",
            evidence={"category": cat, "requests": n, "blocked": blocked,
                      "missed_statuses": {str(k): int(v) for k, v in missed.items()},
                      "blocking_rules": dict(by_rule.most_common(8)),
                      "counted_by": dict(counted.most_common(8))}))
    return out


def _false_blocks(ctx: Context, cfg: dict, log: list[dict] | None,
                  shopper_blocks: list[dict]) -> list[CheckResult]:
    limit = float(cfg.get("max_false_block_rate", 0.01))
    # every shopper request, per endpoint, status and error
    shoppers = ctx.outcomes({"start_s": -math.inf, "end_s": math.inf})
    requests = int(shoppers["n"].sum())
    if not requests:
        return [CheckResult("waf false blocks", "waf", SKIPPED, "no shopper requests")]
    if not _waf_seen(ctx, log):
        return [CheckResult("waf false blocks", "waf", SKIPPED,
                            "no WAF log and no AWS/WAFV2 metrics: cannot tell a WAF block",
                            threshold=limit, unit="ratio")]
    blocks = shoppers.loc[shoppers["status"] == 403]
    blocked = int(blocks["n"].sum())
    rate = blocked / requests
    rules = Counter(_rule(r) for r in shopper_blocks)
    named = ", ".join(f"{k} ({v})" for k, v in rules.most_common(3)) or \
        ("no WAF log record names the rule" if blocked else "")
    verdict = PASS if rate <= limit else FAIL
    by_endpoint = {str(k): int(v) for k, v in blocks.groupby("endpoint")["n"].sum()
                   .sort_values(ascending=False, kind="stable").head(5).items()}
    return [CheckResult(
        "waf false blocks", "waf", verdict,
        f"{blocked}/{requests} shopper requests blocked = {rate:.2%} "
        f"{'<=' if verdict == PASS else '>'} {limit:.2%}" + (f"; by {named}" if blocked else ""),
        measured=rate, threshold=limit, unit="ratio",
        evidence={"requests": requests, "blocked": blocked, "rules": dict(rules),
                  "endpoints": by_endpoint})]


def _rate_rules(ctx: Context, log: list[dict] | None, shopper_blocks: list[dict]
                ) -> CheckResult:
    name = "waf rate rules vs shoppers"
    if log is None:
        return CheckResult(name, "waf", SKIPPED, "no WAF log records: cannot tell which rule "
                           "blocked which address")
    rated = [r for r in shopper_blocks if r.get("terminatingRuleType") == "RATE_BASED"]
    if not rated:
        return CheckResult(name, "waf", PASS, "no shopper request was blocked by a rate-based "
                           f"rule ({ctx.run.requests} shopper requests)",
                           evidence={"blocked": 0})
    rules = Counter(str(r.get("terminatingRuleId")) for r in rated)
    addrs = Counter((r.get("httpRequest") or {}).get("clientIp") for r in rated)
    cgnat = sorted(a for a in addrs if str(a).startswith("100.") and
                   64 <= int(str(a).split(".")[1]) <= 127)
    rule, hits = rules.most_common(1)[0]
    limits = {rr.get("rateBasedRuleName"): rr.get("maxRateAllowed")
              for r in rated for rr in r.get("rateBasedRuleList") or []}
    return CheckResult(
        name, "waf", FAIL,
        f"rate-based rule {rule} blocked {hits} shopper requests from {len(addrs)} address(es)"
        + (f", {len(cgnat)} of them CGNAT (shared by many shoppers)" if cgnat else "")
        + f"; its limit {limits.get(rule)} is below the campaign's legitimate rate",
        measured=len(rated), threshold=0, unit="requests",
        evidence={"rules": dict(rules), "addresses": dict(addrs.most_common(10)),
                  "cgnat_addresses": cgnat, "limits": limits})


KIND = register(CheckKind("waf", validate, evaluate, order=70))
