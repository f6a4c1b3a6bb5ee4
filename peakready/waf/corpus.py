"""The attack and tricky-shopper corpora as concrete HTTP requests, each tagged.

An attack request's category is ``family-placement`` (``sqli-json``, ``xss-cookie``,
``traversal-path``, ``oversize-body``, ``credential-stuffing``): a WAF may stop SQL
injection in a query and miss it in a JSON body, and the verdict must say which. The
same ``AttackRequest`` feeds the Locust scenario (scenarios/attacks.py) and the pure
tests (``to_waf_request``), so what is measured offline is what the load sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from peakready.errors import BadInput
from peakready.waf.request import BODY_LIMIT, WafRequest

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "waf"
ATTACKS_FILE = DATA / "attacks.txt"
TRICKY_FILE = DATA / "tricky_shoppers.txt"
FAMILIES = {"sqli": ("query", "form", "json", "cookie", "header"),
            "xss": ("query", "form", "json", "cookie", "header"),
            "traversal": ("path", "query")}
SPECIAL = ("oversize-body", "credential-stuffing")
TAG_HEADER = "X-Peakready-Attack"  # lets WAF logs tell attacks from shoppers
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 peakready-shopper"


def categories() -> list[str]:
    return [f"{f}-{p}" for f, places in FAMILIES.items() for p in places] + list(SPECIAL)


@dataclass(frozen=True)
class AttackRequest:
    category: str
    method: str
    path: str  # with the query string, already encoded as sent
    name: str  # the sample's name (route template)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    payload: str = ""

    def to_waf_request(self, client_ip: str = "192.0.2.10", host: str = "127.0.0.1") -> WafRequest:
        headers = [("host", host), ("user-agent", BROWSER_UA)]
        headers = [h for h in headers if h[0] not in {k.lower() for k in self.headers}]
        headers += [(k.lower(), v) for k, v in self.headers.items()]
        if self.body:
            headers.append(("content-length", str(len(self.body))))
        return WafRequest(self.method, self.path, headers, self.body, client_ip)


def read_lines(path: Path | str, where: str) -> list[tuple[str, str]]:
    """``kind<TAB>text`` lines (``#`` comments and blank lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{where}: cannot read {path} ({exc.strerror or exc})") from None
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, sep, value = line.partition("\t")
        if not sep or not value:
            raise BadInput(f"{where}: {path}:{lineno}: expected kind<TAB>text")
        out.append((kind.strip(), value))
    return out


def place(family: str, placement: str, payload: str) -> AttackRequest:
    """One payload in one part of a request, encoded as a client would send it."""
    cat = f"{family}-{placement}"
    tag = {TAG_HEADER: cat}
    if placement == "query":
        arg = "category" if family == "traversal" else "q"
        route = "/api/products" if family == "traversal" else "/api/search"
        return AttackRequest(cat, "GET", f"{route}?{arg}={quote(payload, safe='')}", route,
                             tag, payload=payload)
    if placement == "path":
        return AttackRequest(cat, "GET", f"/static/{payload}", "/static/[file]", tag,
                             payload=payload)
    if placement == "form":
        body = f"email={quote_plus(payload)}&remember=1".encode()
        return AttackRequest(cat, "POST", "/api/login", "/api/login",
                             {**tag, "Content-Type": "application/x-www-form-urlencoded"},
                             body, payload)
    if placement == "json":
        body = json.dumps({"sku": payload, "qty": 1}).encode()
        return AttackRequest(cat, "POST", "/api/cart/items", "/api/cart/items",
                             {**tag, "Content-Type": "application/json"}, body, payload)
    if placement == "cookie":
        return AttackRequest(cat, "GET", "/api/cart", "/api/cart",
                             {**tag, "Cookie": f"prefs={quote(payload, safe='')}"},
                             payload=payload)
    if placement == "header":
        return AttackRequest(cat, "GET", "/", "/", {**tag, "User-Agent": payload},
                             payload=payload)
    raise ValueError(f"unknown placement {placement}")


def oversize(n: int = 0) -> AttackRequest:
    """A body over the 8 KB WAF inspects: a payload hidden after harmless padding."""
    pad = "a" * (BODY_LIMIT + 512 + 97 * n)
    body = json.dumps({"sku": "SKU-0001", "qty": 1, "note": pad,
                       "x": "' UNION SELECT password FROM users--"}).encode()
    return AttackRequest("oversize-body", "POST", "/api/cart/items", "/api/cart/items",
                         {TAG_HEADER: "oversize-body", "Content-Type": "application/json"},
                         body, "8 KB padding + sqli")


def login_attempt(n: int) -> AttackRequest:
    body = json.dumps({"email": f"victim{n}@example.test", "password": f"Summer{n}!"}).encode()
    return AttackRequest("credential-stuffing", "POST", "/api/login", "/api/login",
                         {TAG_HEADER: "credential-stuffing",
                          "Content-Type": "application/json"}, body, "login attempt")


def attack_requests(path: Path | str = ATTACKS_FILE, where: str = "load.attacks.corpus",
                    wanted: list[str] | None = None) -> list[AttackRequest]:
    """Every corpus payload in every placement of its family (plus 10 oversize bodies),
    optionally only the ``wanted`` categories. Credential stuffing is a burst, built by
    the scenario from ``login_attempt``."""
    out = []
    for family, payload in read_lines(path, where):
        if family not in FAMILIES:
            raise BadInput(f"{where}: {path}: unknown family {family!r} "
                           f"(known: {', '.join(FAMILIES)})")
        out += [place(family, p, payload) for p in FAMILIES[family]]
    out += [oversize(n) for n in range(10)]
    if wanted:
        out = [r for r in out if r.category in wanted]
    return out


@dataclass(frozen=True)
class TrickyShopper:
    kind: str  # search | review | name
    text: str

    def request(self) -> tuple[str, str, bytes, str]:
        """``(method, path, json body, name)`` through the shop's normal journeys."""
        if self.kind == "search":
            return "GET", f"/api/search?q={quote(self.text, safe='')}", b"", "/api/search"
        if self.kind == "cart":
            body = ('{"sku": "SKU-0001", "qty": 1, "items": ' + self.text + "}").encode()
        else:
            key = "review" if self.kind == "review" else "name"
            body = json.dumps({"sku": "SKU-0001", "qty": 1, key: self.text}).encode()
        return "POST", "/api/cart/items", body, "/api/cart/items"

    def to_waf_request(self, client_ip: str = "203.0.113.7") -> WafRequest:
        method, path, body, _ = self.request()
        headers = [("host", "127.0.0.1"), ("user-agent", BROWSER_UA)]
        if body:
            headers += [("content-type", "application/json"),
                        ("content-length", str(len(body)))]
        return WafRequest(method, path, headers, body, client_ip)


def tricky_shoppers(path: Path | str = TRICKY_FILE, where: str = "load.tricky_shoppers"
                    ) -> list[TrickyShopper]:
    out = [TrickyShopper(k, t) for k, t in read_lines(path, where)]
    bad = [s.kind for s in out if s.kind not in ("search", "review", "name")]
    if bad:
        raise BadInput(f"{where}: {path}: unknown kind {bad[0]!r} (search, review, name)")
    return out + [long_cart(n) for n in (20, 45)]


def long_cart(items: int) -> TrickyShopper:
    """A long JSON cart (quotes, apostrophes, ampersands) still under 8 KB."""
    lines = [{"sku": f"SKU-{i:04d}", "qty": 1 + i % 3, "gift_note": "for Mum & Dad's 40th"}
             for i in range(items)]
    return TrickyShopper("cart", json.dumps(lines))
