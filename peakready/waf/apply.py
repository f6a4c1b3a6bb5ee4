"""A plan's own Web ACL (``target.web_acl``) put on the sandbox ALB at run start.

The file becomes the content of the Web ACL associated with the load balancer through
``update_web_acl`` with its lock token, the call a user makes on AWS, so what the run
tests is what moto holds and what the balancer evaluates (peakready/sandbox/aws/waf.py
pushes it within a reconcile pass). The name stays the associated one: metrics and WAF
log records keep the ``WebACL`` dimension the collection reads. The file was validated
at plan load (peakready/waf/webacl.py); AWS refusals the validator missed are reported
here naming the field, before any load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peakready.errors import BadInput
from peakready.waf import webacl

# update_web_acl's parameters a file may set (Name, Id, Scope and LockToken are the
# associated Web ACL's own)
UPDATABLE = ("DefaultAction", "Rules", "VisibilityConfig", "Description",
             "CustomResponseBodies", "CaptchaConfig", "ChallengeConfig", "TokenDomains",
             "AssociationConfig")
WHERE = "target.web_acl"


def load_balancer_arn(elbv2: Any, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    lbs = elbv2.describe_load_balancers(Names=[name_or_arn])["LoadBalancers"]
    return lbs[0]["LoadBalancerArn"]


def apply_file(wafv2: Any, elbv2: Any, path: Path | str, load_balancer: str) -> dict[str, Any]:
    """Replace the rules (and default action, visibility, ...) of the Web ACL associated
    with ``load_balancer`` by the file's; returns what was applied (for run.json)."""
    doc = webacl.load_file(path, WHERE)
    fields = {k: doc[k] for k in UPDATABLE if k in doc}
    lb_arn = load_balancer_arn(elbv2, load_balancer)
    summary = wafv2.get_web_acl_for_resource(ResourceArn=lb_arn).get("WebACL")
    if not summary:
        raise BadInput(f"{WHERE}: no Web ACL is associated with {load_balancer}; the file "
                       "replaces the rules of the associated one")
    got = wafv2.get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
    try:
        res = wafv2.update_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"],
                                   LockToken=got["LockToken"], **fields)
    except Exception as exc:  # noqa: BLE001 - botocore's param validation or the API's refusal
        raise BadInput(f"{WHERE} ({path}): update_web_acl refused it: "
                       f"{str(exc).splitlines()[0][:300]}") from None
    return {"file": str(path), "name": summary["Name"], "arn": summary["ARN"],
            "load_balancer": load_balancer, "rules": [r.get("Name") for r in doc["Rules"]],
            "previous_lock_token": got["LockToken"], "lock_token": res["NextLockToken"]}


def wait_live(lock_token: str, waf_status: Callable[[], dict], timeout_s: float = 15.0) -> bool:
    """True once the balancer runs the Web ACL with ``lock_token`` (``waf_status`` is the
    sandbox status's ``control_plane.waf``); False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (waf_status() or {}).get("lock_token") == lock_token:
            return True
        time.sleep(0.2)
    return False
