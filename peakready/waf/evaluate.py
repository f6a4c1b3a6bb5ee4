"""Evaluate a WAFv2 Web ACL on one request, as AWS documents it.

Rules run by ascending Priority. Allow and Block terminate (also from inside a managed
rule group); Count records the match and goes on; Captcha/Challenge terminate as a block
here (the load carries no token). A group's OverrideAction Count turns its terminating
matches into counts. No terminating match: the DefaultAction. A rate-based rule counts
the requests that reach it (and match its scope-down statement) per key over its
evaluation window and matches while the count is over its Limit. Statements are compiled
once per Web ACL into closures: the balancer evaluates every request.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peakready.waf import managed, transforms
from peakready.waf.request import FORCED_MATCH, WafRequest, values

Pred = Callable[[WafRequest, "Trace"], bool]


@dataclass
class Trace:
    """What one evaluation saw (labels added so far, rate keys, SQLi/XSS evaluated)."""

    now: float
    labels: set[str] = field(default_factory=set)
    rate: list[dict] = field(default_factory=list)
    detections: int = 0


@dataclass
class Decision:
    action: str  # ALLOW | BLOCK
    terminating_rule: str  # rule name, or "Default_Action"
    rule_type: str  # REGULAR | RATE_BASED | MANAGED_RULE_GROUP
    group_rule: str | None = None  # the rule inside a managed group that terminated
    counted: list[tuple[str, str | None]] = field(default_factory=list)  # (rule, group rule)
    rate: list[dict] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    metric: str = ""  # the terminating rule's MetricName ("" for the default action)
    engine: str = ""


def _forwarded_ip(req: WafRequest, cfg: dict) -> str | None:
    raw = req.header(cfg.get("HeaderName", "X-Forwarded-For"))
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    position = cfg.get("Position", "FIRST")
    cand = parts[-1] if position == "LAST" and parts else (parts[0] if parts else None)
    try:
        return str(ipaddress.ip_address(cand)) if cand else None
    except ValueError:
        return None


class Compiler:
    def __init__(self, detector: Any, ip_sets: dict[str, list[str]] | None = None) -> None:
        self.detector = detector
        self.ip_sets = ip_sets or {}
        self.uses_engine = False
        self._chains: dict = {}

    def statement(self, stmt: dict, rule: str) -> Pred:
        kind, body = next(iter(stmt.items()))
        return getattr(self, f"_{kind}")(body, rule)

    # --- logical ------------------------------------------------------------------
    def _AndStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        preds = [self.statement(s, rule) for s in body["Statements"]]
        return lambda r, t: all(p(r, t) for p in preds)

    def _OrStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        preds = [self.statement(s, rule) for s in body["Statements"]]
        return lambda r, t: any(p(r, t) for p in preds)

    def _NotStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        pred = self.statement(body["Statement"], rule)
        return lambda r, t: not pred(r, t)

    # --- matches on fields ---------------------------------------------------------
    def _field(self, body: dict, test: Callable[[str], bool]) -> Pred:
        ftm = body["FieldToMatch"]
        chain = transforms.chain(body.get("TextTransformations") or [])
        # several rules read the same field through the same transformations: computed
        # once per request
        key = (json.dumps(ftm, sort_keys=True), tuple(f.__name__ for f in chain), id(chain))
        shared = self._chains.setdefault(key[:2], chain)

        def pred(req: WafRequest, trace: Trace) -> bool:
            cache = req._cache.setdefault("tv", {})
            got = cache.get(key[:2])
            if got is None:
                raw = values(req, ftm)
                got = raw if raw is FORCED_MATCH else [transforms.run(v, shared) for v in raw]
                cache[key[:2]] = got
            if got is FORCED_MATCH:
                return True
            return any(test(v) for v in got)
        return pred

    def _ByteMatchStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        needle = body["SearchString"]
        if isinstance(needle, bytes):
            needle = needle.decode("latin-1")
        pos = body["PositionalConstraint"]
        if pos == "EXACTLY":
            test = needle.__eq__
        elif pos == "STARTS_WITH":
            def test(s: str) -> bool:
                return s.startswith(needle)
        elif pos == "ENDS_WITH":
            def test(s: str) -> bool:
                return s.endswith(needle)
        elif pos == "CONTAINS_WORD":
            word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(needle)}(?![A-Za-z0-9_])")
            def test(s: str) -> bool:
                return word.search(s) is not None
        else:
            def test(s: str) -> bool:
                return needle in s
        return self._field(body, test)

    def _RegexMatchStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        rx = re.compile(body["RegexString"])
        return self._field(body, lambda s: rx.search(s) is not None)

    def _SizeConstraintStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        size, op = int(body["Size"]), body["ComparisonOperator"]
        ops = {"EQ": int.__eq__, "NE": int.__ne__, "LE": int.__le__, "LT": int.__lt__,
               "GE": int.__ge__, "GT": int.__gt__}[op]
        ftm = body["FieldToMatch"]
        if "Body" in ftm:  # the size of the whole body, even beyond the inspected 8 KB
            return lambda r, t: ops(len(r.body), size)
        return self._field(body, lambda s: ops(len(s.encode("utf-8", "surrogatepass")), size))

    def _SqliMatchStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        self.uses_engine = True
        high = body.get("SensitivityLevel") == "HIGH"
        det = self.detector

        def test(s: str) -> bool:
            return det.sqli(s, high)
        return self._counted(self._field(body, test))

    def _XssMatchStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        self.uses_engine = True
        return self._counted(self._field(body, self.detector.xss))

    @staticmethod
    def _counted(pred: Pred) -> Pred:
        def wrapped(req: WafRequest, trace: Trace) -> bool:
            trace.detections += 1
            return pred(req, trace)
        return wrapped

    # --- addresses, labels, rates ----------------------------------------------------
    def _IPSetReferenceStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        nets = [ipaddress.ip_network(a, strict=False)
                for a in self.ip_sets.get(body["ARN"], body.get("Addresses") or [])]
        cfg = body.get("IPSetForwardedIPConfig")

        def pred(req: WafRequest, trace: Trace) -> bool:
            ip = _forwarded_ip(req, cfg) if cfg else req.client_ip
            if ip is None:
                return cfg.get("FallbackBehavior") == "MATCH"
            addr = ipaddress.ip_address(ip)
            return any(addr in n for n in nets)
        return pred

    def _LabelMatchStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        key, scope = body["Key"], body["Scope"]
        if scope == "NAMESPACE":
            return lambda r, t: any(label.startswith(key) for label in t.labels)
        return lambda r, t: any(label == key or label.endswith(":" + key) for label in t.labels)

    def _RateBasedStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        limit, window = int(body["Limit"]), float(body.get("EvaluationWindowSec", 300))
        key_type = body.get("AggregateKeyType", "IP")
        cfg = body.get("ForwardedIPConfig") or {}
        scope = (self.statement(body["ScopeDownStatement"], rule)
                 if body.get("ScopeDownStatement") else None)
        seen: dict[str, deque] = {}

        def pred(req: WafRequest, trace: Trace) -> bool:
            if scope is not None and not scope(req, trace):
                return False
            if key_type == "FORWARDED_IP":
                key = _forwarded_ip(req, cfg)
                if key is None:  # no usable header: the rule does not apply
                    return False
            elif key_type == "CONSTANT":
                key = "*"
            else:
                key = req.client_ip
            stamps = seen.get(key)
            if stamps is None:
                stamps = seen[key] = deque()
                if len(seen) > 200_000:  # bounded memory under a spoofed-address flood
                    seen.clear()
                    seen[key] = stamps
            stamps.append(trace.now)
            cut = trace.now - window
            while stamps and stamps[0] < cut:
                stamps.popleft()
            over = len(stamps) > limit
            if over:
                trace.rate.append({"rateBasedRuleName": rule, "limitKey": key_type,
                                   "limitValue": key, "maxRateAllowed": limit,
                                   "evaluationWindowSec": int(window)})
            return over
        return pred

    def _ManagedRuleGroupStatement(self, body: dict, rule: str) -> Pred:  # noqa: N802
        raise ValueError("a managed rule group is evaluated by CompiledAcl, not as a statement")


@dataclass
class _Rule:
    name: str
    priority: int
    kind: str  # REGULAR | RATE_BASED | MANAGED_RULE_GROUP
    action: str  # ALLOW | BLOCK | COUNT (after OverrideAction for groups: see members)
    metric: str
    pred: Pred | None = None
    members: list[tuple[str, Pred, str]] = field(default_factory=list)  # group rules
    override_count: bool = False
    scope: Pred | None = None
    labels: list[str] = field(default_factory=list)


def _action(obj: dict | None) -> str:
    name = next(iter(obj or {"Allow": {}}))
    return {"Allow": "ALLOW", "Block": "BLOCK", "Count": "COUNT", "Captcha": "BLOCK",
            "Challenge": "BLOCK"}[name]


class CompiledAcl:
    """A validated Web ACL (``webacl.validate``) ready to evaluate requests."""

    def __init__(self, acl: dict, detector: Any, ip_sets: dict[str, list[str]] | None = None
                 ) -> None:
        self.name = acl.get("Name", "webacl")
        self.metric = (acl.get("VisibilityConfig") or {}).get("MetricName", self.name)
        self.default = _action(acl["DefaultAction"])
        self.detector = detector
        comp = Compiler(detector, ip_sets)
        self.rules: list[_Rule] = []
        for rule in sorted(acl.get("Rules") or [], key=lambda r: r["Priority"]):
            stmt = rule["Statement"]
            kind = next(iter(stmt))
            metric = (rule.get("VisibilityConfig") or {}).get("MetricName", rule["Name"])
            labels = [lab["Name"] for lab in rule.get("RuleLabels") or []]
            if kind == "ManagedRuleGroupStatement":
                self.rules.append(self._group(rule, stmt[kind], metric, comp))
                continue
            self.rules.append(_Rule(rule["Name"], rule["Priority"],
                                    "RATE_BASED" if kind == "RateBasedStatement" else "REGULAR",
                                    _action(rule.get("Action")), metric,
                                    comp.statement(stmt, rule["Name"]), labels=labels))
        self.uses_engine = comp.uses_engine

    @staticmethod
    def _group(rule: dict, body: dict, metric: str, comp: Compiler) -> _Rule:
        group = managed.GROUPS[body["Name"]]
        excluded = {e["Name"] for e in body.get("ExcludedRules") or []}
        overrides = {o["Name"]: _action(o["ActionToUse"])
                     for o in body.get("RuleActionOverrides") or []}
        members = []
        for name, stmt in group.rules:
            action = "COUNT" if name in excluded else overrides.get(name, "BLOCK")
            members.append((name, comp.statement(stmt, name), action))
        scope = comp.statement(body["ScopeDownStatement"], rule["Name"]) \
            if body.get("ScopeDownStatement") else None
        return _Rule(rule["Name"], rule["Priority"], "MANAGED_RULE_GROUP", "",
                     metric, members=members,
                     override_count="Count" in (rule.get("OverrideAction") or {}), scope=scope)

    def evaluate(self, req: WafRequest, now: float | None = None) -> Decision:
        trace = Trace(time.time() if now is None else now)
        counted: list[tuple[str, str | None]] = []
        for rule in self.rules:
            if rule.kind == "MANAGED_RULE_GROUP":
                if rule.scope is not None and not rule.scope(req, trace):
                    continue
                for name, pred, action in rule.members:
                    if not pred(req, trace):
                        continue
                    trace.labels.add(f"awswaf:managed:aws:{rule.name}:{name}")
                    if action == "COUNT" or rule.override_count:
                        counted.append((rule.name, name))
                        continue
                    return self._done(action, rule, trace, counted, group_rule=name)
                continue
            if not rule.pred(req, trace):
                continue
            trace.labels.update(rule.labels)
            if rule.action == "COUNT":
                counted.append((rule.name, None))
                continue
            return self._done(rule.action, rule, trace, counted)
        return Decision(self.default, "Default_Action", "REGULAR", counted=counted,
                        rate=trace.rate, labels=sorted(trace.labels),
                        engine=self._engine(trace))

    def _engine(self, trace: Trace) -> str:
        return self.detector.name if trace.detections else ""

    def _done(self, action: str, rule: _Rule, trace: Trace, counted: list,
              group_rule: str | None = None) -> Decision:
        return Decision(action, rule.name, rule.kind, group_rule, counted, trace.rate,
                        sorted(trace.labels), rule.metric, self._engine(trace))
