"""The Web ACL associated with the sandbox ALB, on the balancer's request path.

The control plane pushes the Web ACL (as ``get_web_acl`` returns it) through the admin
API whenever its lock token changes; each request is then evaluated before it is
proxied. A block is AWS's 403 page (``Server: awselb/2.0``), counted as
``HTTPCode_ELB_403_Count``. Counters per rule feed ``AWS/WAFV2`` (AllowedRequests,
BlockedRequests, CountedRequests); blocked and counted requests get a WAF log record
(AWS's fields) in ``logs/waf-log.jsonl``, like a logging configuration whose filter
keeps BLOCK and COUNT.

Client addresses: the load runs on loopback, so a request from loopback that carries
``X-Forwarded-For`` is taken to come from its first address (the load's simulated
shopper or bot); from anywhere else the header is not trusted.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections import Counter
from typing import Any

from peakready.sandbox import http11

FORBIDDEN = (b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
             b"<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n")


def client_ip(peer_ip: str, xff: str | None) -> str:
    """The address WAF sees as the client (trusted X-Forwarded-For only from loopback)."""
    if xff and peer_ip in ("127.0.0.1", "::1"):
        first = xff.split(",", 1)[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            return peer_ip
    return peer_ip


def forbidden() -> bytes:
    return http11.render_response(403, FORBIDDEN, {"Server": "awselb/2.0"},
                                  content_type="text/html")


class WafState:
    """The compiled Web ACL, its counters since the last take, its log buffer."""

    def __init__(self, name: str, log_path: str | None = None) -> None:
        self.lb_name = name
        self.log_path = log_path
        self.acl: Any = None
        self.arn = ""
        self.lock_token = ""
        self.metrics_of: dict[str, str] = {}
        self.counts: Counter = Counter()
        self.log: list[str] = []
        self.engine = ""
        self.cpu_s = 0.0
        self.evaluated = 0

    def configure(self, payload: dict) -> dict:
        """``{"web_acl": {...} | null, "ip_sets": {arn: [cidr]}}``; returns the status."""
        from peakready.waf import detect, webacl
        from peakready.waf.evaluate import CompiledAcl

        acl = payload.get("web_acl")
        if not acl:
            self.acl, self.arn, self.lock_token = None, "", ""
            return self.status()
        webacl.validate(acl)
        compiled = CompiledAcl(acl, detect.engine(payload.get("engine", "auto")),
                               payload.get("ip_sets") or {})
        self.acl = compiled
        self.arn, self.lock_token = acl.get("ARN", ""), acl.get("LockToken", "")
        self.engine = compiled.detector.name if compiled.uses_engine else ""
        self.metrics_of = {r.name: r.metric for r in compiled.rules}
        return self.status()

    def status(self) -> dict:
        return {"web_acl": self.acl.name if self.acl else None, "arn": self.arn,
                "lock_token": self.lock_token, "engine": self.engine,
                "rules": len(self.acl.rules) if self.acl else 0,
                "evaluated": self.evaluated,
                "cpu_ms_per_request": round(1000 * self.cpu_s / self.evaluated, 4)
                if self.evaluated else None}

    def inspect(self, req: http11.Request, peer_ip: str) -> bool:
        """Evaluate one request; True when it is blocked."""
        from peakready.waf.request import WafRequest

        acl = self.acl
        if acl is None:
            return False
        cpu0 = time.thread_time()
        ip = client_ip(peer_ip, req.headers.get("x-forwarded-for"))
        headers = [(k, v) for k, v in req.headers.items()]
        decision = acl.evaluate(WafRequest(req.method, req.target, headers, req.body, ip))
        self._count(decision)
        if decision.action == "BLOCK" or decision.counted:
            self._record(decision, req, ip, headers)
        self.cpu_s += time.thread_time() - cpu0
        self.evaluated += 1
        return decision.action == "BLOCK"

    def _count(self, d: Any) -> None:
        verdict = "BlockedRequests" if d.action == "BLOCK" else "AllowedRequests"
        c = self.counts
        c[("ALL", None, verdict)] += 1
        if d.terminating_rule == "Default_Action":
            c[(self.acl.metric, None, verdict)] += 1
        else:
            c[(d.metric, None, verdict)] += 1
            if d.group_rule:
                c[(d.group_rule, d.metric, verdict)] += 1
        for rule, inner in d.counted:
            metric = self.metrics_of.get(rule, rule)
            c[(metric, None, "CountedRequests")] += 1
            if inner:
                c[(inner, metric, "CountedRequests")] += 1

    def _record(self, d: Any, req: http11.Request, ip: str, headers: list) -> None:
        groups: dict[str, dict] = {}
        for rule, inner in d.counted:
            if inner:
                g = groups.setdefault(rule, {"ruleGroupId": f"AWS#{rule}",
                                             "terminatingRule": None,
                                             "nonTerminatingMatchingRules": [],
                                             "excludedRules": None})
                g["nonTerminatingMatchingRules"].append({"ruleId": inner, "action": "COUNT"})
        if d.group_rule:
            g = groups.setdefault(d.terminating_rule, {
                "ruleGroupId": f"AWS#{d.terminating_rule}", "terminatingRule": None,
                "nonTerminatingMatchingRules": [], "excludedRules": None})
            g["terminatingRule"] = {"ruleId": d.group_rule, "action": d.action}
        path, _, args = req.target.partition("?")
        record = {
            "timestamp": int(time.time() * 1000), "formatVersion": 1, "webaclId": self.arn,
            "terminatingRuleId": d.terminating_rule, "terminatingRuleType": d.rule_type,
            "action": d.action, "httpSourceName": "ALB", "httpSourceId": self.lb_name,
            "ruleGroupList": list(groups.values()), "rateBasedRuleList": d.rate,
            "nonTerminatingMatchingRules": [{"ruleId": r, "action": "COUNT"}
                                            for r, inner in d.counted if not inner],
            "requestHeadersInserted": None, "responseCodeSent": 403 if d.action == "BLOCK"
            else None, "labels": [{"name": x} for x in d.labels],
            "httpRequest": {"clientIp": ip, "country": "-",
                            "headers": [{"name": k, "value": v[:256]} for k, v in headers],
                            "uri": path, "args": args[:2048], "httpVersion": req.version,
                            "httpMethod": req.method, "requestId": str(uuid.uuid4())},
            "engine": d.engine or None,  # sandbox extra: which detector decided
        }
        if len(self.log) < 200_000:
            self.log.append(json.dumps(record))

    def take(self) -> dict:
        counts, self.counts = self.counts, Counter()
        return {"web_acl": self.acl.name if self.acl else None,
                "metric_name": self.acl.metric if self.acl else None, "engine": self.engine,
                "counts": [{"rule": r, "group": g, "metric": m, "value": v}
                           for (r, g, m), v in counts.items()]}

    def flush_log(self) -> None:
        if not self.log or self.log_path is None:
            return
        lines, self.log = self.log, []
        with open(self.log_path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
