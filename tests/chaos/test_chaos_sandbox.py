"""The bundled experiments against the real sandbox (processes, control plane): the kill
really replaces an instance, the Aurora failover really promotes the standby, the cache
failover really moves the Redis primary, each within the experiment's own wait."""

from __future__ import annotations

import pytest
from chaos_awsworld import client
from test_chaos_experiments import run_experiment

import peakready.sandbox as sandbox
from peakready.sandbox.timing import Timing

pytestmark = pytest.mark.spawns  # starts a sandbox and the chaos CLI

FAST = Timing(boot_delay_s=2.0, instance_warmup_s=2.0, scale_out_cooldown_s=4.0,
              scale_in_cooldown_s=6.0, replace_unhealthy_after_s=2.0,
              deregistration_delay_s=1.0, metric_period_s=2, scale_out_datapoints=2,
              scale_in_datapoints=3, cache_node_recover_s=2.0)


@pytest.mark.slow
def test_experiments_against_the_sandbox(tmp_path, live):
    with sandbox.running(tmp_path / "sandbox", timing=FAST) as status:
        aws = status["aws"]
        env = {"AWS_ENDPOINT_URL": aws["endpoint_url"], "AWS_REGION": aws["region"],
               "AWS_DEFAULT_REGION": aws["region"], "AWS_ACCESS_KEY_ID": aws["access_key_id"],
               "AWS_SECRET_ACCESS_KEY": aws["secret_access_key"], "AWS_MAX_ATTEMPTS": "1"}

        def writer():
            members = client(env, "rds").describe_db_clusters(
                DBClusterIdentifier="peakready-db")["DBClusters"][0]["DBClusterMembers"]
            return [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]

        def cache_primary():
            group = client(env, "elasticache").describe_replication_groups(
                ReplicationGroupId="peakready-sessions")["ReplicationGroups"][0]
            return [m["CacheClusterId"] for m in group["NodeGroups"][0]["NodeGroupMembers"]
                    if m["CurrentRole"] == "primary"]

        quick = {"observe_s": 0.5}
        old_writer, old_primary = writer(), cache_primary()
        aurora = run_experiment(tmp_path, "aurora-failover", env, live, quick)
        assert aurora.ok, aurora.reason
        assert writer() != old_writer and len(writer()) == 1

        cache = run_experiment(tmp_path, "cache-node-failover", env, live, quick)
        assert cache.ok, cache.reason
        assert cache_primary() != old_primary and len(cache_primary()) == 1

        kill = run_experiment(tmp_path, "kill-web-instance", env, live,
                              {**quick, "replace_timeout_s": 60.0})
        assert kill.ok, kill.reason
        # the sandbox boots the replacement after its boot delay: the kill's own wait
        # spans it, so the journal's fault window is at least that long
        assert kill.fault_end - kill.fault_start >= FAST.boot_delay_s
