"""The change-management fault ``experiments/waf-rule-change.json`` as a plain ``chaos
run`` against a moto endpoint: the rate rule is tightened mid-run through update_web_acl,
and an interrupt mid-hold runs the rollback, which restores the exact previous Web ACL."""

from __future__ import annotations

import pytest
from chaos_awsworld import client
from test_chaos_experiments import run_experiment

from peakready.waf.defaults import default_acl


def _acl(env) -> tuple[dict, str]:
    wafv2 = client(env, "wafv2")
    summary = wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"][0]
    got = wafv2.get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
    return got["WebACL"], got["LockToken"]


def _limit(acl: dict) -> int:
    rule = next(r for r in acl["Rules"] if r["Name"] == "RateLimitPerIP")
    return rule["Statement"]["RateBasedStatement"]["Limit"]


@pytest.mark.spawns
def test_rule_change_is_live_mid_hold_and_rollback_restores_the_exact_acl(tmp_path, aws,
                                                                          live):
    client(aws, "wafv2").create_web_acl(Scope="REGIONAL", **default_acl())
    before, token = _acl(aws)
    seen = []

    def tightened() -> bool:
        acl, _ = _acl(aws)
        seen.append(_limit(acl))
        return seen[-1] == 100

    env = {**aws, "PEAKREADY_CHAOS_STATE_DIR": str(tmp_path / "state")}
    outcome = run_experiment(tmp_path, "waf-rule-change", env, live, {"hold_s": 30},
                             interrupt_when=tightened)
    after, token_after = _acl(aws)
    assert 100 in seen and _limit(before) == 2000
    assert outcome.rollbacks_ran, outcome.reason
    assert after["Rules"] == before["Rules"]  # ByteMatch blobs and all
    assert after["DefaultAction"] == before["DefaultAction"] and token_after != token
    assert not list((tmp_path / "state").glob("*.json"))  # the saved state was used up
