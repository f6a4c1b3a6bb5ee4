"""The ``search`` check's arithmetic: reset-aware cumulative counters, what counts as a
rejection or a partial result, and plan validation naming the field."""

from __future__ import annotations

import pandas as pd

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
