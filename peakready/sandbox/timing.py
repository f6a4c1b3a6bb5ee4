"""Every time constant of the sandbox, in one place.

AWS counts in minutes; the sandbox counts in seconds so a whole readiness run with a
scale-out and three failovers fits in a few minutes. The AWS value is noted beside each.
Override any of them for one process with ``PEAKREADY_TIMING`` as JSON, e.g.
``PEAKREADY_TIMING='{"boot_delay_s": 1}'`` (tests use this to run faster).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class Timing:
    # web tier (EC2 / Auto Scaling)
    boot_delay_s: float = 6.0  # AWS: 1-5 min from launch to a healthy app
    instance_warmup_s: float = 10.0  # AWS target tracking default: 300 s
    scale_out_cooldown_s: float = 10.0  # AWS default cooldown: 300 s
    scale_in_cooldown_s: float = 30.0  # AWS: 300 s
    replace_unhealthy_after_s: float = 3.0  # AWS: health check grace + a few minutes

    # load balancer (ALB target group)
    health_interval_s: float = 1.0  # AWS: 30 s (5-300)
    health_timeout_s: float = 1.0  # AWS: 5 s
    healthy_threshold: int = 2  # AWS: 5
    unhealthy_threshold: int = 2  # AWS: 2
    idle_timeout_s: float = 30.0  # AWS: 60 s
    deregistration_delay_s: float = 2.0  # AWS: 300 s

    # CloudWatch
    metric_period_s: int = 5  # AWS: 60 s (1 s for high resolution)
    scale_out_datapoints: int = 3  # AWS target tracking: 3 of 3 one-minute datapoints
    scale_in_datapoints: int = 15  # AWS target tracking: 15 of 15

    # SNS delivery to HTTP(S) subscribers (the pager)
    sns_http_timeout_s: float = 2.0  # AWS: 15 s per attempt
    sns_http_retries: int = 3  # AWS default HTTP policy: 3 retries
    sns_http_retry_delay_s: float = 1.0  # AWS: 20 s between retries

    # data tier
    db_failover_dns_s: float = 1.0  # AWS Aurora: DNS TTL 5 s; failover typically < 30-60 s
    db_reboot_s: float = 2.0  # AWS: an instance reboot is down for seconds to minutes
    cache_failover_s: float = 1.0  # AWS ElastiCache: detection + promotion, tens of seconds
    cache_node_recover_s: float = 3.0  # the failed node returns as a replica

    # API-log pipeline (Firehose): a stream's IntervalInSeconds hint is multiplied by this
    firehose_interval_scale: float = 1 / 12  # AWS: 1 (a 60 s hint is 5 s, like the period)


def load() -> Timing:
    """The defaults, with any ``PEAKREADY_TIMING`` JSON overrides applied."""
    raw = os.environ.get("PEAKREADY_TIMING", "").strip()
    if not raw:
        return Timing()
    overrides = json.loads(raw)
    known = {f.name for f in fields(Timing)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"PEAKREADY_TIMING: unknown constants {sorted(unknown)}")
    return replace(Timing(), **overrides)


def as_dict(timing: Timing) -> dict:
    return asdict(timing)
