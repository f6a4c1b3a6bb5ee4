"""Actions the sandbox cannot model are refused by its AWS endpoint, never accepted.

moto accepts these calls and changes only its own records (a security-group rule, a
"stopped" cluster, a deleted load balancer) while the sandbox's processes go on as before:
an experiment built on one would pass without its fault ever happening, and a game day
rehearsed on it would teach the wrong lesson. Each is answered with an error naming the
action and what the sandbox would have to do, so ``chaos run`` fails the activity instead.
The list and the reasons are the "refused" rows of docs/sandbox-fidelity.md.

Each refusal is a routed Patch in ``extensions.PATCHES`` (moto as shipped when no control
plane is attached). Importing this module registers them; ``plane.py`` imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.exceptions import ServiceException
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.security_groups import SecurityGroups
from moto.elasticache.responses import ElastiCacheResponse
from moto.elbv2.responses import ELBV2Response
from moto.rds.exceptions import InvalidParameterCombination
from moto.rds.responses import RDSResponse

from peakready.sandbox.aws import extensions

CODE = "UnsupportedBySandbox"
DOCS = "docs/sandbox-fidelity.md"

_SG = ("the sandbox's tiers talk over loopback without a packet filter, so a security-group "
       "rule change would not cut or heal any connection")
# (Response class, action, what the sandbox would have to do and does not)
REFUSED: list[tuple[type, str, str]] = [
    (SecurityGroups, "revoke_security_group_ingress", _SG),
    (SecurityGroups, "authorize_security_group_ingress", _SG),
    (SecurityGroups, "revoke_security_group_egress", _SG),
    (SecurityGroups, "authorize_security_group_egress", _SG),
    (ElasticBlockStore, "detach_volume", "the storefront instances have no EBS volumes: "
     "detaching one (chaosaws detach_random_volume) would change nothing they do"),
    (ELBV2Response, "set_security_groups", "the balancer has no packet filter: changing its "
     "security groups would not block any client"),
    (ELBV2Response, "set_subnets", "the balancer runs on 127.0.0.1, not in subnets: changing "
     "them would not change which instances it reaches"),
    (ELBV2Response, "delete_load_balancer", "deleting the balancer would leave its process "
     "serving; stop the sandbox instead"),
    (RDSResponse, "stop_db_cluster", "stopping the cluster's PostgreSQL processes is not "
     "modelled"),
    (RDSResponse, "start_db_cluster", "stopping/starting the cluster's PostgreSQL processes is "
     "not modelled"),
    (RDSResponse, "delete_db_cluster", "deleting the cluster would leave its PostgreSQL "
     "processes serving"),
    (RDSResponse, "delete_db_instance", "deleting a node would leave its PostgreSQL process "
     "serving"),
    (ElastiCacheResponse, "delete_replication_group", "deleting the group would leave its "
     "Redis processes serving"),
    (ElastiCacheResponse, "delete_cache_cluster", "deleting a node would leave its Redis "
     "process serving"),
]


def camel(action: str) -> str:
    """``reboot_db_instance`` -> ``RebootDBInstance`` (the API's own spelling)."""
    words = {"db": "DB"}
    return "".join(words.get(w, w.capitalize()) for w in action.split("_"))


class UnsupportedBySandbox(ServiceException):
    """HTTP 400 with a code boto3 surfaces as ``ClientError`` (chaosaws: FailedActivity)."""

    code = CODE


def message(action: str, why: str) -> str:
    return f"the peakready sandbox refuses {camel(action)}: {why} (see {DOCS})"


def _refusal(action: str, why: str) -> Callable[..., Any]:
    def refuse(self, plane, original):
        raise UnsupportedBySandbox(CODE, message(action, why))
    refuse.__name__ = f"refuse_{action}"
    return refuse


for _owner, _action, _why in REFUSED:
    extensions._routed(_owner, _action, f"refused: {_why}")(_refusal(_action, _why))


@extensions._routed(RDSResponse, "stop_db_instance", "Aurora instances cannot be stopped "
                    "one by one, as AWS answers (moto stops them and nothing happens)")
def stop_db_instance(self, plane, original):
    raise InvalidParameterCombination(
        f"Aurora DB instance {self._get_param('DBInstanceIdentifier')} cannot be stopped "
        f"individually; StopDBInstance does not apply to Aurora (use StopDBCluster, which "
        f"the peakready sandbox does not model either; see {DOCS})")

