"""The AWS managed rule groups a shop uses, as the sandbox evaluates them.

AWS documents each group's rules by name and intent (developerguide
``aws-managed-rule-groups-baseline`` / ``-use-case``) but not their patterns. Each rule
here is that named rule written as an ordinary WAFv2 statement (so the same evaluator
runs it), with SQLi/XSS detection by the real engine (``detect.py``). Names, actions
(all Block) and the 8 KB body rule are AWS's; the patterns are a stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass

_DEC = [{"Priority": 0, "Type": "URL_DECODE"}, {"Priority": 1, "Type": "HTML_ENTITY_DECODE"}]
_LOW = [{"Priority": 0, "Type": "URL_DECODE"}, {"Priority": 1, "Type": "LOWERCASE"}]
_PATH = [{"Priority": 0, "Type": "URL_DECODE"}, {"Priority": 1, "Type": "NORMALIZE_PATH_WIN"},
         {"Priority": 2, "Type": "LOWERCASE"}]
# twice URL_DECODE: ``..%252f`` (encoded twice) is still a traversal
_LFI_TT = [{"Priority": 0, "Type": "URL_DECODE"}, {"Priority": 1, "Type": "URL_DECODE"},
           {"Priority": 2, "Type": "HTML_ENTITY_DECODE"}, {"Priority": 3, "Type": "LOWERCASE"}]
_NONE = [{"Priority": 0, "Type": "NONE"}]
_QARGS = {"AllQueryArguments": {}}
_URI = {"UriPath": {}}
_COOKIES = {"Cookies": {"MatchPattern": {"All": {}}, "MatchScope": "VALUE",
                        "OversizeHandling": "CONTINUE"}}
_IS_JSON = {"ByteMatchStatement": {"SearchString": "json", "PositionalConstraint": "CONTAINS",
                                   "FieldToMatch": {"SingleHeader": {"Name": "content-type"}},
                                   "TextTransformations": [{"Priority": 0,
                                                            "Type": "LOWERCASE"}]}}


def _m(kind: str, field: dict, tts: list, **extra) -> dict:
    return {kind: {"FieldToMatch": field, "TextTransformations": tts, **extra}}


def _body(kind: str, tts: list, **extra) -> dict:
    """A body rule: JSON bodies by their values (after parsing, as AWS's JsonBody), other
    bodies as text (a form's url-encoding removed by URL_DECODE)."""
    return {"OrStatement": {"Statements": [
        {"AndStatement": {"Statements": [_IS_JSON, _m(kind, {"JsonBody": {
            "MatchPattern": {"All": {}}, "MatchScope": "VALUE",
            "InvalidFallbackBehavior": "EVALUATE_AS_STRING",
            "OversizeHandling": "CONTINUE"}}, tts, **extra)]}},
        {"AndStatement": {"Statements": [{"NotStatement": {"Statement": _IS_JSON}},
                                         _m(kind, {"Body": {"OversizeHandling": "CONTINUE"}},
                                            tts, **extra)]}}]}}


def _regex(field: dict, pattern: str, tts: list = _LOW) -> dict:
    return _m("RegexMatchStatement", field, tts, RegexString=pattern)


def _size(field: dict, op: str, size: int) -> dict:
    return _m("SizeConstraintStatement", field, _NONE, ComparisonOperator=op, Size=size)


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[tuple[str, dict], ...]  # (rule name, statement), evaluated in order

    @property
    def rule_names(self) -> list[str]:
        return [n for n, _ in self.rules]


_LFI = r"(?:\.\./|\.\.\\|/etc/(?:passwd|shadow|hosts)|c:\\windows|/proc/self|boot\.ini)"
_RFI = r"^(?:https?|ftp)://(?:\d{1,3}\.){3}\d{1,3}|\?+$"
_BOTS = r"(?:nessus|nmap|nikto|sqlmap|masscan|zgrab|dirbuster|acunetix|w3af|havij)"
_LOG4J = r"\$\{(?:jndi|lower|upper|env|sys|::-j)"
_JAVA = r"(?:ro0ab|java\.lang\.(?:runtime|processbuilder))"
_EXPLOIT = r"(?:/\.git/|/\.env$|/web-inf/|/\.aws/|wp-config\.php|/phpmyadmin|/\.ssh/)"

COMMON = Group("AWSManagedRulesCommonRuleSet", (
    ("NoUserAgent_HEADER", {"NotStatement": {"Statement": _regex(
        {"SingleHeader": {"Name": "user-agent"}}, r".", _NONE)}}),
    ("UserAgent_BadBots_HEADER", _regex({"SingleHeader": {"Name": "user-agent"}}, _BOTS)),
    ("SizeRestrictions_QUERYSTRING", _size({"QueryString": {}}, "GT", 2048)),
    ("SizeRestrictions_Cookie_HEADER", _size({"SingleHeader": {"Name": "cookie"}}, "GT", 10240)),
    ("SizeRestrictions_BODY", _size({"Body": {"OversizeHandling": "MATCH"}}, "GT", 8192)),
    ("SizeRestrictions_URIPATH", _size(_URI, "GT", 1024)),
    ("EC2MetaDataSSRF_QUERYARGUMENTS", _regex(_QARGS, r"169\.254\.169\.254")),
    ("EC2MetaDataSSRF_BODY", _regex({"Body": {"OversizeHandling": "CONTINUE"}},
                                    r"169\.254\.169\.254")),
    ("GenericLFI_QUERYARGUMENTS", _regex(_QARGS, _LFI, _LFI_TT)),
    ("GenericLFI_URIPATH", _regex(_URI, _LFI, _LFI_TT)),
    ("GenericLFI_BODY", _body("RegexMatchStatement", _LFI_TT, RegexString=_LFI)),
    ("RestrictedExtensions_URIPATH", _regex(_URI, r"\.(?:log|ini|bak|config|conf|sql|env|"
                                                  r"swp|old|backup)$", _PATH)),
    ("GenericRFI_QUERYARGUMENTS", _regex(_QARGS, _RFI)),
    ("CrossSiteScripting_COOKIE", _m("XssMatchStatement", _COOKIES, _DEC)),
    ("CrossSiteScripting_QUERYARGUMENTS", _m("XssMatchStatement", _QARGS, _DEC)),
    ("CrossSiteScripting_BODY", _body("XssMatchStatement", _DEC)),
    ("CrossSiteScripting_URIPATH", _m("XssMatchStatement", _URI, _DEC)),
))
SQLI = Group("AWSManagedRulesSQLiRuleSet", (
    ("SQLi_QUERYARGUMENTS", _m("SqliMatchStatement", _QARGS, _DEC)),
    ("SQLi_BODY", _body("SqliMatchStatement", _DEC)),
    ("SQLi_COOKIE", _m("SqliMatchStatement", _COOKIES, _DEC)),
    ("SQLi_URIPATH", _m("SqliMatchStatement", _URI, _DEC)),
))
KNOWN_BAD = Group("AWSManagedRulesKnownBadInputsRuleSet", (
    ("JavaDeserializationRCE_HEADER", _regex({"Headers": {"MatchPattern": {"All": {}},
                                                          "MatchScope": "VALUE"}}, _JAVA)),
    ("JavaDeserializationRCE_BODY", _regex({"Body": {"OversizeHandling": "CONTINUE"}}, _JAVA)),
    ("Host_localhost_HEADER", _regex({"SingleHeader": {"Name": "host"}},
                                     r"^localhost(?::\d+)?$")),
    ("PROPFIND_METHOD", _regex({"Method": {}}, r"^propfind$")),
    ("ExploitablePaths_URIPATH", _regex(_URI, _EXPLOIT, _PATH)),
    ("Log4JRCE_QUERYSTRING", _regex({"QueryString": {}}, _LOG4J, _DEC + [
        {"Priority": 2, "Type": "LOWERCASE"}])),
    ("Log4JRCE_HEADER", _regex({"Headers": {"MatchPattern": {"All": {}},
                                            "MatchScope": "VALUE"}}, _LOG4J)),
    ("Log4JRCE_BODY", _regex({"Body": {"OversizeHandling": "CONTINUE"}}, _LOG4J, _DEC + [
        {"Priority": 2, "Type": "LOWERCASE"}])),
    ("Log4JRCE_URIPATH", _regex(_URI, _LOG4J, _DEC + [{"Priority": 2, "Type": "LOWERCASE"}])),
))

GROUPS = {g.name: g for g in (COMMON, SQLI, KNOWN_BAD)}
