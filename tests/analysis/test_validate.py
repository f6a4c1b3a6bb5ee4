"""Plan validation of ``checks`` and ``phases``: every error names its field."""

from __future__ import annotations

from analysis import checks, phases


def test_the_plan_schema_example_is_valid():
    example = {
        "latency": [{"endpoint": "*", "phase": "*", "percentile": 95, "max_ms": 800},
                    {"endpoint": "POST /api/checkout", "phase": "peak", "percentile": 99,
                     "max_ms": 2000}],
        "error_rate": [{"endpoint": "*", "phase": "*", "max": 0.02}],
        "recovery": {"window_s": 5, "windows": 3, "max_s": 60, "p95_ms": 800, "error_rate": 0.02},
        "scale_out": {"max_lag_s": 90},
        "error_budget": {"slo": 0.995, "period_days": 30, "max_burn_rate": 14.4},
        "time_to_detect": {"max_s": 60},
        "integrity": {"orders": True, "sessions": True},
        "capacity": {"p95_ms": 800, "error_rate": 0.01},
        "regression": {"margin": 0.10, "confidence": 0.98,
                       "metrics": ["p50", "p95", "p99", "error_rate"]},
    }
    assert checks.validate(example) == []
    assert checks.validate(None) == []


def test_check_errors_name_the_field():
    errors = checks.validate({
        "latency": [{"endpoint": "*", "percentile": 120, "max_ms": "fast"}],
        "error_rate": {"max": 0.1},
        "recovery": {"window_s": 0, "windows": 2.5, "max_s": 60, "p95_ms": 800,
                     "error_rate": 0.02},
        "error_budget": {"slo": 1.0, "period_days": 30},
        "integrity": {"sessions": "yes"},
        "regression": {"metrics": ["p42"]},
        "latncy": [],
    })
    expected = [
        "checks: unknown field(s) latncy",
        "checks.latency[0].percentile: must be a number > 0 and <= 100",
        "checks.latency[0].max_ms: must be a number > 0",
        "checks.error_rate: must be a list",
        "checks.recovery.window_s: must be a number > 0",
        "checks.recovery.windows: must be an integer >= 1",
        "checks.error_budget.slo: must be below 1",
        "checks.integrity.sessions: must be true, false or a surviving fraction",
        "checks.regression.metrics: must be a non-empty list",
    ]
    for text in expected:
        assert any(e.startswith(text) for e in errors), (text, errors)


def test_phase_errors_name_the_field():
    errors = phases.validate([{"name": "peak", "start_s": 10, "end_s": 5},
                              {"name": "peak", "start_s": -1, "end_s": 3},
                              {"start_s": 0, "end_s": 1, "colour": "red"}, "x"])
    assert "phases[0].end_s: must be greater than start_s (10)" in errors
    assert "phases[1].name: duplicate phase name 'peak'" in errors
    assert "phases[1].start_s: must be a number >= 0" in errors
    assert "phases[2].name: must be a non-empty string" in errors
    assert "phases[2]: unknown field(s) colour" in errors
    assert "phases[3]: must be a mapping with name, start_s, end_s" in errors
    assert phases.validate([{"name": "warm-up", "start_s": 0, "end_s": 30}]) == []
