"""S3 faults: the API-log destination refuses writes, by a real bucket policy Deny.

A bucket policy statement that denies ``s3:PutObject`` under the delivery prefix is what
an over-eager security change, a rotated KMS key policy or a wrong account id in a policy
does to a log pipeline on campaign day. Firehose keeps the records and retries the
delivery (AWS: every 5 s for up to 24 h; the error output prefix is for records that
failed processing, not for an S3 refusal), so ``DeliveryToS3.Success`` drops and
``DeliveryToS3.DataFreshness`` grows until the policy is restored. The same call works on
AWS and on the sandbox, whose Firehose honours the bucket's policy.

The action saves the bucket's policy as it was (or that it had none) and adds one
statement (Sid ``peakready-deny-writes``); the rollback puts back exactly the saved policy,
or deletes the policy if there was none.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError
from chaoslib.exceptions import ActivityFailed

from peakready.chaos.aws import client
from peakready.chaos.state import forget, recall, remember, state_path

logger = logging.getLogger("chaostoolkit")

__all__ = ["DENY_SID", "deny_writes", "restore_bucket_policy", "writes_denied"]

DENY_SID = "peakready-deny-writes"


def _policy(s3: Any, bucket: str) -> str | None:
    """The bucket's policy document, None when it has none."""
    try:
        return s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucketPolicy":
            return None
        raise ActivityFailed(f"bucket {bucket}: get_bucket_policy: {code or exc}") from None


def deny_statement(bucket: str, prefix: str = "") -> dict[str, Any]:
    """Deny every principal ``s3:PutObject`` under ``prefix`` (the whole bucket if empty)."""
    return {"Sid": DENY_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}


def deny_writes(bucket_name: str, prefix: str = "", saved_path: str | None = None,
                configuration: dict | None = None, secrets: dict | None = None
                ) -> dict[str, Any]:
    """Action: the bucket refuses new objects under ``prefix``; its policy as it was is
    saved for ``restore_bucket_policy``."""
    s3 = client("s3", configuration)
    before = _policy(s3, bucket_name)
    path = state_path("bucket-policy", bucket_name, saved_path)
    remember(path, {"bucket": bucket_name, "policy": before})
    doc = json.loads(before) if before else {"Version": "2012-10-17", "Statement": []}
    statements = doc.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    doc["Statement"] = [s for s in statements if s.get("Sid") != DENY_SID] + [
        deny_statement(bucket_name, prefix)]
    try:
        s3.put_bucket_policy(Bucket=bucket_name, Policy=json.dumps(doc))
    except ClientError as exc:
        forget(path)
        code = exc.response.get("Error", {}).get("Code", "")
        raise ActivityFailed(f"bucket {bucket_name}: put_bucket_policy: {code or exc}") \
            from None
    logger.info(f"bucket {bucket_name}: s3:PutObject denied under {prefix or '/'!r}")
    return {"bucket": bucket_name, "prefix": prefix, "had_policy": before is not None,
            "saved": str(path)}


def restore_bucket_policy(bucket_name: str, saved_path: str | None = None,
                          configuration: dict | None = None, secrets: dict | None = None
                          ) -> dict[str, Any]:
    """Rollback: the bucket policy exactly as ``deny_writes`` found it (deleted if there
    was none; nothing to do when no change was made)."""
    path = state_path("bucket-policy", bucket_name, saved_path)
    saved = recall(path)
    if saved is None:
        logger.info(f"bucket {bucket_name}: no saved policy, nothing to restore")
        return {"bucket": bucket_name, "restored": False}
    s3 = client("s3", configuration)
    if saved["policy"] is None:
        s3.delete_bucket_policy(Bucket=bucket_name)
    else:
        s3.put_bucket_policy(Bucket=bucket_name, Policy=saved["policy"])
    forget(path)
    logger.info(f"bucket {bucket_name}: policy restored")
    return {"bucket": bucket_name, "restored": True, "had_policy": saved["policy"] is not None}


def writes_denied(bucket_name: str, configuration: dict | None = None,
                  secrets: dict | None = None) -> bool:
    """Probe: the bucket's policy carries peakready's deny statement."""
    policy = _policy(client("s3", configuration), bucket_name)
    statements = (json.loads(policy).get("Statement") or []) if policy else []
    if isinstance(statements, dict):
        statements = [statements]
    return any(s.get("Sid") == DENY_SID for s in statements)
