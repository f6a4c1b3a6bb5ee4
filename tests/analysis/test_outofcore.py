"""The out-of-core path (DuckDB over the shards) gives the in-memory path's numbers: the same
checks on the same generated run folder, evaluated both ways, agree result by result."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import checks, load_run, phases, regression, stats
from analysis.load import choose_engine
from analysis.samplestore import TIMELINE_REL_ERROR
from analysis.synthetic import Fault

PLAN = {
    "latency": [{"endpoint": "*", "phase": "*", "percentile": 95, "max_ms": 100},
                {"endpoint": "each", "phase": "peak", "percentile": 99, "max_ms": 400},
                {"endpoint": "*", "phase": "peak", "percentile": 50, "max_ms": 300,
                 "corrected": True}],
    "error_rate": [{"endpoint": "each", "phase": "*", "max": 0.02}],
    "recovery": {"window_s": 2, "windows": 3, "max_s": 30, "p95_ms": 300, "error_rate": 0.05},
    "error_budget": {"slo": 0.995, "period_days": 30, "max_burn_rate": 14.4},
    "integrity": {"orders": True, "sessions": True},
}


def both(run_dir, baseline=None):
    out = {}
    for engine in ("memory", "duckdb"):
        run = load_run(run_dir, engine=engine)
        base = load_run(baseline, engine=engine) if baseline else None
        out[engine] = (run, checks.context(run, base))
    return out


def assert_same(a, b):
    """Equal values; floats to 1e-9 relative (numpy's and DuckDB's interpolation)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-9)
    else:
        assert a == b


@pytest.fixture
def run_dir(make_run):
    return make_run(seed=5, error_rate=0.01, lag=[(70, 90, 200.0)], logins=50,
                    faults=[Fault("kill-db", "db", 80, 84), Fault("cache", "cache", 120, 125,
                                                                   outage=False)],
                    session_loss_users=10, lost_orders=2, checks=PLAN)


def test_checks_and_table_are_the_same_in_memory_and_out_of_core(run_dir):
    got = both(run_dir)
    (mem, mctx), (duck, dctx) = got["memory"], got["duckdb"]
    assert duck.sample_frame is None and duck.store.engine == "duckdb"
    assert duck.requests == mem.requests and (duck.t0, duck.t_end) == (mem.t0, mem.t_end)
    mres = [r.to_dict() for r in checks.evaluate(mctx, PLAN)]
    dres = [r.to_dict() for r in checks.evaluate(dctx, PLAN)]
    assert [r["verdict"] for r in mres] == [r["verdict"] for r in dres]
    assert {r["verdict"] for r in mres} >= {"pass", "fail"}  # the plan exercises both
    assert_same(mres, dres)
    assert duck.sample_frame is None  # no check read the raw samples
    windows = phases.windows(mem, mctx.phases, mctx.faults)
    mt = stats.per_window(mem.store, windows, mem.t0, mctx.profile)
    dt = stats.per_window(duck.store, windows, duck.t0, dctx.profile)
    assert_same(checks.clean(mt.to_dict("records")), checks.clean(dt.to_dict("records")))


def test_timeline_percentiles_out_of_core_are_within_the_stated_bound(run_dir):
    mem, duck = (load_run(run_dir, engine=e) for e in ("memory", "duckdb"))
    exact = stats.timeseries(mem.store, mem.t0, 10.0, None, mem.duration_s)
    approx = stats.timeseries(duck.store, duck.t0, 10.0, None, duck.duration_s)
    for col in ("requests", "rps", "ok_rps", "scheduled_rps", "error_rate"):
        np.testing.assert_allclose(approx[col], exact[col], rtol=1e-12)
    for col in ("p50_ms", "p95_ms", "p99_ms", "p95_corrected_ms"):
        rel = (approx[col] - exact[col]).abs() / exact[col]
        assert rel.max() <= TIMELINE_REL_ERROR + 1e-9, col


def test_regression_out_of_core_matches_in_memory(make_run):
    base = make_run("base", seed=1)
    slow = make_run("slow", seed=2, latency_factor=1.3)
    got = both(slow, base)
    mem = regression.compare(got["memory"][1].baseline, got["memory"][0])
    duck = regression.compare(got["duckdb"][1].baseline, got["duckdb"][0])
    assert mem["verdict"] == duck["verdict"] == "regression"
    assert_same(checks.clean(mem["items"]), checks.clean(duck["items"]))


def test_engine_is_chosen_by_size_or_forced(run_dir, monkeypatch):
    assert choose_engine(run_dir / "samples") == "memory"
    monkeypatch.setattr("analysis.load.OUT_OF_CORE_ROWS", 1000)
    assert choose_engine(run_dir / "samples") == "duckdb"
    monkeypatch.setenv("PEAKREADY_ANALYSIS_ENGINE", "memory")
    assert choose_engine(run_dir / "samples") == "memory"
    with pytest.raises(ValueError):
        choose_engine(run_dir / "samples", "polars")


def test_waf_and_search_count_the_same_answers_out_of_core(run_dir):
    """403s (a WAF block), 429s and partial results of search counted from the store's
    per-status tallies, in memory and out of core alike, without reading the samples."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for shard in sorted((run_dir / "samples").glob("*.parquet")):
        frame = pq.read_table(shard).to_pandas()
        i = np.arange(len(frame))
        search = (frame["name"] == "/api/search").to_numpy()
        blocked = i % 61 == 0
        rejected = search & (i % 7 == 1)
        partial = search & (i % 11 == 2) & ~rejected
        frame.loc[blocked, ["status", "ok", "error"]] = [403, False, "HTTPError 403"]
        frame.loc[rejected, ["status", "ok", "error"]] = [
            429, False, "search rejected: HTTP 429 es_rejected_execution_exception"]
        frame.loc[partial, "error"] = "partial search results: 1/3 shards failed"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), shard)
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "waf-log.jsonl").write_text("")  # a WAF was there, no record kept
    plan = {"waf": {"max_false_block_rate": 0.05},
            "search": {"max_rejected": 0.05, "max_partial": 0.2}}
    got = both(run_dir)
    res = {e: [r.to_dict() for r in checks.evaluate(ctx, plan)] for e, (_, ctx) in got.items()}
    assert_same(res["memory"], res["duckdb"])
    assert got["duckdb"][0].sample_frame is None
    by_name = {r["name"]: r for r in res["duckdb"]}
    blocks = by_name["waf false blocks"]["evidence"]
    assert blocks["blocked"] > 0 and blocks["requests"] == got["memory"][0].requests
    rejected = [r for r in res["duckdb"] if r["name"].startswith("search rejected")]
    assert rejected and all(r["verdict"] == "fail" for r in rejected)  # 1 in 7 > 5%
    assert all(r["evidence"]["rejected"] > 0 for r in rejected)


def test_one_pass_windows_equal_the_in_memory_ones_however_they_overlap(run_dir):
    """The two-pass answer (analysis/windowpass.py) for many windows at once: overlapping,
    empty, outside the run, one sample wide at a percentile's edge (q 0 and 1), with
    schedule lag (corrected percentiles), and recovery grids that do not align."""
    mem, duck = (load_run(run_dir, engine=e) for e in ("memory", "duckdb"))
    t0 = mem.t0
    spans = [(0, 200), (10, 95.5), (70, 90), (80, 84), (84, 84), (150, 150.001), (300, 400),
             (-50, 5), (89.99, 120)]
    qs = [0.0, 0.5, 0.95, 0.99, 0.999, 1.0]
    grids = [(np.arange(80.0, 200.0, 2.0), 2.0, 0.95), (np.arange(83.3, 130.0, 5.0), 5.0, 0.5),
             (np.arange(500.0, 510.0, 2.0), 2.0, 0.95)]
    duck.store.prefetch([(t0 + a, t0 + b) for a, b in spans], qs,
                        [(t0 + s, w, q) for s, w, q in grids])
    assert len(duck.store._windows) == len(spans) and len(duck.store._grids) == len(grids)
    for a, b in spans:
        want = mem.store.window(t0 + a, t0 + b, qs).sort_index()
        got = duck.store.window(t0 + a, t0 + b, qs)
        assert list(got.index) == list(want.index), (a, b)
        assert_same(checks.clean(got[want.columns].to_dict("index")),
                    checks.clean(want.to_dict("index")))
    for starts, width, q in grids:
        want = mem.store.slo_bins(t0, starts, width, q)
        got = duck.store.slo_bins(t0, starts, width, q)
        assert_same(checks.clean(got.to_dict("list")), checks.clean(want.to_dict("list")))
