"""WAFv2 text transformations, applied lowest priority first, as AWS documents them
(developerguide ``waf-rule-statement-transformation``). Attackers encode; a rule sees the
decoded text only through these."""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
import urllib.parse
from collections.abc import Callable, Sequence

_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.S)
_ESC = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[0-7]{1,3}|.)", re.S)
_SQL_HEX = re.compile(r"0x([0-9a-fA-F]{2,})")
_JS = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")
_CSS = re.compile(r"\\([0-9a-fA-F]{1,6}) ?")
_SIMPLE_ESC = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _esc(m: re.Match) -> str:
    s = m.group(1)
    if s[0] in "xu" and len(s) > 1:
        return chr(int(s[1:], 16))
    if s[0].isdigit():
        return chr(int(s, 8) & 0xFF)
    return _SIMPLE_ESC.get(s, s)


def _cmd_line(s: str) -> str:
    s = re.sub(r"[\\\"'^]", "", s)
    s = re.sub(r" +(?=[/(])", "", s)
    s = re.sub(r"[,;]", " ", s)
    return _SPACE.sub(" ", s).lower()


def _b64(s: str, ext: bool = False) -> str:
    data = re.sub(r"[^A-Za-z0-9+/=_-]", "", s) if ext else s
    data = data.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4)).decode("latin-1")
    except (binascii.Error, ValueError):
        return s


def _hex(s: str) -> str:
    try:
        return bytes.fromhex(s).decode("latin-1")
    except ValueError:
        return s


def _norm_path(s: str) -> str:
    s = re.sub(r"/{2,}", "/", s)
    parts: list[str] = []
    for part in s.split("/"):
        if part == "..":
            if len(parts) > 1:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "NONE": lambda s: s,
    "LOWERCASE": str.lower,
    "UPPERCASE": str.upper,
    "COMPRESS_WHITE_SPACE": lambda s: _SPACE.sub(" ", s),
    "REMOVE_WHITESPACE": lambda s: _SPACE.sub("", s),
    "TRIM": str.strip,
    "TRIM_LEFT": str.lstrip,
    "TRIM_RIGHT": str.rstrip,
    "HTML_ENTITY_DECODE": html.unescape,
    "URL_DECODE": lambda s: urllib.parse.unquote_plus(s, encoding="latin-1"),
    "URL_DECODE_UNI": lambda s: urllib.parse.unquote_plus(
        re.sub(r"%u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), s)),
    "CMD_LINE": _cmd_line,
    "BASE64_DECODE": _b64,
    "BASE64_DECODE_EXT": lambda s: _b64(s, ext=True),
    "HEX_DECODE": _hex,
    "MD5": lambda s: hashlib.md5(s.encode("utf-8", "surrogatepass")).digest().decode("latin-1"),
    "REPLACE_COMMENTS": lambda s: _COMMENT.sub(" ", s),
    "ESCAPE_SEQ_DECODE": lambda s: _ESC.sub(_esc, s),
    "SQL_HEX_DECODE": lambda s: _SQL_HEX.sub(lambda m: _hex(m.group(1)), s),
    "JS_DECODE": lambda s: _JS.sub(lambda m: chr(int(m.group(1)[1:], 16)), s),
    "CSS_DECODE": lambda s: _CSS.sub(lambda m: chr(min(int(m.group(1), 16), 0x10FFFF)), s),
    "NORMALIZE_PATH": _norm_path,
    "NORMALIZE_PATH_WIN": lambda s: _norm_path(s.replace("\\", "/")),
    "REMOVE_NULLS": lambda s: s.replace("\x00", ""),
    "REPLACE_NULLS": lambda s: s.replace("\x00", " "),
    "UTF8_TO_UNICODE": lambda s: s,  # the sandbox's strings are already Unicode
}


def chain(transformations: Sequence[dict]) -> list[Callable[[str], str]]:
    """The functions of ``transformations``, lowest ``Priority`` first (NONE dropped)."""
    ordered = sorted(transformations, key=lambda t: t.get("Priority", 0))
    return [TRANSFORMS[tt["Type"]] for tt in ordered if tt["Type"] != "NONE"]


def run(value: str, functions: Sequence[Callable[[str], str]]) -> str:
    for fn in functions:
        value = fn(value)
    return value


def apply(value: str, transformations: Sequence[dict]) -> str:
    """``value`` after every transformation, lowest ``Priority`` first."""
    return run(value, chain(transformations))
