"""The ``log_pipeline`` check on run folders as collection writes them: what it says when
every id landed, when a bucket is short (naming it and ThrottledRecords), when delivery
has not caught up, when Athena failed, and what the plan loader rejects."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import checks
from analysis.checks.context import context
from analysis.load import load_run
from peakready import runfolder
from peakready.collect import apilogs
from peakready.load.capture import ShardWriter

T0 = 1_764_230_400.0


@pytest.fixture(autouse=True, params=["memory", "duckdb"])
def engine(request, monkeypatch):
    """Every case both ways: in memory, and out of core (ids joined in DuckDB), as a
    campaign-scale run is analysed."""
    monkeypatch.setenv("PEAKREADY_ANALYSIS_ENGINE", request.param)
    return request.param
CFG = {"min_completeness": 0.999, "max_freshness_s": 20, "bucket_s": 10}


def folder(tmp_path, lost=(), dup=(), caught_up=T0 + 100, failed=None, throttled=None,
             lag=3.0, blocked=(), producer_lag=0.0):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runfolder.write_run_json(run_dir, {"run_id": "r", "status": "completed",
                                       "started_at": T0, "load_started_at": T0,
                                       "ended_at": T0 + 30})
    shards = ShardWriter(run_dir / runfolder.SAMPLES_DIR, "w0")
    landed = []
    for i in range(3000):  # 100 req/s for 30 s
        ts = T0 + i / 100
        status = 502 if i % 500 == 7 else 200  # balancer-made: no storefront record
        status = 403 if i in blocked else status  # the WAF answered: no storefront record
        shards.add((ts, ts, "/", "GET", status, status == 200, 5.0, 10, "", "u", "", f"id{i}"))
        if status == 200 and i not in lost:
            landed.append({"request_id": f"id{i}", "ts": ts, "copies": 2 if i in dup else 1,
                           "landed_ts": ts + lag, "status": status})
    shards.flush()
    out = run_dir / "api_logs"
    out.mkdir()
    pd.DataFrame(landed).to_parquet(out / "landed.parquet")
    rows = [{"ts": T0 + 5 * k, "source": "cloudwatch", "namespace": "AWS/Firehose",
             "metric": "ThrottledRecords", "dimensions": "DeliveryStreamName=s", "stat": "Sum",
             "period_s": 5, "value": float((throttled or {}).get(k, 0))} for k in range(8)]
    rows.append({"ts": T0 + 35, "source": "cloudwatch", "namespace": "AWS/Firehose",
                 "metric": "DeliveryToS3.DataFreshness", "dimensions": "DeliveryStreamName=s",
                 "stat": "Maximum", "period_s": 5, "value": 2.0})
    pd.DataFrame(rows).to_parquet(out / "firehose.parquet")
    queries = {"ids": {"state": "SUCCEEDED", "rows": len(landed)},
               "minutes": {"state": "SUCCEEDED"}}
    if failed:
        queries["ids"] = {"state": "FAILED", "reason": failed}
    (out / "collect.json").write_text(json.dumps({
        "caught_up_to": caught_up, "queries": queries,
        "config": {"producer_lag_s": producer_lag}}))
    return context(load_run(run_dir))


def evaluate(ctx, cfg=CFG):
    return checks.REGISTRY["log_pipeline"].evaluate(ctx, cfg, {})


def test_every_answered_request_landed_passes_and_duplicates_are_counted_apart(tmp_path):
    completeness, freshness = evaluate(folder(tmp_path, dup={10, 11}))
    assert completeness.verdict == "pass", completeness.reason
    assert completeness.evidence["expected"] == 2994  # six 502s made by the balancer
    assert completeness.evidence["duplicates"] == 2
    assert completeness.figure == "figures/api-logs.png"
    assert freshness.verdict == "pass" and freshness.measured == 3.0


def test_requests_the_waf_blocked_are_not_owed_a_record(tmp_path):
    """Without a WAF log the 403s are the WAF's; with one, only its BLOCK records' ids are:
    a 403 the WAF log does not explain is a request the storefront answered."""
    blocked = set(range(100, 160))
    ctx = folder(tmp_path, blocked=blocked)
    completeness = evaluate(ctx)[0]
    assert completeness.verdict == "pass", completeness.reason
    assert completeness.evidence["blocked_at_edge"] == 60
    assert completeness.evidence["blocked_from"] == "status 403"
    waf_log = tmp_path / "run" / "logs" / "sandbox" / "waf-log.jsonl"
    waf_log.parent.mkdir(parents=True)
    waf_log.write_text("".join(json.dumps({"action": "BLOCK", "httpRequest": {"headers": [
        {"name": "X-Request-Id", "value": f"id{i}"}]}}) + "\n" for i in range(100, 130)))
    completeness = evaluate(context(load_run(tmp_path / "run")))[0]
    assert completeness.verdict == "fail"
    assert completeness.evidence["blocked_from"] == "WAF log"
    assert completeness.evidence["missing"] == 30


def test_a_short_bucket_fails_naming_it_and_the_throttled_records(tmp_path):
    ctx = folder(tmp_path, lost=set(range(1010, 1050)), throttled={2: 40})
    completeness = evaluate(ctx)[0]
    assert completeness.verdict == "fail"
    assert "+10-20 s 96.0% (40 missing, ThrottledRecords 40)" in completeness.reason
    assert completeness.evidence["missing"] == 40


def test_buckets_delivery_has_not_caught_up_with_are_inconclusive_never_pass(tmp_path):
    completeness = evaluate(folder(tmp_path, caught_up=T0 + 15))[0]
    assert completeness.verdict == "inconclusive"
    assert "+20-30 s" in completeness.reason and "+10-20 s" in completeness.reason
    assert "peakready collect" in completeness.reason


def test_a_bucket_is_final_only_a_producer_lag_after_its_last_request(tmp_path):
    """DataFreshness speaks for what Firehose has; the storefront still held the last
    requests' records for up to its lag: delivered up to +35 s with a 10 s lag leaves the
    last bucket (requests until +30 s) open, even with records missing from it."""
    ctx = folder(tmp_path, caught_up=T0 + 35, producer_lag=10, lost=set(range(2990, 2999)))
    completeness = evaluate(ctx)[0]
    assert completeness.verdict == "inconclusive", completeness.reason
    assert "(+20-30 s; delivered up to +35 s, less 10 s producer lag)" in completeness.reason
    assert completeness.evidence["producer_lag_s"] == 10


def test_a_failed_athena_query_could_not_be_verified(tmp_path):
    ctx = folder(tmp_path, failed="TABLE_NOT_FOUND: line 1:1: Table 'x' does not exist")
    completeness = evaluate(ctx)[0]
    assert completeness.verdict == "inconclusive"
    assert completeness.reason.startswith("could not be verified: TABLE_NOT_FOUND")


def test_late_records_fail_freshness(tmp_path):
    completeness, freshness = evaluate(folder(tmp_path, lag=45.0))
    assert completeness.verdict == "pass"
    assert freshness.verdict == "fail" and "45.0 s" in freshness.reason


@pytest.mark.parametrize("cfg, message", [
    ({}, "checks.log_pipeline.min_completeness: required"),
    ({"min_completeness": 1.5}, "min_completeness: must be a number >= 0 and <= 1"),
    ({"min_completeness": 0.9, "athena": {"output_location": "bucket/x"}},
     "athena.output_location: must be an s3:// URL"),
    ({"min_completeness": 0.9, "athena": {"catalog": "x"}}, "unknown field(s) catalog"),
])
def test_plan_errors_name_the_field(cfg, message):
    errors = checks.validate({"log_pipeline": cfg})
    assert any(message in e for e in errors), errors


def test_queries_are_the_trino_spelling_with_widened_partitions():
    sql = apilogs.minutes_query("api_logs", T0, T0 + 60)
    assert "datehour BETWEEN '2025/11/27/07' AND '2025/11/27/09'" in sql
    assert "from_iso8601_timestamp(ts)" in sql and "count(DISTINCT request_id)" in sql
