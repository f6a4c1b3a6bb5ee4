"""Baseline regression: a planted +30% shift is found; equal runs raise no false alarm."""

from __future__ import annotations

import pytest

from analysis import load_run, regression
from analysis.checks.regression import as_check
from peakready.cli import main


def test_planted_30_percent_shift_is_a_regression_with_interval_above_zero(make_run):
    base = load_run(make_run("base", seed=1))
    slow = load_run(make_run("slow", seed=2, latency_factor=1.3))
    result = regression.compare(base, slow)
    assert result["verdict"] == "regression"
    items = {(i["endpoint"], i["metric"]): i for i in result["items"]}
    for metric in ("p50", "p95", "p99"):
        item = items[("*", metric)]
        assert item["verdict"] == "regression"
        assert item["ci_low"] > 0.10 and item["ci_low"] < 0.30 < item["ci_high"]
    assert 0.2 < items[("*", "p50")]["hl_shift"] < 0.4  # Hodges-Lehmann agrees
    assert items[("*", "error_rate")]["verdict"] == "pass"


def test_a_shift_below_the_margin_is_not_a_regression(make_run):
    base = load_run(make_run("base", seed=1))
    run = load_run(make_run("run", seed=2, latency_factor=1.04))
    assert regression.compare(base, run, {"margin": 0.10})["verdict"] != "regression"


@pytest.mark.slow  # 40 runs compared twice: ~30 s of CPU, so not in make test-quick
def test_false_alarm_rate_over_seeds(make_run):
    """Same distribution, different seeds (fixed, so the test is deterministic). The stated
    rate is 1 - confidence = 2% family-wise (Holm over 28 endpoint x metric tests). With
    the default +10% margin no comparison may alarm; with margin 0 (pure significance)
    at most 1 of 20, i.e. 5%, the resolution 20 comparisons allow."""
    flat = [(0, 60), (80, 60)]
    alarms_margin0 = alarms_margin10 = 0
    for seed in range(20):
        a = load_run(make_run(f"a{seed}", seed=100 + seed, profile=flat, phases=None))
        b = load_run(make_run(f"b{seed}", seed=200 + seed, profile=flat, phases=None))
        alarms_margin0 += regression.compare(a, b, {"margin": 0.0, "error_margin": 0.0},
                                             seed=seed)["verdict"] == "regression"
        alarms_margin10 += regression.compare(a, b, seed=seed)["verdict"] == "regression"
    assert alarms_margin10 == 0
    assert alarms_margin0 <= 1


def test_error_rate_regression(make_run):
    base = load_run(make_run("base", seed=1))
    bad = load_run(make_run("bad", seed=2, error_rate=0.05))
    result = regression.compare(base, bad)
    star = next(i for i in result["items"] if i["endpoint"] == "*" and i["metric"] == "error_rate")
    assert star["verdict"] == "regression" and star["ci_low"] > 0.03


def test_holm_adjustment():
    assert regression.holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]


def test_compare_cli_exit_codes(make_run, tmp_path, capsys):
    base, same = make_run("base", seed=1), make_run("same", seed=2)
    slow = make_run("slow", seed=3, latency_factor=1.3)
    assert main(["compare", str(base), str(same)]) == 0
    assert main(["compare", str(base), str(slow)]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert (slow / "compare.json").exists()
    assert main(["compare", str(tmp_path), str(slow)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_a_baseline_that_is_not_comparable_is_inconclusive_with_the_reason(make_run, capsys):
    run = make_run("run", seed=2)
    other_plan = load_run(make_run("other", seed=1, plan_name="black-friday"))
    other_profile = load_run(make_run("prof", seed=1, profile=[(0, 60), (80, 60)], phases=None))
    aborted = load_run(make_run("aborted", seed=1, status="aborted"))
    cases = [(other_plan, "plan differs"), (other_profile, "load profile differs"),
             (aborted, "'aborted'")]
    for base, why in cases:
        result = regression.compare(base, load_run(run))
        assert result["verdict"] == "inconclusive"
        assert any(why in r for r in result["not_comparable"])
        assert why in as_check(result)["reason"]
    assert regression.compare(load_run(make_run("same", seed=1)),
                              load_run(run))["not_comparable"] == []
    assert main(["compare", str(other_plan.run_dir), str(run)]) == 0
    out = capsys.readouterr().out.splitlines()[0]
    assert out.startswith("INCONCLUSIVE") and "plan differs ('black-friday'" in out
