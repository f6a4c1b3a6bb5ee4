"""``peakready collect RUN_DIR`` on an aws run folder, against a real moto server reached
through the ordinary boto3 credential chain (env), through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from peakready import runfolder
from peakready.chaos.runner import start_experiment
from peakready.collect import SourceFailure
from peakready.collect.events import event, to_frame
from peakready.collect.recollect import failed_sources, merge_events

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = {
    "version": "1.0.0", "title": "a short fault", "description": "sleeps as its fault",
    "method": [{"type": "action", "name": "fault",
                "provider": {"type": "process", "path": sys.executable,
                             "arguments": "-c 'import time; time.sleep(0.5)'"}}],
}


def _cli(run_dir: Path, aws: dict, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=aws["endpoint_url"], AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_MAX_ATTEMPTS="1",
               AWS_CONFIG_FILE=str(run_dir / "none"), AWS_SHARED_CREDENTIALS_FILE=str(
                   run_dir / "none"), AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run([sys.executable, "-m", "peakready.cli", "collect", str(run_dir),
                           *extra], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)


@pytest.fixture
def aws_run(shop, tmp_path):
    """An aws run folder as `peakready run` leaves it after an abort: run.json, plan.yaml,
    a real chaos journal, and a first collection made before CloudWatch caught up."""
    run_dir = runfolder.create(tmp_path / "reports", label="aws")
    experiment = tmp_path / "short.json"
    experiment.write_text(json.dumps(EXPERIMENT))
    now = time.time()
    t0 = (int(now) // 60) * 60 - 180  # the load started three minutes ago
    launched = time.time()
    proc = start_experiment(experiment, run_dir / "chaos" / "kill.journal.json",
                            run_dir / "logs" / "chaos-kill.log")
    assert proc.wait(60) is not None
    runfolder.update_run_json(
        run_dir, status="aborted", abort_reason="alarm peakready-web-5xx in ALARM",
        load_started_at=t0, ended_at=t0 + 100,
        target={"kind": "aws", "region": "eu-central-1", "storefront_url": "https://shop.example",
                "resources": shop["resources"]},
        faults=[{"name": "kill", "experiment": str(experiment), "launched_at": launched,
                 "ended_at": time.time(), "returncode": proc.returncode,
                 "interrupted": False, "journal": str(proc.journal_path)}],
        collect={"metrics_rows": 1, "warnings": []})
    (run_dir / "plan.yaml").write_text(yaml.safe_dump({
        "name": "aws", "target": {"kind": "aws", "region": "eu-central-1",
                                  "resources": shop["resources"], "alarms": []},
        "phases": [{"name": "peak", "start_s": 0, "end_s": 60}],
        "stop_conditions": {"alarms": ["peakready-web-5xx"]}}))
    # the first collection: the run's own events, a stale fault row, an orphan fault row
    first = [event(t0, "peakready", "phase", "peak", start=t0, end=t0 + 60),
             event(t0 + 90, "peakready", "abort", run_dir.name, reason="alarm"),
             event(t0 + 1, "chaos", "fault_start", "kill", stale=True),
             event(t0 + 2, "chaos", "fault_start", "vanished", journal=None),
             event(t0 + 3, "chaos", "fault_end", "vanished", journal=None)]
    to_frame(first).to_parquet(run_dir / "events.parquet", index=False)
    pd.DataFrame({"ts": [float(t0)], "source": ["cloudwatch"], "namespace": ["AWS/ApplicationELB"],
                  "metric": ["RequestCount"], "dimensions": ["stale"], "stat": ["Sum"],
                  "period_s": [60], "value": [1.0]}).to_parquet(run_dir / "metrics.parquet")
    # CloudWatch caught up since: the ALB's request counts over the load
    shop["client"]("cloudwatch").put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[
        {"MetricName": "RequestCount", "Value": 600.0 + i,
         "Dimensions": [{"Name": "LoadBalancer", "Value": shop["lb_dim"]}],
         "Timestamp": datetime.fromtimestamp(t0 + 60 * i + 5, UTC)} for i in range(2)])
    return {"run_dir": run_dir, "t0": t0, "launched": launched, "aws": shop["aws"],
            "lb_dim": shop["lb_dim"]}


def test_collect_replaces_metrics_and_events_keeping_the_runs_own(aws_run):
    run_dir = aws_run["run_dir"]
    proc = _cli(run_dir, aws_run["aws"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"next: peakready analyze {run_dir}" in proc.stdout

    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    requests = metrics.query("metric == 'RequestCount' and stat == 'Sum'")
    assert "stale" not in set(metrics["dimensions"])
    assert set(requests["dimensions"]) == {f"LoadBalancer={aws_run['lb_dim']}"}
    assert requests["value"].sum() == 600.0 + 601.0  # zero-filled elsewhere
    assert set(requests["period_s"]) == {60}

    events = pd.read_parquet(run_dir / "events.parquet")
    kinds = events.groupby(["kind", "resource"]).size().to_dict()
    assert kinds[("phase", "peak")] == 1 and kinds[("abort", run_dir.name)] == 1
    kill = events.query("resource == 'kill'").set_index("kind")
    assert len(kill) == 2  # rebuilt from the journal, the stale row is gone
    assert kill.loc["fault_start", "ts"] >= aws_run["launched"]
    assert json.loads(kill.loc["fault_start", "detail"])["status"] == "completed"
    assert len(events.query("resource == 'vanished'")) == 2  # no journal: kept as it was

    run = runfolder.read_run_json(run_dir)
    assert run["collect"]["metrics_rows"] == len(metrics)
    assert run["collect"]["events_by_kind"]["fault_start"] == 2
    assert run["collect_previous"] == {"metrics_rows": 1, "warnings": []}
    assert run["collect"]["window"]["start"] == aws_run["t0"] - 60
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]  # no half file


def test_collect_twice_gives_the_same_folder(aws_run):
    run_dir = aws_run["run_dir"]
    assert _cli(run_dir, aws_run["aws"], "--json").returncode == 0
    first = pd.read_parquet(run_dir / "events.parquet")
    proc = _cli(run_dir, aws_run["aws"], "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    again = pd.read_parquet(run_dir / "events.parquet")
    assert summary["events_rows"] == len(first) == len(again)
    pd.testing.assert_frame_equal(first.drop(columns="detail"), again.drop(columns="detail"))


def test_not_a_run_folder_and_missing_credentials_exit_2(aws_run, tmp_path):
    proc = _cli(tmp_path, aws_run["aws"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"peakready: error: {tmp_path}: not a run "
                                                "folder (no run.json)"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), HOME=str(tmp_path))
    before = (aws_run["run_dir"] / "events.parquet").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "peakready.cli", "collect",
                           str(aws_run["run_dir"])], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "no AWS credentials found" in line
    assert (aws_run["run_dir"] / "events.parquet").read_bytes() == before


def test_a_source_that_fails_keeps_its_previous_events():
    old = to_frame([event(10, "autoscaling", "instance_launch", "i-1"),
                    event(12, "rds", "db_failover_start", "db")])
    new = to_frame([event(12, "rds", "db_failover_start", "db"),
                    event(13, "rds", "db_failover_end", "db")])
    failed = failed_sources([
        SourceFailure("autoscaling", runfolder.EVENTS, "autoscaling describe_scaling_activities "
                      "web", "Throttling"),
        SourceFailure("cloudwatch", runfolder.METRICS, "cloudwatch metrics", "boom"),
        SourceFailure("chaos", runfolder.EVENTS, "chaos journals", "torn")])
    assert failed == {"autoscaling"}
    merged = merge_events(new, old, failed)
    assert merged[["ts", "kind"]].values.tolist() == [[10.0, "instance_launch"],
                                                      [12.0, "db_failover_start"],
                                                      [13.0, "db_failover_end"]]
    assert merge_events(new, old, set()) is new
