"""Render the verdict for people and for CI: report.html, summary.md, junit.xml.

Pure functions from the verdict dict (and PNG bytes) to text; writing files is left to
``analysis.analyze``.
"""

from __future__ import annotations

import base64
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
ICONS = {"pass": "✅", "fail": "❌", "skipped": "⏭️", "inconclusive": "⚠️", "incomplete": "⚠️",
         "aborted": "🛑", "regression": "❌"}
SUMMARY_ROWS = 40
CLOSED_MODEL_NOTE = ("Closed-model load: the locustfile's own pacing with a fixed user pool "
                     "(--closed-model). Coordinated omission possible: when the storefront "
                     "slowed, fewer requests were offered; the offered rate is not guaranteed.")


def load_model_note(verdict: dict[str, Any]) -> str:
    """A line for the report when the load was not the open model (empty otherwise)."""
    return CLOSED_MODEL_NOTE if verdict.get("load_model") == "closed" else ""


def takeover_notes(verdict: dict[str, Any]) -> list[str]:
    """One line per distributed worker lost mid-run: from when its arrivals were sent by
    the others (before that, its share was missing: offered vs achieved shows the gap)."""
    out = []
    for t in verdict.get("takeovers") or []:
        to = ", ".join(t.get("to") or []) or "no worker (its arrivals were not sent)"
        out.append(f"Load worker {t.get('worker')} ({t.get('name')}) was lost mid-run; from "
                   f"t={float(t.get('from_offset_s') or 0):.1f} s of the profile its arrivals "
                   f"were sent by {to}. Between its last report and then, its share of the "
                   "offered load is missing from the samples.")
    return out


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}".rstrip("0").rstrip(".")
        return f"{value:.4g}"
    return str(value)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.1%}" if value < 0 else f"{value:.2%}" if value < 0.1 else f"{value:.1%}"


def _evidence(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)[:2000]
    return _fmt(value)


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.ChainableUndefined, trim_blocks=False)
    env.filters.update(fmt=_fmt, pct=_pct, evidence=_evidence, md=_md)
    env.globals["load_model_note"] = load_model_note
    env.globals["takeover_notes"] = takeover_notes
    return env


def waf_summary(verdict: dict[str, Any]) -> dict[str, Any] | None:
    """The WAF section from the ``waf`` check results (so it shows exactly what was
    judged): attacks blocked/missed per category with the blocking rules, shopper
    requests falsely blocked with the rule, rate rules vs shoppers. None without a waf
    check."""
    checks = [c for c in verdict.get("checks") or [] if c.get("check") == "waf"]
    if not checks:
        return None
    out: dict[str, Any] = {"categories": [], "false_blocks": None, "rate_rules": None,
                           "skipped": []}
    for c in checks:
        ev = c.get("evidence") or {}
        if c.get("verdict") == "skipped":
            out["skipped"].append(f"{c['name']}: {c['reason']}")
        elif "category" in ev:
            rules = ev.get("blocking_rules") or {}
            counted = ev.get("counted_by") or {}
            text = ", ".join(f"{k} ({v})" for k, v in list(rules.items())[:3])
            if counted:
                text += ("; " if text else "") + "counted only: " + ", ".join(
                    f"{k} ({v})" for k, v in list(counted.items())[:2])
            out["categories"].append({
                "category": ev["category"], "requests": ev.get("requests"),
                "blocked": ev.get("blocked"),
                "missed": (ev.get("requests") or 0) - (ev.get("blocked") or 0),
                "rate": c.get("measured"), "threshold": c.get("threshold"),
                "verdict": c["verdict"], "rules": text or "–"})
        elif c["name"] == "waf false blocks":
            rules = ev.get("rules") or {}
            out["false_blocks"] = {
                "requests": ev.get("requests"), "blocked": ev.get("blocked"),
                "rate": c.get("measured"), "threshold": c.get("threshold"),
                "verdict": c["verdict"],
                "rules": ", ".join(f"{k} ({v})" for k, v in rules.items()) or "–",
                "endpoints": ", ".join(f"{k} ({v})" for k, v in
                                       (ev.get("endpoints") or {}).items()) or "–"}
        else:
            out["rate_rules"] = {"verdict": c["verdict"], "reason": c["reason"]}
    return out


def html(verdict: dict[str, Any], images: dict[str, bytes]) -> str:
    """One self-contained page: every figure embedded as base64 PNG, no script, no link."""
    encoded = {name: base64.b64encode(data).decode("ascii") for name, data in images.items()}
    return _env().get_template("report.html.j2").render(v=verdict, images=encoded,
                                                        waf=waf_summary(verdict))


def summary_md(verdict: dict[str, Any]) -> str:
    """Fits a CI step summary or a PR comment: failures first, long lists cut."""
    order = {"fail": 0, "inconclusive": 1, "pass": 2, "skipped": 3}
    ordered = sorted(verdict["checks"], key=lambda c: order.get(c["verdict"], 4))
    rows = ordered[:SUMMARY_ROWS]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                             undefined=jinja2.ChainableUndefined)
    env.filters.update(fmt=_fmt, pct=_pct, md=_md)
    env.globals["load_model_note"] = load_model_note
    env.globals["takeover_notes"] = takeover_notes
    return env.get_template("summary.md.j2").render(
        v=verdict, rows=rows, hidden=len(ordered) - len(rows), icon=ICONS,
        waf=waf_summary(verdict), failed=[c for c in verdict["checks"] if c["verdict"] == "fail"])


def junit_xml(verdict: dict[str, Any]) -> str:
    """One test case per check: fail -> <failure>, skipped -> <skipped>, with evidence."""
    checks = verdict["checks"]
    suite = ET.Element("testsuite", {
        "name": f"peakready {verdict.get('plan_name') or verdict['run_id']}",
        "tests": str(len(checks)),
        "failures": str(sum(c["verdict"] == "fail" for c in checks)),
        "errors": "0", "skipped": str(sum(c["verdict"] == "skipped" for c in checks)),
        "time": f"{verdict.get('duration_s') or 0:.1f}", "timestamp": verdict.get("started", "")})
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "status", "verdict", "exit_code"):
        ET.SubElement(props, "property", {"name": key, "value": str(verdict.get(key))})
    for c in checks:
        case = ET.SubElement(suite, "testcase", {"classname": f"peakready.{c['check']}",
                                                 "name": c["name"], "time": "0"})
        details = json.dumps({k: c[k] for k in ("measured", "threshold", "unit", "window",
                                                "evidence", "figure")}, default=str, indent=1)
        if c["verdict"] == "fail":
            failure = ET.SubElement(case, "failure", {"message": c["reason"], "type": c["check"]})
            failure.text = details
        elif c["verdict"] == "skipped":
            ET.SubElement(case, "skipped", {"message": c["reason"]})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{c['verdict']}: {c['reason']}\n{details}"
    if verdict.get("problems"):
        err = ET.SubElement(suite, "system-err")
        err.text = "incomplete run: " + "; ".join(verdict["problems"])
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode")
