"""AWS WAF in the control plane: the shop's default Web ACL at boot, the Web ACL that
moto holds for the ALB pushed to the balancer when it changes, and ``AWS/WAFV2``.

moto's wafv2 stores Web ACLs and associations but evaluates nothing (research
waf-anchors.md section 3); the balancer evaluates, this module keeps it in step: every
reconcile pass compares the associated Web ACL's ARN and lock token (``update_web_acl``
changes the token) with what the balancer runs, so a change is live within a quarter
second. A Web ACL AWS would refuse (moto accepts some) is not pushed: it is logged and
the previous one keeps running.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from peakready.sandbox.aws import bootstrap, names

log = logging.getLogger(__name__)
NAMESPACE = "AWS/WAFV2"


def create_default(endpoint_url: str, load_balancer_arn: str) -> str:
    """The shop's Web ACL (peakready/waf/defaults.py), created and associated with the
    ALB by the same boto3 calls as on AWS; returns its ARN."""
    from peakready.waf.defaults import default_acl

    acl = default_acl()
    wafv2 = bootstrap.client("wafv2", endpoint_url)
    created = wafv2.create_web_acl(Scope="REGIONAL", **acl)["Summary"]
    wafv2.associate_web_acl(WebACLArn=created["ARN"], ResourceArn=load_balancer_arn)
    return created["ARN"]


def _clean(value: Any) -> Any:
    """moto's stored Web ACL as get_web_acl returns it: no None fields, ByteMatch
    SearchString decoded (the wire format carries the blob base64-encoded)."""
    if isinstance(value, dict):
        out = {k: _clean(v) for k, v in value.items() if v is not None}
        bm = out.get("ByteMatchStatement")
        if isinstance(bm, dict) and isinstance(bm.get("SearchString"), str):
            try:
                bm["SearchString"] = base64.b64decode(bm["SearchString"], validate=True
                                                      ).decode("latin-1")
            except (binascii.Error, ValueError):
                pass  # stored as plain text (an in-process caller): keep
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class WafSync:
    """Keeps the balancer's Web ACL equal to the one associated with the ALB."""

    def __init__(self, stack: Any, load_balancer_arn: str) -> None:
        self.stack = stack
        self.lb_arn = load_balancer_arn
        self.running: tuple[str, str] | None = None  # (arn, lock token) on the balancer
        self.refused: tuple[str, str] | None = None
        self.status: dict = {}

    def poll(self) -> bool:
        """Push when the association or the lock token changed; True when it pushed."""
        from moto.wafv2.models import wafv2_backends

        from peakready.sandbox.aws.extensions import LOCK

        with LOCK:
            backend = wafv2_backends[names.ACCOUNT_ID][names.REGION]
            acl = backend.get_web_acl_for_resource(self.lb_arn)
            key = (acl.arn, acl.lock_token) if acl is not None else None
            if key == self.running or (key is not None and key == self.refused):
                return False
            doc = _clean(acl.to_dict()) if acl is not None else None
            ip_sets = {s.arn: list(s.addresses) for s in backend.ip_sets.values()}
        if doc is None:
            self.status = self.stack.set_web_acl({"web_acl": None})
            self.running = None
            return True
        from peakready.waf.webacl import problems

        found = problems(doc)
        if found:
            log.error("web ACL %s not put on the balancer (AWS would refuse it): %s",
                      doc.get("Name"), found[0])
            self.refused = key
            return False
        self.status = self.stack.set_web_acl({"web_acl": doc, "ip_sets": ip_sets})
        self.running = key
        log.info("web ACL %s (lock token %s) on the balancer, engine %s", doc.get("Name"),
                 key[1], self.status.get("engine") or "-")
        return True


def datums(waf: dict | None, region: str = names.REGION) -> list[tuple[str, dict]]:
    """``AWS/WAFV2`` from one period's counters (dimension sets as AWS's regional ones:
    {Region, Rule, WebACL} and, for rules inside a managed group, {Region, Rule,
    RuleGroup, WebACL}); metrics without requests are omitted, as AWS does."""
    if not waf or not waf.get("web_acl"):
        return []
    acl = waf["web_acl"]
    out = []
    for c in waf.get("counts") or []:
        dims = [{"Name": "Region", "Value": region}, {"Name": "Rule", "Value": c["rule"]},
                {"Name": "WebACL", "Value": acl}]
        if c.get("group"):
            dims.insert(2, {"Name": "RuleGroup", "Value": c["group"]})
        out.append((NAMESPACE, {"MetricName": c["metric"], "Dimensions": dims,
                                "Unit": "Count", "Value": float(c["value"])}))
    return out
