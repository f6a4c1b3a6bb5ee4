"""One HTTP request as AWS WAF inspects it, and ``FieldToMatch`` extraction.

AWS limits what WAF sees of a body behind an ALB: the first 8 KB (8,192 bytes); beyond
that ``OversizeHandling`` decides (CONTINUE inspects the first 8 KB, MATCH treats the
request as matching, NO_MATCH as not matching). Headers and cookies have their own
limits (8 KB / 200 entries); the sandbox applies the body one, the one shops trip over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

BODY_LIMIT = 8 * 1024  # ALB: WAF inspects the first 8 KB of a body
HEADER_LIMIT = 8 * 1024
FORCED_MATCH = object()  # the field counts as matching (oversize MATCH, invalid JSON MATCH)


@dataclass
class WafRequest:
    method: str
    target: str  # path and query string as received
    headers: list[tuple[str, str]]  # (lower-case name, value) in order
    body: bytes = b""
    client_ip: str = "127.0.0.1"
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def uri_path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query_string(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def query_args(self) -> list[tuple[str, str]]:
        if "qa" not in self._cache:
            self._cache["qa"] = parse_qsl(self.query_string, keep_blank_values=True)
        return self._cache["qa"]

    def cookies(self) -> list[tuple[str, str]]:
        if "ck" not in self._cache:
            out = []
            for raw in (v for k, v in self.headers if k == "cookie"):
                for part in raw.split(";"):
                    key, _, value = part.strip().partition("=")
                    if key:
                        out.append((key, value))
            self._cache["ck"] = out
        return self._cache["ck"]

    def json_body(self) -> Any:
        if "js" not in self._cache:
            try:
                self._cache["js"] = json.loads(self.body[:BODY_LIMIT])
            except ValueError:  # truncated at 8 KB or not JSON at all
                self._cache["js"] = ValueError
        return self._cache["js"]


def _pattern_pairs(pairs: list[tuple[str, str]], spec: dict) -> list[tuple[str, str]]:
    pattern = spec.get("MatchPattern") or {}
    if "IncludedHeaders" in pattern or "IncludedCookies" in pattern:
        wanted = {n.lower() for n in pattern.get("IncludedHeaders") or
                  pattern.get("IncludedCookies") or []}
        return [(k, v) for k, v in pairs if k.lower() in wanted]
    if "ExcludedHeaders" in pattern or "ExcludedCookies" in pattern:
        unwanted = {n.lower() for n in pattern.get("ExcludedHeaders") or
                    pattern.get("ExcludedCookies") or []}
        return [(k, v) for k, v in pairs if k.lower() not in unwanted]
    return pairs


def _scoped(pairs: list[tuple[str, str]], scope: str) -> list[str]:
    if scope == "KEY":
        return [k for k, _ in pairs]
    if scope == "VALUE":
        return [v for _, v in pairs]
    return [x for kv in pairs for x in kv]


def _json_leaves(doc: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append((str(key), "\x00KEY"))
            _json_leaves(value, f"{path}/{key}", out)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            _json_leaves(value, f"{path}/{i}", out)
    elif doc is not None:
        out.append((path, doc if isinstance(doc, str) else json.dumps(doc)))


def _json_values(req: WafRequest, spec: dict) -> list[str] | object:
    doc = req.json_body()
    if doc is ValueError:  # not JSON: AWS's InvalidFallbackBehavior
        fallback = spec.get("InvalidFallbackBehavior", "EVALUATE_AS_STRING")
        if fallback == "MATCH":
            return FORCED_MATCH
        if fallback == "NO_MATCH":
            return []
        return [req.body[:BODY_LIMIT].decode("utf-8", "replace")]
    leaves: list[tuple[str, str]] = []
    _json_leaves(doc, "", leaves)
    pattern = spec.get("MatchPattern") or {}
    included = pattern.get("IncludedPaths")
    keys = [k for k, v in leaves if v == "\x00KEY"]
    values = [(p, v) for p, v in leaves if v != "\x00KEY"]
    if included:
        values = [(p, v) for p, v in values if any(p.startswith(i) for i in included)]
    scope = spec.get("MatchScope", "ALL")
    if scope == "KEY":
        return keys
    if scope == "VALUE":
        return [v for _, v in values]
    return keys + [v for _, v in values]


def values(req: WafRequest, ftm: dict) -> list[str] | object:
    """The strings a statement inspects, or ``FORCED_MATCH`` when the field is over its
    inspection limit and the statement's OversizeHandling is MATCH."""
    kind, spec = next(iter(ftm.items()))
    spec = spec or {}
    if kind == "UriPath":
        return [req.uri_path]
    if kind == "QueryString":
        return [req.query_string]
    if kind == "Method":
        return [req.method]
    if kind == "SingleHeader":
        value = req.header(spec["Name"])
        return [] if value is None else [value]
    if kind == "SingleQueryArgument":
        name = spec["Name"].lower()
        return [v for k, v in req.query_args() if k.lower() == name]
    if kind == "AllQueryArguments":
        return [v for _, v in req.query_args()]
    if kind == "Headers":
        return _scoped(_pattern_pairs(req.headers, spec), spec.get("MatchScope", "ALL"))
    if kind == "Cookies":
        return _scoped(_pattern_pairs(req.cookies(), spec), spec.get("MatchScope", "ALL"))
    oversize = len(req.body) > BODY_LIMIT
    handling = spec.get("OversizeHandling", "CONTINUE")
    if oversize and handling == "MATCH":
        return FORCED_MATCH
    if oversize and handling == "NO_MATCH":
        return []
    if kind == "Body":
        return [req.body[:BODY_LIMIT].decode("utf-8", "replace")]
    if kind == "JsonBody":
        return _json_values(req, spec)
    raise ValueError(f"field {kind} is not evaluated by the sandbox")


def form_values(req: WafRequest) -> list[str]:
    """A url-encoded form body's values (managed rules inspect them as BODY)."""
    text = req.body[:BODY_LIMIT].decode("utf-8", "replace")
    return [unquote_plus(v) for _, v in parse_qsl(text, keep_blank_values=True)]
