"""The WAF must-shows in one short `peakready run` on its own sandbox: a plan's Web ACL
(the shipped SQLi-in-Count-mode file, with the shipped tight per-address rate limit) is
put on the sandbox ALB with update_web_acl at run start; the `waf` check then fails
naming the SQLi categories the managed group alone covers and the rate rule that blocked
CGNAT shoppers; `AWS/WAFV2` reaches metrics.parquet; the report has a WAF section."""

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
TIMING = {"boot_delay_s": 1.0, "instance_warmup_s": 2.0, "metric_period_s": 2,
          "scale_out_datapoints": 2, "health_interval_s": 0.5}


def _acl(tmp_path: Path) -> Path:
    """sqli-count-mode.json with the RateLimitPerIP rule of tight-rate-limit.json."""
    acl = json.loads((REPO / "plans/waf/sqli-count-mode.json").read_text())
    tight = json.loads((REPO / "plans/waf/tight-rate-limit.json").read_text())
    rate = next(r for r in tight["Rules"] if r["Name"] == "RateLimitPerIP")
    acl["Rules"] = [rate if r["Name"] == "RateLimitPerIP" else r for r in acl["Rules"]]
    path = tmp_path / "acl.json"
    path.write_text(json.dumps(acl))
    return path


def _plan(tmp_path: Path) -> Path:
    plan = yaml.safe_load((REPO / "plans/waf-sqli-count.yaml").read_text())
    profile = tmp_path / "flat.csv"
    profile.write_text("t_s,rps\n0,12\n35,12\n")  # 35 s; one CGNAT address at ~6 rps
    plan["target"]["web_acl"] = str(_acl(tmp_path))
    plan["load"].update(profile=str(profile), max_users=80, tricky_shoppers=0.0,
                        attacks={"rate": 0.1, "bots": 1, "categories": [
                            "sqli-query", "sqli-form", "sqli-header", "xss-query"]},
                        clients={"pool": 2000, "cgnat": 1, "cgnat_share": 0.5})
    plan["checks"] = {"waf": {"min_block_rate": 0.99, "max_false_block_rate": 0.01}}
    # half the shoppers blocked is the finding, not a reason to stop the run
    plan["stop_conditions"] = {"error_rate": {"max": 0.95, "for_s": 30}}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.spawns
def test_plan_web_acl_count_mode_and_tight_rate_rule_fail_the_waf_check(tmp_path, run_tmp):
    reports, log = tmp_path / "reports", tmp_path / "out.txt"
    env = {**os.environ, "TMPDIR": str(run_tmp), "PEAKREADY_TIMING": json.dumps(TIMING)}
    with open(log, "wb") as out:
        done = subprocess.run([sys.executable, "-m", "peakready.cli", "run", "--plain",
                               str(_plan(tmp_path)), "--reports-dir", str(reports)],
                              cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=240)
    text = log.read_text()
    assert done.returncode == 1, text  # the waf check failed, the run itself completed
    assert "rules of acl.json live on the balancer" in text
    (run_dir,) = [p for p in reports.iterdir() if (p / "run.json").exists()]
    meta = json.loads((run_dir / "run.json").read_text())
    applied = meta["target"]["web_acl"]
    assert applied["name"] == "peakready-web-acl"
    assert applied["lock_token"] != applied["previous_lock_token"]

    checks = {c["name"]: c for c in json.loads((run_dir / "verdict.json").read_text())["checks"]}
    for cat in ("sqli-query", "sqli-form"):  # only the SQLi group covers them: counted
        result = checks[f"waf blocks {cat}"]
        assert result["verdict"] == "fail" and result["reason"].startswith(f"{cat}: "), result
        assert "only counted by AWSManagedRulesSQLiRuleSet:" in result["reason"]
    for cat in ("sqli-header", "xss-query"):  # SQLiXSS_HEADERS / the common group block them
        assert checks[f"waf blocks {cat}"]["verdict"] == "pass", checks[f"waf blocks {cat}"]
    rate = checks["waf rate rules vs shoppers"]
    assert rate["verdict"] == "fail" and "rate-based rule RateLimitPerIP" in rate["reason"]
    assert rate["evidence"]["cgnat_addresses"] == ["100.64.0.1"]
    false_blocks = checks["waf false blocks"]
    assert false_blocks["verdict"] == "fail" and "RateLimitPerIP" in false_blocks["reason"]

    metrics = pd.read_parquet(run_dir / "metrics.parquet").query("namespace == 'AWS/WAFV2'")
    blocked = metrics.query("metric == 'BlockedRequests' and "
                            "dimensions.str.contains('Rule=RateLimitPerIP')")
    counted = metrics.query("metric == 'CountedRequests' and "
                            "dimensions.str.contains('Rule=AWSManagedRulesSQLiRuleSet')")
    assert blocked["value"].sum() >= false_blocks["evidence"]["blocked"] > 0
    assert counted["value"].sum() > 0

    summary = (run_dir / "summary.md").read_text()
    assert "### WAF" in summary and "sqli-query" in summary
    assert 'id="waf"' in (run_dir / "report.html").read_text()
