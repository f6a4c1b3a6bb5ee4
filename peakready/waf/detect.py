"""SQL-injection and XSS detection for SqliMatch/XssMatch and the managed groups.

AWS does not publish its engine. The sandbox uses libinjection (``@detectSQLi`` /
``@detectXSS``) through libmodsecurity's wheel (Apache-2.0; Linux x86_64 and macOS arm64,
CPython 3.9-3.13). Where that wheel does not install, ``engine()`` says so in one line
and returns the fallback: peakready's own patterns, measured on the same corpora
(docs/waf.md) and named in every WAF record (``engine``) so a verdict never passes off
fallback results as libinjection's.
"""

from __future__ import annotations

import logging
import re
import sys
import urllib.parse
from functools import lru_cache

log = logging.getLogger(__name__)

LIBINJECTION = "libinjection (libmodsecurity) + peakready patterns"
FALLBACK = "fallback (peakready patterns)"


class Fallback:
    """Token-ish patterns: an SQL fragment needs structure (a quote or comment breaking
    out, UNION SELECT, a stacked statement, a tautology, a timing function), not a word,
    so "O'Neill", "select specialty" or "drop-shoulder" pass."""

    name = FALLBACK
    _SQLI = re.compile("|".join([
        r"['\"`)]\s*(?:or|and|xor|\|\||&&)\s+[\w'\"(@]",      # ' or 1 / ") and (
        r"['\"`]\s*(?:or|and)\s*['\"`]?\w*['\"`]?\s*(?:=|<|>|like\b)",
        r"\bunion\b[\s(/*]+(?:all\b[\s(/*]+|distinct\b[\s(/*]+)?select\b",
        r";\s*(?:drop|delete|insert|update|alter|create|truncate|shutdown|exec|declare|select)"
        r"\s+[\w@*(]",
        r"['\"`)]\s*;",                                        # '; ...
        r"['\"`]\s*\)?\s*(?:--|#|/\*)",                        # '-- / ')#
        r"\b(?:sleep|benchmark|pg_sleep|load_file|extractvalue|updatexml|char|concat|"
        r"version|database|user)\s*\(",
        r"\bwaitfor\s+delay\b",
        r"\b(?:or|and)\s+\d+\s*(?:=|<|>)\s*\d+",              # or 1=1
        r"\b(?:or|and)\s+['\"]\w*['\"]\s*=\s*['\"]",          # or 'a'='a
        r"\border\s+by\s+\d+\s*(?:--|#|$)",
        r"\bselect\b[\s\S]{1,100}\bfrom\b[\s\S]{0,60}\b(?:where|information_schema|dual|"
        r"users?|sys\w*)\b",
        r"\b(?:information_schema|sysobjects|pg_catalog|mysql\.user)\b",
        r"\bselect\s+(?:@@|\*\s+from|null\b|\d+\s*,)",
        r"\b(?:insert\s+into|delete\s+from|drop\s+(?:table|database))\b",
        r"\bexec(?:ute)?\s+(?:xp_|sp_)\w+",
        r"\b(?:is\s+not\s+null|having\s+\d+\s*=\s*\d+)\b",
    ]), re.I)
    _XSS = re.compile("|".join([
        r"<\s*/?\s*(?:script|iframe|frame|object|embed|applet|svg|math|base|link|meta|style|"
        r"form|input|button|video|audio|details|marquee|body|img|image|isindex|xss)\b",
        r"<[a-z][^>]*?[\s/\"']on[a-z]{3,}\s*=",               # <x onerror=
        r"\bon(?:error|load|mouseover|focus|click|toggle|begin|start|animationstart)\s*=",
        r"(?:javascript|vbscript|livescript)\s*:",
        r"data\s*:\s*text/html",
        r"\bexpression\s*\(",
        r"<!\[cdata\[|<!--[\s\S]*?<",
        r"\bsrcdoc\s*=",
        r"\balert\s*\(|\bprompt\s*\(|\bconfirm\s*\(|document\.(?:cookie|domain|write)|"
        r"\beval\s*\(|window\.location|fromcharcode",
    ]), re.I)

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], bool] = {}

    def sqli(self, text: str, high: bool = False) -> bool:
        return bool(text) and self._memo("s", text, self._SQLI)

    def xss(self, text: str) -> bool:
        return bool(text) and self._memo("x", text, self._XSS)

    def _memo(self, kind: str, text: str, rx: re.Pattern) -> bool:
        key = (kind, text)
        hit = self._seen.get(key)
        if hit is None:
            if len(self._seen) > 65536:
                self._seen.clear()
            hit = self._seen[key] = rx.search(text) is not None
        return hit


class Libinjection:
    """libinjection through libmodsecurity: one transaction per inspected string, the
    string passed as a query argument (ModSecurity URL-decodes ARGS, so the bytes arrive
    exactly) to two rules that run nothing else. Like AWS's SQLi set, whose
    ``SQLiExtendedPatterns`` rules add patterns to the tokenizer, a string the tokenizer
    passes is also tried against the fallback's patterns (libinjection alone misses
    e.g. ``admin' #`` and split tags like ``<scr<script>ipt>``)."""

    name = LIBINJECTION
    RULES = ('SecRuleEngine On\n'
             'SecRule ARGS:s "@detectSQLi" "id:1001,phase:1,deny,status:403,nolog"\n'
             'SecRule ARGS:x "@detectXSS" "id:1002,phase:1,deny,status:403,nolog"\n')

    def __init__(self) -> None:
        import libmodsecurity as ms  # noqa: F401 - the import is the availability test

        self._ms = ms
        self.modsec = ms.ModSecurity()
        try:  # silence "Server log callback is not set" on stderr
            self.modsec.set_server_log_callback(lambda *_a: None)
        except Exception:  # noqa: BLE001 - older bindings: harmless noise only
            pass
        self.rules = ms.RulesSet()
        self.rules.load(self.RULES)
        self.patterns = Fallback()

    def _hit(self, arg: str, text: str) -> bool:
        tx = self._ms.Transaction(self.modsec, self.rules)
        tx.process_uri(f"/?{arg}={urllib.parse.quote(text, safe='')}", "GET", "1.1")
        tx.process_request_headers()
        intervention = tx.intervention()
        return bool(intervention and getattr(intervention, "status", 200) == 403)

    def sqli(self, text: str, high: bool = False) -> bool:
        return bool(text) and (self._cached(("s", text)) or self.patterns.sqli(text))

    def xss(self, text: str) -> bool:
        return bool(text) and (self._cached(("x", text)) or self.patterns.xss(text))

    @lru_cache(maxsize=65536)  # noqa: B019 - one engine per process; shopper strings repeat
    def _cached(self, key: tuple[str, str]) -> bool:
        return self._hit(*key)


_ENGINE: list = []


def engine(prefer: str = "auto"):
    """The detection engine of this process (built once). ``prefer`` ``fallback`` skips
    libmodsecurity (tests, measurements of the fallback)."""
    if prefer == "fallback":
        return Fallback()
    if not _ENGINE:
        try:
            _ENGINE.append(Libinjection())
        except Exception as exc:  # noqa: BLE001 - no wheel for this platform, or broken
            sys.stderr.write(f"peakready waf: libmodsecurity is not available on this platform "
                             f"({type(exc).__name__}: {str(exc)[:80]}); SQLi/XSS detection "
                             f"uses the {FALLBACK}\n")
            _ENGINE.append(Fallback())
    return _ENGINE[0]
