"""The ``search`` check's arithmetic: reset-aware cumulative counters, what counts as a
rejection or a partial result, and plan validation naming the field."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import checks
from analysis.checks import validate
from analysis.checks.search import counter_increase, partial_mask, rejected_mask


def test_cumulative_rejections_survive_a_node_restart():
    # 5 -> 9 (+4), node restarts: counter starts again at 0 and reaches 3 (+3), then +2
    assert counter_increase([5, 9, 3, 5]) == 9
    assert counter_increase([7]) == 0


def test_rejections_and_partial_results_are_told_apart():
    part = pd.DataFrame({
        "status": [200, 429, 200, 503, 200],
        "error": ["", "search rejected: HTTP 429 es_rejected_execution_exception",
                  "partial search results: 1/3 shards failed", "HTTPError 503", ""]})
    assert rejected_mask(part).tolist() == [False, True, False, False, False]
    assert partial_mask(part).tolist() == [False, False, True, False, False]


def test_plan_validation_names_the_field():
    assert validate({"search": {"max_rejected": 2}}) == [
        "checks.search.max_rejected: must be a number >= 0 and <= 1"]
    assert any("at least one of" in e for e in validate({"search": {"phase": "peak"}}))
    assert validate({"search": {"max_rejected": 0.01, "green_within_s": 30}}) == []


def test_a_yellow_period_straddling_the_next_fault_is_that_fault_s(tmp_path):
    """ClusterStatus.green datapoints are stamped at their period's start: the one that
    begins just before a node reboot and holds its yellow belongs to the reboot (judged
    there, never a silent "stayed green"), not to the failover that started before it."""
    from analysis.checks.context import context
    from analysis.load import load_run
    from analysis.synthetic import Fault, Spec, write_run

    spec = Spec(faults=[Fault("aurora-failover", "db", 40.0, 42.0, outage=False),
                        Fault("search-node-reboot", "db", 48.6, 53.0, outage=False)])
    run_dir = write_run(tmp_path / "run", spec)
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    green = pd.DataFrame([{"ts": spec.t0 + t, "source": "cloudwatch", "namespace": "AWS/ES",
                           "metric": "ClusterStatus.green",
                           "dimensions": "ClientId=123456789012,DomainName=peakready-search",
                           "stat": "Maximum", "period_s": 5, "value": 0.0 if t == 45 else 1.0}
                          for t in range(0, 90, 5)])
    pd.concat([metrics, green]).to_parquet(run_dir / "metrics.parquet", index=False)
    results = {r.name: r for r in checks.REGISTRY["search"].evaluate(
        context(load_run(run_dir)), {"green_within_s": 30}, {})}
    assert "search green after aurora-failover" not in results  # never left green in its own
    reboot = results["search green after search-node-reboot"]
    assert reboot.verdict == "pass" and reboot.evidence["not_green_from_s"] == 45.0
    assert reboot.measured == pytest.approx(1.4)  # green again from 50 s
