"""`peakready run` with the API-log pipeline check, as a user runs it (the CLI in a
subprocess, its own sandbox): the storefront ignores FailedPutCount (retries off) and the
stream's quota is below the load, so the check fails naming the buckets and the
ThrottledRecords Firehose published, from evidence collected through Athena."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.spawns
def test_retries_off_under_a_low_quota_fails_completeness_naming_buckets(tmp_path, run_tmp):
    profile = tmp_path / "flat.csv"
    profile.write_text("t_s,rps\n0,25\n16,25\n")
    plan = {
        "name": "logpipe-throttled",
        "target": {"kind": "sandbox", "alarms": [],
                   "allow": {"account_ids": ["123456789012"], "resources": []}},
        "load": {"locustfile": "scenarios/storefront.py", "profile": str(profile),
                 "speed": 1.0, "workers": 1, "max_users": 100},
        "phases": [{"name": "steady", "start_s": 0, "end_s": 16}],
        "checks": {"log_pipeline": {"min_completeness": 0.999, "max_freshness_s": 30,
                                    "bucket_s": 5, "wait_s": 20}},
    }
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
    reports = tmp_path / "reports"
    env = {**os.environ, "TMPDIR": str(run_tmp),
           "PEAKREADY_STOREFRONT": json.dumps({"api_logs": {"retries": False}}),
           "PEAKREADY_FIREHOSE_QUOTA": json.dumps({"records_per_s": 10}),
           "PEAKREADY_TIMING": json.dumps({"boot_delay_s": 1})}
    log = tmp_path / "out.txt"
    with open(log, "wb") as out:
        rc = subprocess.run([sys.executable, "-m", "peakready.cli", "run", "--plain",
                             str(plan_path), "--reports-dir", str(reports)], cwd=REPO, env=env,
                            stdout=out, stderr=subprocess.STDOUT, timeout=240).returncode
    text = log.read_text()
    assert rc == 1, text
    run_dir = next(p for p in reports.iterdir() if (p / "verdict.json").exists())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    result = next(c for c in verdict["checks"] if c["name"] == "api logs: completeness")
    assert result["verdict"] == "fail", result
    assert "ThrottledRecords" in result["reason"] and "+0-5 s" in result["reason"]
    evidence = result["evidence"]
    assert evidence["throttled_records"] > 0 and evidence["missing"] > 0
    # what landed is exactly what the stream accepted: the ids Athena found are ids the
    # load sent, and the samples carry the id the storefront logged
    landed = pd.read_parquet(run_dir / "api_logs" / "landed.parquet")
    samples = pd.concat(pd.read_parquet(p) for p in (run_dir / "samples").glob("*.parquet"))
    assert samples["request_id"].str.fullmatch(r"[0-9a-f]{32}").all()
    from_load = set(landed["request_id"]) - {""}  # "": the run's own order look-ups
    assert from_load and from_load <= set(samples["request_id"])
    assert 0 < evidence["found"] < evidence["expected"]
    assert (run_dir / "figures" / "api-logs.png").stat().st_size > 1000
