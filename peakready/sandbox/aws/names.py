"""Names, region and dummy credentials of the sandbox's AWS account.

One place, so the bootstrap, the control plane, the stack, the plan defaults and the tests
agree with DESIGN.md. ``REGION`` is also the default region of a plan and of collection.
"""

from __future__ import annotations

REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"  # moto's default account
ACCESS_KEY_ID = "AKIAPEAKREADYSANDBOX"  # dummy: moto accepts any key
SECRET_ACCESS_KEY = "peakready-sandbox-secret"

ASG = "peakready-web"
LAUNCH_TEMPLATE = "peakready-web-lt"
ALB = "peakready-alb"
TARGET_GROUP = "peakready-web-tg"
DB_CLUSTER = "peakready-db"
DB_INSTANCES = ("peakready-db-1", "peakready-db-2")
CACHE_GROUP = "peakready-sessions"
SCALING_POLICY = "peakready-web-request-tracking"
WEB_ACL = "peakready-web-acl"  # associated with the ALB (peakready/waf/defaults.py builds it)
SEARCH_DOMAIN = "peakready-search"  # the OpenSearch domain (peakready/sandbox/search/config.py)
DELIVERY_STREAM = "peakready-api-logs"  # the API-log Firehose stream (sandbox/aws/logpipe.py)
LOG_BUCKET = "peakready-api-logs"  # its S3 destination

# resource kind (plan target.resources) -> the sandbox's name
RESOURCES = {"autoscaling_group": ASG, "load_balancer": ALB, "target_group": TARGET_GROUP,
             "db_cluster": DB_CLUSTER, "cache_replication_group": CACHE_GROUP,
             "delivery_stream": DELIVERY_STREAM, "log_bucket": LOG_BUCKET}

ALARM_5XX = "peakready-web-5xx"  # 5xx share of requests, per period
ALARM_LATENCY = "peakready-web-latency"  # target p99
ALARM_HOSTS = "peakready-web-healthy-hosts"  # fewer healthy targets than the group's minimum
PAGES_TOPIC = "peakready-pages"  # the SNS topic the alarms notify; the pager subscribes

ASG_MIN, ASG_DESIRED, ASG_MAX = 2, 2, 6
WEB_PORT = 80

# Target tracking on ALBRequestCountPerTarget: requests per target per metric period.
# Expressed per second so it does not depend on the period; see docs/control-plane.md.
TARGET_REQUESTS_PER_TARGET_PER_S = 25.0
