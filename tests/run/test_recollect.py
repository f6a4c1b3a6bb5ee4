"""``peakready collect RUN_DIR`` on sandbox runs: collected again while the run's sandbox is
up (here: a run killed before its collection), refused in one line once it is gone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from peakready import runfolder

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "peakready.cli", "collect", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def killed_run(reports: Path, target: dict, started: float, last_live: float) -> Path:
    """A run folder as a run killed during its load leaves it: status running, no ended_at,
    no collection; live.json says how far the load got."""
    run_dir = runfolder.create(reports, label="killed")
    runfolder.update_run_json(run_dir, target=target, load_started_at=started)
    (run_dir / "plan.yaml").write_text(yaml.safe_dump({
        "name": "killed", "target": {"kind": "sandbox", "alarms": []},
        "phases": [{"name": "warm-up", "start_s": 0, "end_s": 2},
                   {"name": "peak", "start_s": 2, "end_s": 600}]}))
    (run_dir / "live.json").write_text(json.dumps({"ts": last_live,
                                                   "elapsed_s": last_live - started}))
    return run_dir


@pytest.mark.spawns
def test_a_gone_sandbox_is_one_line_and_exit_2(tmp_path):
    target = {"kind": "sandbox", "region": "eu-central-1",
              "aws_endpoint_url": f"http://127.0.0.1:{_closed_port()}",
              "sandbox_state_dir": str(tmp_path / "removed-with-the-sandbox"),
              "resources": {"autoscaling_group": "peakready-web"}}
    now = time.time()
    run_dir = killed_run(tmp_path, target, now - 60, now - 30)
    proc = _cli(run_dir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"the sandbox this run used (AWS endpoint {target['aws_endpoint_url']}) is gone" \
        in line
    assert not (run_dir / "metrics.parquet").exists()
    assert not (run_dir / "events.parquet").exists()


def test_a_killed_sandbox_run_is_collected_while_its_sandbox_is_up(sandbox, tmp_path):
    aws = sandbox["aws"]
    period = sandbox["control_plane"]["target_tracking"]["period_s"]
    started = time.time()
    time.sleep(3 * period)  # the sandbox publishes its metrics every period
    target = {"kind": "sandbox", "region": aws["region"], "aws_endpoint_url": aws["endpoint_url"],
              "sandbox_state_dir": sandbox["state_dir"], "resources": sandbox["resources"],
              "storefront_url": sandbox["storefront_url"]}
    going = killed_run(tmp_path, target, started, time.time())  # live.json is fresh
    proc = _cli(going)
    assert proc.returncode == 2 and "the run is still going" in proc.stderr
    run_dir = killed_run(tmp_path, target, started, time.time() - 11)
    proc = _cli(run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"next: peakready analyze {run_dir}"

    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    in_service = metrics.query("namespace == 'AWS/AutoScaling' and "
                               "metric == 'GroupInServiceInstances'")
    assert len(in_service) and in_service["value"].max() >= 1
    assert set(metrics["period_s"]) == {period}
    assert metrics["ts"].min() >= started - 2 * period
    events = pd.read_parquet(run_dir / "events.parquet")
    phases = events.query("kind == 'phase'").set_index("resource")
    assert list(phases.index) == ["warm-up", "peak"]  # reconstructed from plan.yaml
    assert phases.loc["warm-up", "ts"] == started
    assert json.loads(phases.loc["peak", "detail"])["end"] <= time.time()
    assert runfolder.read_run_json(run_dir)["collect"]["metrics_rows"] == len(metrics)

    # another sandbox answering where this run's was: not the run's sandbox, refused
    moved = dict(target, aws_endpoint_url=f"http://127.0.0.1:{_closed_port()}")
    other = killed_run(tmp_path, moved, started, time.time() - 11)
    proc = _cli(other)
    assert proc.returncode == 2 and "is gone" in proc.stderr


def test_a_load_folder_is_collected_from_the_sandbox_it_names(sandbox, tmp_path):
    """`peakready load` against `peakready sandbox up` records no target: --sandbox-state
    says which sandbox; without it the command says what to pass."""
    period = sandbox["control_plane"]["target_tracking"]["period_s"]
    run_dir = runfolder.create(tmp_path, label="load")
    started = float(sandbox["started_at"])
    time.sleep(max(0.0, started + 3 * period - time.time()))  # a few published periods
    runfolder.update_run_json(run_dir, status="completed", started_at=started,
                              ended_at=time.time(), host=sandbox["storefront_url"])
    proc = _cli(run_dir)
    assert proc.returncode == 2 and "--sandbox-state" in proc.stderr
    proc = _cli(run_dir, "--sandbox-state", sandbox["state_dir"], "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["metrics_rows"] > 0 and summary["period_s"] == period
    assert summary["window"]["end"] <= time.time()
