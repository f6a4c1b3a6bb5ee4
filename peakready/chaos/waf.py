"""Change-management faults on a Web ACL: a rule pushed to Block (or a rate limit
tightened) mid-run through ``update_web_acl``, and a rollback that restores the exact
previous Web ACL.

The change a team makes on campaign day ("that Count rule looked fine, block it") is the
fault. Before changing anything the action writes the Web ACL as it was (every field
``update_web_acl`` takes) to a file next to the journal, so the rollback, even in a later
process, puts back exactly that; both calls read a fresh lock token and retry once on
``WAFOptimisticLockException`` (someone else changed the Web ACL in between).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from chaoslib.exceptions import ActivityFailed

from peakready.chaos.aws import client
from peakready.chaos.state import state_path

logger = logging.getLogger("chaostoolkit")

__all__ = ["change_rule", "restore_web_acl"]

# what update_web_acl takes besides Name/Scope/Id/LockToken
FIELDS = ("DefaultAction", "Rules", "VisibilityConfig", "Description", "CustomResponseBodies",
          "CaptchaConfig", "ChallengeConfig", "TokenDomains", "AssociationConfig")
ACTIONS = {"Block", "Count", "Allow"}


def _saved_path(web_acl_name: str, saved_path: str | None) -> Path:
    return state_path("web-acl", web_acl_name, saved_path)


def _find(wafv2: Any, name: str, scope: str) -> dict:
    marker = None
    while True:
        page = wafv2.list_web_acls(Scope=scope, **({"NextMarker": marker} if marker else {}))
        for acl in page.get("WebACLs") or []:
            if acl["Name"] == name:
                return acl
        marker = page.get("NextMarker")
        if not marker or not page.get("WebACLs"):
            raise ActivityFailed(f"no Web ACL named {name} ({scope})")


def _get(wafv2: Any, name: str, scope: str) -> tuple[dict, str]:
    summary = _find(wafv2, name, scope)
    got = wafv2.get_web_acl(Name=name, Scope=scope, Id=summary["Id"])
    return got["WebACL"], got["LockToken"]


def _update(wafv2: Any, name: str, scope: str, fields: dict) -> str:
    """update_web_acl with a fresh lock token, once more on a lock conflict; the next
    lock token."""
    for attempt in (1, 2):
        acl, token = _get(wafv2, name, scope)
        try:
            return wafv2.update_web_acl(Name=name, Scope=scope, Id=acl["Id"], LockToken=token,
                                        **fields)["NextLockToken"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code != "WAFOptimisticLockException" or attempt == 2:
                raise ActivityFailed(f"update_web_acl {name}: {code or exc}") from None
    raise AssertionError("unreachable")


def _to_json(value: Any) -> Any:
    """Blobs (a ByteMatch SearchString comes back as bytes) kept exact in the saved file."""
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _fields(acl: dict) -> dict:
    """What update_web_acl takes back (moto returns an empty Description, which the API
    itself refuses: empty values are left out, as absent)."""
    return {k: copy.deepcopy(acl[k]) for k in FIELDS
            if k == "Rules" or acl.get(k) not in (None, "", {}, [])}


def change_rule(web_acl_name: str, rule_name: str, action: str = "Block",
                rate_limit: int | str | None = None, scope: str = "REGIONAL",
                saved_path: str | None = None, configuration: dict | None = None,
                secrets: dict | None = None) -> dict[str, Any]:
    """Action: set ``rule_name``'s action (a rule group's OverrideAction: Block means the
    group's own actions, ``None``; Count means Count) and/or a rate-based rule's Limit;
    the Web ACL as it was is saved for ``restore_web_acl``."""
    rate_limit = int(rate_limit) if rate_limit not in (None, "", 0, "0") else None
    if action not in ACTIONS:
        raise ActivityFailed(f"action must be one of {sorted(ACTIONS)}, got {action!r}")
    wafv2 = client("wafv2", configuration)
    acl, _ = _get(wafv2, web_acl_name, scope)
    before = _fields(acl)
    path = _saved_path(web_acl_name, saved_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": web_acl_name, "scope": scope,
                                "fields": _to_json(before)}))
    fields = copy.deepcopy(before)
    rule = next((r for r in fields.get("Rules") or [] if r["Name"] == rule_name), None)
    if rule is None:
        raise ActivityFailed(f"Web ACL {web_acl_name} has no rule {rule_name}")
    old = rule.get("OverrideAction") or rule.get("Action")
    if "OverrideAction" in rule:
        rule["OverrideAction"] = {"Count": {}} if action == "Count" else {"None": {}}
    else:
        rule["Action"] = {action: {}}
    if rate_limit is not None:
        rate = (rule.get("Statement") or {}).get("RateBasedStatement")
        if rate is None:
            raise ActivityFailed(f"rule {rule_name} is not rate-based: no Limit to change")
        rate["Limit"] = int(rate_limit)
    token = _update(wafv2, web_acl_name, scope, fields)
    logger.info(f"Web ACL {web_acl_name}: rule {rule_name} {old} -> {action}"
                + (f", limit {rate_limit}" if rate_limit is not None else ""))
    return {"web_acl": web_acl_name, "rule": rule_name, "before": old, "action": action,
            "rate_limit": rate_limit, "lock_token": token, "saved": str(path)}


def restore_web_acl(web_acl_name: str, scope: str = "REGIONAL", saved_path: str | None = None,
                    configuration: dict | None = None, secrets: dict | None = None
                    ) -> dict[str, Any]:
    """Rollback: the Web ACL exactly as ``change_rule`` found it (nothing to do when no
    change was made)."""
    path = _saved_path(web_acl_name, saved_path)
    if not path.exists():
        logger.info(f"Web ACL {web_acl_name}: no saved state, nothing to restore")
        return {"web_acl": web_acl_name, "restored": False}
    saved = json.loads(path.read_text())
    token = _update(client("wafv2", configuration), web_acl_name, scope, _from_json(saved["fields"]))
    path.unlink()
    logger.info(f"Web ACL {web_acl_name}: restored")
    return {"web_acl": web_acl_name, "restored": True, "lock_token": token}
