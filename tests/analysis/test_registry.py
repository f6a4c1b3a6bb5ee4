"""The check registry: a kind declared in one place (here, a test module) is validated,
evaluated after the kinds it needs, and written to verdict.json and junit.xml, with no
other module edited."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from analysis import analyze
from analysis.checks import REGISTRY, CheckKind, CheckResult, evaluate, fields, validate
from analysis.checks.registry import Registry

SEEN: list[list[str]] = []


def _validate(errors: list[str], where: str, value: object) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"max_worst_p95_ms"})
        fields.number(errors, where, value, "max_worst_p95_ms", lo=0, lo_open=True)


def _evaluate(ctx, cfg, done):
    """The worst phase p95 the latency kind measured: proves latency ran first."""
    SEEN.append(sorted(done))
    worst = max(r.measured for r in done["latency"] if r.measured is not None)
    verdict = "pass" if worst <= cfg["max_worst_p95_ms"] else "fail"
    return [CheckResult("worst phase p95", "worst_p95", verdict,
                        f"worst phase p95 {worst:.0f} ms", measured=worst,
                        threshold=cfg["max_worst_p95_ms"], unit="ms")]


# order=1 would put it first; needs=("latency",) must win over the order number
WORST = CheckKind("worst_p95", _validate, _evaluate, needs=("latency",), order=1)
LATENCY = [{"endpoint": "*", "phase": "*", "percentile": 95, "max_ms": 5000}]


def test_a_kind_from_one_module_is_validated_evaluated_in_order_and_reported(make_run):
    with REGISTRY.registered(WORST):
        assert validate({"worst_p95": {"max_worst_p95_ms": -1}}) == [
            "checks.worst_p95.max_worst_p95_ms: must be a number > 0"]
        run = make_run(checks={"latency": LATENCY, "worst_p95": {"max_worst_p95_ms": 1}})
        SEEN.clear()
        verdict = analyze(run)
        assert SEEN == [["latency"]]
        names = [c["name"] for c in verdict["checks"]]
        assert names.index("worst phase p95") > max(
            i for i, n in enumerate(names) if n.startswith("latency"))
        written = json.loads((run / "verdict.json").read_text())
        mine = next(c for c in written["checks"] if c["check"] == "worst_p95")
        assert mine["verdict"] == "fail" and mine["threshold_text"] == "<= 1 ms"
        assert verdict["exit_code"] == 1
        cases = ET.parse(run / "junit.xml").getroot().iter("testcase")
        case = next(c for c in cases if c.get("name") == "worst phase p95")
        assert case.find("failure") is not None
    assert "worst_p95" not in REGISTRY
    assert validate({"worst_p95": {}})[0].startswith("checks: unknown field(s) worst_p95")


def test_needs_are_evaluated_first_and_not_declared_kinds_are_not(make_run):
    from analysis import load_run
    from analysis.checks import context

    with REGISTRY.registered(WORST):
        SEEN.clear()
        ctx = context(load_run(make_run(checks={"latency": LATENCY})))
        results = evaluate(ctx, {"latency": LATENCY})
        assert SEEN == [] and all(r.check != "worst_p95" for r in results)


def test_unknown_needs_and_cycles_are_programming_errors():
    reg = Registry()
    reg.register(CheckKind("a", None, _evaluate, needs=("b",)))
    with pytest.raises(ValueError, match="needs unknown kind"):
        reg.ordered()
    reg.register(CheckKind("b", None, _evaluate, needs=("a",)))
    with pytest.raises(ValueError, match="cycle"):
        reg.ordered()
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(CheckKind("a", None, _evaluate))


def test_a_result_verdict_must_be_one_of_the_four():
    with pytest.raises(ValueError, match="verdict 'ok'"):
        CheckResult("x", "x", "ok", "")
