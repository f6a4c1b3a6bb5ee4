"""A WAFv2 Web ACL as AWS would accept it: ``problems(acl)`` names every field AWS (or
botocore) would refuse, and every field the sandbox cannot evaluate.

moto stores whatever it is given (duplicate priorities, no VisibilityConfig, a rate limit
of 1), so peakready validates itself, before any load: a Web ACL AWS would refuse must
not be "tested" on the sandbox. Field paths read like the JSON (``Rules[2].Statement.
RateBasedStatement.Limit``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from peakready.errors import BadInput

# the 16 statement types of the WAFv2 API (botocore service-2.json)
STATEMENTS = {"ByteMatchStatement", "SqliMatchStatement", "XssMatchStatement",
              "SizeConstraintStatement", "GeoMatchStatement", "RuleGroupReferenceStatement",
              "IPSetReferenceStatement", "RegexPatternSetReferenceStatement",
              "RateBasedStatement", "AndStatement", "OrStatement", "NotStatement",
              "ManagedRuleGroupStatement", "LabelMatchStatement", "RegexMatchStatement",
              "AsnMatchStatement"}
NOT_IN_SANDBOX = {"GeoMatchStatement", "RuleGroupReferenceStatement",
                  "RegexPatternSetReferenceStatement", "AsnMatchStatement"}
FIELDS = {"SingleHeader", "SingleQueryArgument", "AllQueryArguments", "UriPath", "QueryString",
          "Body", "Method", "JsonBody", "Headers", "Cookies", "HeaderOrder", "JA3Fingerprint",
          "JA4Fingerprint", "UriFragment"}
FIELDS_NOT_IN_SANDBOX = {"HeaderOrder", "JA3Fingerprint", "JA4Fingerprint", "UriFragment"}
TRANSFORMS = {"NONE", "COMPRESS_WHITE_SPACE", "HTML_ENTITY_DECODE", "LOWERCASE", "CMD_LINE",
              "URL_DECODE", "BASE64_DECODE", "HEX_DECODE", "MD5", "REPLACE_COMMENTS",
              "ESCAPE_SEQ_DECODE", "SQL_HEX_DECODE", "CSS_DECODE", "JS_DECODE",
              "NORMALIZE_PATH", "NORMALIZE_PATH_WIN", "REMOVE_NULLS", "REPLACE_NULLS",
              "BASE64_DECODE_EXT", "URL_DECODE_UNI", "UTF8_TO_UNICODE", "REMOVE_WHITESPACE",
              "TRIM", "TRIM_LEFT", "TRIM_RIGHT", "UPPERCASE"}
ACTIONS = {"Allow", "Block", "Count", "Captcha", "Challenge"}
POSITIONS = {"EXACTLY", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "CONTAINS_WORD"}
COMPARISONS = {"EQ", "NE", "LE", "LT", "GE", "GT"}
WINDOWS = {60, 120, 300, 600}
METRIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RESERVED_METRICS = {"All", "Default_Action"}
MANAGED_VENDOR = "AWS"
MIN_RATE_LIMIT = 10  # AWS: "minimum 10" (was 100 before 2023)


def problems(acl: Any) -> list[str]:
    """Every problem, each ``field: what is wrong``; empty when AWS would take it and the
    sandbox can evaluate it."""
    from peakready.waf import managed  # the managed-group catalogue the sandbox knows

    out: list[str] = []
    if not isinstance(acl, dict):
        return ["Web ACL: must be a JSON object"]
    _one_of(out, "DefaultAction", acl.get("DefaultAction"), {"Allow", "Block"})
    _visibility(out, "VisibilityConfig", acl.get("VisibilityConfig"))
    rules = acl.get("Rules") or []
    if not isinstance(rules, list):
        return [*out, "Rules: must be a list"]
    seen_prio: dict[Any, int] = {}
    seen_name: dict[str, int] = {}
    for i, rule in enumerate(rules):
        w = f"Rules[{i}]"
        if not isinstance(rule, dict):
            out.append(f"{w}: must be an object")
            continue
        name = rule.get("Name")
        if not isinstance(name, str) or not name:
            out.append(f"{w}.Name: required")
        elif name in seen_name:
            out.append(f"{w}.Name: duplicate rule name {name!r} (also Rules[{seen_name[name]}])")
        else:
            seen_name[name] = i
        prio = rule.get("Priority")
        if not isinstance(prio, int) or isinstance(prio, bool) or prio < 0:
            out.append(f"{w}.Priority: must be an integer >= 0")
        elif prio in seen_prio:
            out.append(f"{w}.Priority: duplicate priority {prio} (also Rules[{seen_prio[prio]}]);"
                       " AWS refuses a Web ACL whose rules share a priority")
        else:
            seen_prio[prio] = i
        _visibility(out, f"{w}.VisibilityConfig", rule.get("VisibilityConfig"))
        stmt = rule.get("Statement")
        is_group = isinstance(stmt, dict) and ("ManagedRuleGroupStatement" in stmt
                                               or "RuleGroupReferenceStatement" in stmt)
        action, override = rule.get("Action"), rule.get("OverrideAction")
        if is_group:
            if action is not None:
                out.append(f"{w}.Action: a rule group reference takes OverrideAction, not Action")
            _one_of(out, f"{w}.OverrideAction", override, {"Count", "None"})
        else:
            if override is not None:
                out.append(f"{w}.OverrideAction: only for rule group references; use Action")
            _one_of(out, f"{w}.Action", action, ACTIONS)
        _statement(out, f"{w}.Statement", stmt, top=True, managed=managed)
    return out


def validate(acl: Any, where: str = "Web ACL") -> dict:
    """The Web ACL, or ``BadInput`` naming the first problem's field."""
    found = problems(acl)
    if found:
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise BadInput(f"{where}: {found[0]}{more}")
    return acl


def load_file(path: Path | str, where: str) -> dict:
    """A Web ACL JSON file: the ``WebACL`` object of ``get_web_acl`` output, or the
    keyword arguments of ``create_web_acl`` (both have Rules/DefaultAction/...)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{where}: {path} is not readable JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("WebACL"), dict):
        data = data["WebACL"]
    return validate(data, f"{where} ({path})")


def _one_of(out: list[str], where: str, value: Any, allowed: set[str]) -> None:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in allowed:
        out.append(f"{where}: must be exactly one of {', '.join(sorted(allowed))} "
                   f"(e.g. {{\"{sorted(allowed)[0]}\": {{}}}})")


def _visibility(out: list[str], where: str, vc: Any) -> None:
    if not isinstance(vc, dict):
        out.append(f"{where}: required (SampledRequestsEnabled, CloudWatchMetricsEnabled, "
                   "MetricName)")
        return
    for key in ("SampledRequestsEnabled", "CloudWatchMetricsEnabled"):
        if not isinstance(vc.get(key), bool):
            out.append(f"{where}.{key}: required, true or false")
    name = vc.get("MetricName")
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        out.append(f"{where}.MetricName: 1-128 characters of A-Z a-z 0-9 _ -")
    elif name in RESERVED_METRICS:
        out.append(f"{where}.MetricName: {name!r} is reserved for AWS WAF")


def _statement(out: list[str], where: str, stmt: Any, top: bool = False,
               managed: Any = None) -> None:
    if not isinstance(stmt, dict) or len(stmt) != 1:
        out.append(f"{where}: must hold exactly one statement")
        return
    kind, body = next(iter(stmt.items()))
    w = f"{where}.{kind}"
    if kind not in STATEMENTS:
        out.append(f"{where}: unknown statement {kind!r} (AWS knows: "
                   f"{', '.join(sorted(STATEMENTS))})")
        return
    if kind in NOT_IN_SANDBOX:
        out.append(f"{w}: valid on AWS but not evaluated by the sandbox")
        return
    if not isinstance(body, dict):
        out.append(f"{w}: must be an object")
        return
    if kind in ("AndStatement", "OrStatement"):
        subs = body.get("Statements")
        if not isinstance(subs, list) or len(subs) < 2:
            out.append(f"{w}.Statements: at least two statements")
            return
        for j, sub in enumerate(subs):
            _statement(out, f"{w}.Statements[{j}]", sub)
    elif kind == "NotStatement":
        _statement(out, f"{w}.Statement", body.get("Statement"))
    elif kind in ("ByteMatchStatement", "RegexMatchStatement", "SqliMatchStatement",
                  "XssMatchStatement", "SizeConstraintStatement"):
        _field(out, f"{w}.FieldToMatch", body.get("FieldToMatch"))
        _transforms(out, f"{w}.TextTransformations", body.get("TextTransformations"))
        if kind == "ByteMatchStatement":
            if not isinstance(body.get("SearchString"), str) or not body["SearchString"]:
                out.append(f"{w}.SearchString: required, a non-empty string")
            if body.get("PositionalConstraint") not in POSITIONS:
                out.append(f"{w}.PositionalConstraint: one of {', '.join(sorted(POSITIONS))}")
        elif kind == "RegexMatchStatement":
            try:
                re.compile(body.get("RegexString") or "")
                if not body.get("RegexString"):
                    raise re.error("empty")
            except re.error as exc:
                out.append(f"{w}.RegexString: not a usable regular expression ({exc})")
        elif kind == "SqliMatchStatement":
            if body.get("SensitivityLevel", "LOW") not in ("LOW", "HIGH"):
                out.append(f"{w}.SensitivityLevel: LOW or HIGH")
        elif kind == "SizeConstraintStatement":
            if body.get("ComparisonOperator") not in COMPARISONS:
                out.append(f"{w}.ComparisonOperator: one of {', '.join(sorted(COMPARISONS))}")
            size = body.get("Size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                out.append(f"{w}.Size: an integer >= 0")
    elif kind == "IPSetReferenceStatement":
        if not isinstance(body.get("ARN"), str) or not body["ARN"]:
            out.append(f"{w}.ARN: required (an IP set's ARN)")
    elif kind == "LabelMatchStatement":
        if body.get("Scope") not in ("LABEL", "NAMESPACE") or not body.get("Key"):
            out.append(f"{w}: Scope LABEL|NAMESPACE and Key required")
    elif kind == "RateBasedStatement":
        if not top:
            out.append(f"{w}: a rate-based statement cannot be nested")
        limit = body.get("Limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < MIN_RATE_LIMIT:
            out.append(f"{w}.Limit: an integer >= {MIN_RATE_LIMIT} (AWS's minimum), "
                       f"got {limit!r}")
        window = body.get("EvaluationWindowSec", 300)
        if window not in WINDOWS:
            out.append(f"{w}.EvaluationWindowSec: one of {', '.join(map(str, sorted(WINDOWS)))}")
        key = body.get("AggregateKeyType")
        if key not in ("IP", "FORWARDED_IP", "CONSTANT", "CUSTOM_KEYS"):
            out.append(f"{w}.AggregateKeyType: IP, FORWARDED_IP, CONSTANT or CUSTOM_KEYS")
        elif key == "CUSTOM_KEYS":
            out.append(f"{w}.AggregateKeyType: CUSTOM_KEYS is not evaluated by the sandbox")
        elif key == "FORWARDED_IP":
            _forwarded(out, f"{w}.ForwardedIPConfig", body.get("ForwardedIPConfig"))
        if body.get("ScopeDownStatement") is not None:
            _statement(out, f"{w}.ScopeDownStatement", body["ScopeDownStatement"])
    elif kind == "ManagedRuleGroupStatement":
        if not top:
            out.append(f"{w}: a managed rule group cannot be nested")
        if body.get("VendorName") != MANAGED_VENDOR:
            out.append(f"{w}.VendorName: the sandbox knows vendor {MANAGED_VENDOR!r}")
        elif body.get("Name") not in managed.GROUPS:
            out.append(f"{w}.Name: {body.get('Name')!r} is not a managed group the sandbox "
                       f"evaluates ({', '.join(sorted(managed.GROUPS))})")
        else:
            known = set(managed.GROUPS[body["Name"]].rule_names)
            for j, ex in enumerate(body.get("ExcludedRules") or []):
                if not isinstance(ex, dict) or ex.get("Name") not in known:
                    out.append(f"{w}.ExcludedRules[{j}].Name: not a rule of {body['Name']}")
            for j, ov in enumerate(body.get("RuleActionOverrides") or []):
                if not isinstance(ov, dict) or ov.get("Name") not in known:
                    out.append(f"{w}.RuleActionOverrides[{j}].Name: not a rule of "
                               f"{body['Name']}")
                else:
                    _one_of(out, f"{w}.RuleActionOverrides[{j}].ActionToUse",
                            ov.get("ActionToUse"), ACTIONS)
        if body.get("ScopeDownStatement") is not None:
            _statement(out, f"{w}.ScopeDownStatement", body["ScopeDownStatement"])


def _forwarded(out: list[str], where: str, cfg: Any) -> None:
    if not isinstance(cfg, dict) or not cfg.get("HeaderName"):
        out.append(f"{where}: required for FORWARDED_IP (HeaderName, FallbackBehavior)")
    elif cfg.get("FallbackBehavior") not in ("MATCH", "NO_MATCH"):
        out.append(f"{where}.FallbackBehavior: MATCH or NO_MATCH")


def _field(out: list[str], where: str, ftm: Any) -> None:
    if not isinstance(ftm, dict) or len(ftm) != 1:
        out.append(f"{where}: exactly one of {', '.join(sorted(FIELDS))}")
        return
    kind, body = next(iter(ftm.items()))
    if kind not in FIELDS:
        out.append(f"{where}: unknown field {kind!r}")
    elif kind in FIELDS_NOT_IN_SANDBOX:
        out.append(f"{where}.{kind}: valid on AWS but not evaluated by the sandbox")
    elif kind in ("SingleHeader", "SingleQueryArgument"):
        if not isinstance(body, dict) or not body.get("Name"):
            out.append(f"{where}.{kind}.Name: required")
    elif kind in ("JsonBody", "Headers", "Cookies"):
        if not isinstance(body, dict) or not isinstance(body.get("MatchPattern"), dict):
            out.append(f"{where}.{kind}.MatchPattern: required")
        elif body.get("MatchScope") not in ("ALL", "KEY", "VALUE"):
            out.append(f"{where}.{kind}.MatchScope: ALL, KEY or VALUE")
    if isinstance(body, dict) and body.get("OversizeHandling") not in (
            None, "CONTINUE", "MATCH", "NO_MATCH"):
        out.append(f"{where}.{kind}.OversizeHandling: CONTINUE, MATCH or NO_MATCH")


def _transforms(out: list[str], where: str, tts: Any) -> None:
    if not isinstance(tts, list) or not tts:
        out.append(f"{where}: at least one (use {{\"Priority\": 0, \"Type\": \"NONE\"}})")
        return
    prios = set()
    for j, tt in enumerate(tts):
        if not isinstance(tt, dict) or tt.get("Type") not in TRANSFORMS:
            out.append(f"{where}[{j}].Type: unknown text transformation "
                       f"{tt.get('Type') if isinstance(tt, dict) else tt!r}")
        elif tt.get("Priority") in prios or not isinstance(tt.get("Priority"), int):
            out.append(f"{where}[{j}].Priority: an integer, unique within the statement")
        else:
            prios.add(tt["Priority"])
