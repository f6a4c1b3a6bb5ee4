"""fault_start/fault_end come from real ``chaos run`` journals (and from the launch times
when an experiment was killed before it wrote one)."""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import pytest

from peakready.chaos.runner import start_experiment
from peakready.collect import AwsClients, FaultRecord, collect_run

pytestmark = pytest.mark.spawns  # runs a real chaos experiment

EXPERIMENT = {
    "version": "1.0.0",
    "title": "a short fault",
    "description": "sleeps as its fault; the rollback runs",
    "method": [{"type": "action", "name": "fault",
                "provider": {"type": "process", "path": sys.executable,
                             "arguments": "-c 'import time; time.sleep(1.5)'"}}],
    "rollbacks": [{"type": "action", "name": "undo",
                   "provider": {"type": "process", "path": sys.executable,
                                "arguments": "-c 'pass'"}}],
}


def test_fault_window_from_a_real_journal(shop, tmp_path):
    experiment = tmp_path / "short.json"
    experiment.write_text(json.dumps(EXPERIMENT))
    run_dir = tmp_path / "run"
    (run_dir / "chaos").mkdir(parents=True)
    launched = time.time()
    proc = start_experiment(experiment, run_dir / "chaos" / "short.journal.json",
                            run_dir / "logs" / "chaos-short.log")
    assert proc.wait(60) is not None
    ended = time.time()
    records = [
        FaultRecord("short", str(experiment), str(proc.journal_path), launched, ended,
                    proc.returncode),
        # killed before it wrote a journal: still visible, marked as such
        FaultRecord("vanished", "experiments/x.json", str(run_dir / "chaos" / "none.json"),
                    launched + 1, launched + 2, -9, interrupted=True),
    ]
    collect_run(run_dir, AwsClients("eu-central-1", shop["aws"]), shop["resources"],
                launched - 5, ended + 1, base_period_s=5, faults=records)
    events = pd.read_parquet(run_dir / "events.parquet").query("source == 'chaos'")
    short = events.query("resource == 'short'").set_index("kind")
    start, end = short.loc["fault_start", "ts"], short.loc["fault_end", "ts"]
    assert launched < start < end <= ended
    assert 1.4 <= end - start < 5  # the method's action slept 1.5 s
    detail = json.loads(short.loc["fault_start", "detail"])
    assert detail["status"] == "completed" and detail["rollbacks_ran"] is True
    assert detail["journal"].endswith("short.journal.json")
    vanished = events.query("resource == 'vanished'").set_index("kind")
    assert vanished.loc["fault_start", "ts"] == launched + 1
    assert json.loads(vanished.loc["fault_end", "detail"])["journal"] is None
