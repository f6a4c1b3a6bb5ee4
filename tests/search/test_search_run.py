"""A readiness run end to end on its own sandbox (``peakready run``, as a user runs it):
a search node reboots under load and the ``search`` check sees the domain leave green and
come back; the search pools, set too small for the peak from the plan, answer 429 and the
check fails naming the peak, while the calm phase passes. One run serves every assertion
(the sandbox start dominates its cost).
"""

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
pytestmark = pytest.mark.spawns  # CLI runs, each with its own sandbox

# Each search is one shard query holding a pool thread 2 s (well inside the storefront
# client's 5 s timeout); 3 nodes x 2 threads, no queue: about 3 searches/s before the
# pools reject. Calm (~1 search/s, ~12 in its window: enough evidence) fits, the peak (~4/s)
# does not. The storefront gets workers enough that its own pool is not the
# limit, and the fault's live SLO is widened so its steady state holds under slow searches.
SEARCH = {"shards": 1, "replicas": 2, "queue_size": 0, "query_cost_ms": 2000}
PLAN = {
    "name": "search-e2e",
    "target": {"kind": "sandbox",
               "sandbox": {"search": SEARCH, "storefront": {"workers": 32}},
               "allow": {"account_ids": ["123456789012"], "resources": ["peakready-search"]}},
    "load": {"max_users": 200},
    "phases": [{"name": "calm", "start_s": 0, "end_s": 12},
               {"name": "peak", "start_s": 16, "end_s": 34}],
    "faults": [{"name": "search-node-reboot", "experiment": "experiments/search-node-reboot.json",
                "at_s": 15, "configuration": {"observe_s": 1, "green_timeout_s": 30,
                                              "max_p95_ms": 60000, "max_error_rate": 1}}],
    "checks": {"search": {"phase": "*", "max_rejected": 0.2, "green_within_s": 20,
                          "min_requests": 3}},
}


def _run(tmp_path: Path, run_tmp: Path, plan: dict) -> tuple[int, str, Path | None]:
    profile = tmp_path / "profile.csv"
    profile.write_text("t_s,rps\n0,10\n12,10\n14,40\n34,40\n")
    plan = json.loads(json.dumps(plan))
    plan["load"]["profile"] = str(profile)
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
    reports = tmp_path / "reports"
    env = {**os.environ, "TMPDIR": str(run_tmp),
           "PEAKREADY_TIMING": json.dumps({"metric_period_s": 1})}
    done = subprocess.run([sys.executable, "-m", "peakready.cli", "run", "--plain",
                           str(plan_path), "--reports-dir", str(reports), "--settle-s", "0"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    dirs = sorted(p for p in reports.glob("*") if (p / "run.json").exists()) \
        if reports.exists() else []
    return done.returncode, done.stdout + done.stderr, dirs[0] if dirs else None


def test_bad_search_setting_in_the_plan_exits_2_naming_the_field(tmp_path, run_tmp):
    plan = json.loads(json.dumps(PLAN))
    plan["target"]["sandbox"]["search"]["queue_size"] = -1
    rc, out, run_dir = _run(tmp_path, run_tmp, plan)
    errors = [ln for ln in out.splitlines() if ln.startswith("peakready: error:")]
    assert rc == 2 and len(errors) == 1, out
    assert "target.sandbox.search.queue_size" in errors[0]
    assert run_dir is None and not list(run_tmp.glob("peakready-run-sandbox-*"))


@pytest.mark.slow
def test_node_reboot_and_too_small_pools_under_load(tmp_path, run_tmp):
    rc, out, run_dir = _run(tmp_path, run_tmp, PLAN)
    assert run_dir is not None, out
    assert rc == 1, out  # a failing check: the verdict's exit code
    verdict = json.loads((run_dir / "verdict.json").read_text())
    results = {c["name"]: c for c in verdict["checks"] if c["check"] == "search"}
    seen = "; ".join(f"{n}: {c['verdict']} ({c['reason']})" for n, c in results.items())

    # the pools too small for the peak: 429s, and the check fails naming the phase
    peak = results["search rejected in peak"]
    assert peak["verdict"] == "fail", seen
    assert peak["evidence"]["rejected"] > 0 and peak["measured"] > 0.2
    assert peak["evidence"]["ThreadpoolSearchRejected_increase"] > 0  # AWS/ES agrees
    calm = results["search rejected in calm"]
    assert calm["verdict"] == "pass", seen

    # the reboot: not green for a while, then green again, timed from the fault
    green = results["search green after search-node-reboot"]
    assert green["verdict"] == "pass", seen
    assert green["evidence"]["datapoints_not_green"] >= 1
    assert 0 < green["measured"] <= 20
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    yellow = metrics.query("metric == 'ClusterStatus.yellow'")
    assert yellow["value"].max() == 1 and metrics.query("metric == 'ClusterStatus.red'")[
        "value"].max() == 0  # replicas served: never red
    journal = json.loads((run_dir / "chaos" / "search-node-reboot.journal.json").read_text())
    ran = {r["activity"]["name"]: r["status"] for r in journal["run"]}
    assert ran.get("reboot-search-node") == "succeeded", journal["steady_states"]

    # searches kept answering through the reboot: every failure is a 429, none a 5xx
    samples = pd.read_parquet(run_dir / "samples")
    searches = samples.loc[samples["name"] == "/api/search"]
    window = green["window"]
    t0 = verdict["t0"]
    during = searches.loc[(searches["ts"] >= t0 + window["start_s"])
                          & (searches["ts"] < t0 + window["end_s"])]
    assert (during["status"] == 200).sum() > 0, during["status"].value_counts().to_dict()
    errors = searches.loc[searches["status"] >= 500, "error"].value_counts().to_dict()
    assert not errors, errors
