"""One run-folder schema: the real writers and the synthetic generator both produce it, and
the reader names a folder that drifted from it instead of reading it silently."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq

from analysis import load_run, synthetic
from peakready import runfolder
from peakready import runfolder_schema as schema
from peakready.collect import events as ev
from peakready.collect import metrics as mx
from peakready.collect.faults import FaultRecord, fault_rows
from peakready.load.capture import OrderLog, ShardWriter
from peakready.run.engine import phase_events

SPEC = synthetic.Spec(seed=3, shard_rows=5_000, faults=[synthetic.Fault("kill-web", "instance", 70, 80),
                                      synthetic.Fault("db-failover", "db", 100, 106),
                                      synthetic.Fault("cache-drop", "cache", 120, 124)],
                      scaling=[synthetic.Scaling(62, 64, 70, 72)], logins=20)


def _real_events(tmp_path) -> pd.DataFrame:
    """Every event kind, built by the real row builders of collect and the engine."""
    t = 1_764_000_000.0
    rows = ev.scaling_rows([
        {"StartTime": t + 1, "EndTime": t + 3, "AutoScalingGroupName": "web", "ActivityId": "a1",
         "Cause": "alarm", "StatusCode": "Successful",
         "Description": "Launching a new EC2 instance: i-0abc"},
        {"StartTime": t + 4, "AutoScalingGroupName": "web", "ActivityId": "a2", "Cause": "x",
         "StatusCode": "Successful", "Description": "Terminating EC2 instance: i-0def"}],
        t, t + 10)
    rows += ev.rds_rows([{"Date": t + 2, "Message": m, "SourceIdentifier": "db"} for m in
                         ("Started cross AZ failover", "Completed failover", "DB restarted")],
                        t, t + 10, "db")
    rows += ev.cache_rows([{"Date": t + 2, "Message": m, "SourceIdentifier": "sessions"} for m in
                           ("Failover from primary node started", "Failover to replica node "
                            "completed", "Cache node rebooted")], t, t + 10, "sessions", [])
    rows += ev.alarm_rows([{"AlarmName": "a", "Timestamp": t + 3, "HistoryData": json.dumps(
        {"oldState": {"stateValue": "OK"}, "newState": {"stateValue": "ALARM"}})}],
        t, t + 10, lambda name: True)
    rows += fault_rows([FaultRecord("f", "experiments/f.json", str(tmp_path / "none.json"),
                                    t + 1, t + 2)], read_outcome=None)
    rows += phase_events([{"name": "peak", "start_s": 0, "end_s": 5}], t, t + 10)
    rows += [ev.event(t + 9, "peakready", kind, "run", reason="test")
             for kind in ("abort", "interrupt")]
    return ev.to_frame(rows)


def test_the_real_writers_match_the_schema(tmp_path):
    writer = ShardWriter(tmp_path / runfolder.SAMPLES_DIR, "w0")
    writer.add((1.0, 1.0, "/", "GET", 200, True, 12.5, 2048, "", "user-1", "", "a1b2"))
    shard = writer.flush()
    assert schema.sample_drift(pq.read_schema(shard)) == []
    orders = OrderLog(tmp_path / runfolder.ORDERS_DIR, "w0")
    orders.record("o-1", 1.0, "user-1")
    orders.close()
    assert list(json.loads(orders.path.read_text())) == schema.ORDER_FIELDS

    events = _real_events(tmp_path)
    assert set(events["kind"]) == set(schema.EVENT_KINDS)  # every kind has a real writer
    assert list(events.columns) == schema.EVENT_COLUMNS
    assert schema.event_drift(events.to_dict("records")) == []
    assert list(mx.empty_frame().columns) == schema.METRIC_COLUMNS


def test_the_synthetic_generator_matches_the_schema(tmp_path):
    run_dir = synthetic.write_run(tmp_path / "run", SPEC)
    for shard in (run_dir / runfolder.SAMPLES_DIR).glob("*.parquet"):
        assert schema.sample_drift(pq.read_schema(shard)) == []
    events = pd.read_parquet(run_dir / runfolder.EVENTS)
    assert list(events.columns) == schema.EVENT_COLUMNS
    assert schema.event_drift(events.to_dict("records")) == []
    assert list(pd.read_parquet(run_dir / runfolder.METRICS).columns) == schema.METRIC_COLUMNS
    integrity = pd.read_parquet(run_dir / runfolder.INTEGRITY_DIR / "orders.parquet")
    assert list(integrity.columns) == schema.INTEGRITY_COLUMNS
    run = load_run(run_dir)
    assert run.problems == [] and not run.incomplete


def test_the_reader_flags_a_folder_that_drifted(tmp_path):
    run_dir = synthetic.write_run(tmp_path / "run", SPEC)
    shards = sorted((run_dir / runfolder.SAMPLES_DIR).glob("*.parquet"))
    total = sum(pq.read_metadata(s).num_rows for s in shards)
    shard = shards[0]
    table = pq.read_table(shard)
    pq.write_table(table.drop(["rt_ms"]), shard)  # a writer that lost a column
    events = pd.read_parquet(run_dir / runfolder.EVENTS)
    events.loc[events["kind"] == "alarm_state", "detail"] = json.dumps({"state": "ALARM"})
    events.loc[len(events)] = [events["ts"].max(), "autoscaling", "scale_out", "web", "{}"]
    events.to_parquet(run_dir / runfolder.EVENTS, index=False)
    metrics = pd.read_parquet(run_dir / runfolder.METRICS).rename(columns={"stat": "statistic"})
    metrics.to_parquet(run_dir / runfolder.METRICS, index=False)

    run = load_run(run_dir)
    assert run.incomplete
    problems = "\n".join(run.problems)
    assert f"samples/{shard.name}: missing column(s) rt_ms" in problems
    assert len(run.samples) == total - table.num_rows  # the drifted shard is not read as fine
    assert "alarm_state detail lacks from, to, reason" in problems
    assert "unknown event kind 'scale_out'" in problems
    assert "metrics.parquet: missing column(s) stat" in problems
