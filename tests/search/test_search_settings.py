"""Search settings from the plan (checked at load, naming the field) and the platform
without a tantivy wheel: the sandbox says what happens and the search check is skipped
with the reason, never passed."""

from __future__ import annotations

import sys

import pytest

from analysis import synthetic
from analysis.checks import search as search_check
from analysis.checks.context import context as make_context
from analysis.load import load_run
from peakready import runfolder
from peakready.errors import BadInput
from peakready.plan import parse_plan
from peakready.sandbox.search.availability import engine_missing


def _plan(search: dict) -> dict:
    return {"name": "p", "target": {"kind": "sandbox", "sandbox": {"search": search}},
            "load": {"profile": "scenarios/profiles/demo.csv"}}


def test_plan_search_settings_are_validated_naming_the_field():
    plan = parse_plan(_plan({"queue_size": 5, "query_cost_ms": 20}))
    assert plan.target["sandbox"]["search"] == {"queue_size": 5, "query_cost_ms": 20}
    for bad, field in (({"queue_size": -1}, "queue_size"), ({"threads": 4}, "threads"),
                       ({"nodes": 2, "replicas": 2}, "replicas"), ({"shards": 1.5}, "shards")):
        with pytest.raises(BadInput) as err:
            parse_plan(_plan(bad))
        assert f"target.sandbox.search.{field}:" in str(err.value), err.value
    with pytest.raises(BadInput, match="target.sandbox.disk"):
        parse_plan({**_plan({}), "target": {"kind": "sandbox", "sandbox": {"disk": 1}}})


def test_without_tantivy_the_notice_says_the_sandbox_starts_without_search(monkeypatch):
    assert engine_missing() is None  # here the wheel exists
    monkeypatch.setitem(sys.modules, "tantivy", None)  # what an import finds without it
    notice = engine_missing()
    assert notice is not None and "\n" not in notice
    assert "without its search domain" in notice and "skipped" in notice


def test_search_check_is_skipped_when_the_target_had_no_search_tier(tmp_path):
    run_dir = synthetic.write_run(tmp_path / "run")
    cfg = {"phase": "*", "max_rejected": 0.01, "green_within_s": 30}
    ctx = make_context(load_run(run_dir))
    assert all(r.verdict != "skipped" for r in search_check.evaluate(ctx, cfg, {}))
    runfolder.update_run_json(run_dir, target={"kind": "sandbox", "unavailable": {
        "search": "no tantivy for this platform (linux/riscv64)"}})
    (result,) = search_check.evaluate(make_context(load_run(run_dir)), cfg, {})
    assert result.verdict == "skipped" and "riscv64" in result.reason
