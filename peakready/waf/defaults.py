"""The Web ACL a shop puts in front of its ALB, set up with the sandbox: the three
managed groups plus a per-client rate rule and a login rate rule (AWS's DDoS whitepaper:
a blanket limit plus a tighter scope-down limit on ``/login``), and one custom rule for
the headers the managed groups do not inspect (User-Agent, Referer)."""

from __future__ import annotations

import copy

from peakready.sandbox.aws import names

NAME = names.WEB_ACL


def _vc(metric: str) -> dict:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
            "MetricName": metric}


def _group(name: str, priority: int, count: tuple[str, ...] = ()) -> dict:
    stmt: dict = {"VendorName": "AWS", "Name": name}
    if count:
        stmt["RuleActionOverrides"] = [{"Name": r, "ActionToUse": {"Count": {}}} for r in count]
    return {"Name": name, "Priority": priority, "OverrideAction": {"None": {}},
            "Statement": {"ManagedRuleGroupStatement": stmt}, "VisibilityConfig": _vc(name)}


# keyed by the client address the CDN/load puts in X-Forwarded-For: a request without
# it is not rate-limited (NO_MATCH), so load that does not model addresses (a plain
# locustfile on loopback) is not one giant client
_FORWARDED = {"AggregateKeyType": "FORWARDED_IP",
              "ForwardedIPConfig": {"HeaderName": "X-Forwarded-For", "FallbackBehavior": "NO_MATCH"}}
_HEADERS = {"Headers": {"MatchPattern": {"IncludedHeaders": ["user-agent", "referer"]},
                        "MatchScope": "VALUE", "OversizeHandling": "CONTINUE"}}
_DEC = [{"Priority": 0, "Type": "URL_DECODE"}, {"Priority": 1, "Type": "HTML_ENTITY_DECODE"}]

DEFAULT_ACL = {
    "Name": NAME,
    "DefaultAction": {"Allow": {}},
    "VisibilityConfig": _vc("peakready-web-acl"),
    "Rules": [
        {"Name": "RateLimitPerIP", "Priority": 0, "Action": {"Block": {}},
         "Statement": {"RateBasedStatement": {"Limit": 2000, "EvaluationWindowSec": 300,
                                              **_FORWARDED}},
         "VisibilityConfig": _vc("RateLimitPerIP")},
        {"Name": "LoginRateLimit", "Priority": 1, "Action": {"Block": {}},
         "Statement": {"RateBasedStatement": {
             "Limit": 100, "EvaluationWindowSec": 300, **_FORWARDED,
             "ScopeDownStatement": {"ByteMatchStatement": {
                 "SearchString": "/api/login", "PositionalConstraint": "STARTS_WITH",
                 "FieldToMatch": {"UriPath": {}},
                 "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}}},
         "VisibilityConfig": _vc("LoginRateLimit")},
        _group("AWSManagedRulesKnownBadInputsRuleSet", 10),
        # API clients and health probes often send no User-Agent: counted, not blocked
        _group("AWSManagedRulesCommonRuleSet", 20, count=("NoUserAgent_HEADER",)),
        _group("AWSManagedRulesSQLiRuleSet", 30),
        {"Name": "SQLiXSS_HEADERS", "Priority": 40, "Action": {"Block": {}},
         "Statement": {"OrStatement": {"Statements": [
             {"SqliMatchStatement": {"FieldToMatch": _HEADERS, "TextTransformations": _DEC}},
             {"XssMatchStatement": {"FieldToMatch": _HEADERS, "TextTransformations": _DEC}},
         ]}},
         "VisibilityConfig": _vc("SQLiXSS_HEADERS")},
    ],
}


def default_acl() -> dict:
    return copy.deepcopy(DEFAULT_ACL)
