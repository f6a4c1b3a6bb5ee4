"""Firehose faults: the delivery stream's ingestion quota lowered mid-peak (sandbox only),
and a probe that the stream is still there.

AWS has no API that changes a stream's quota (it is raised on request, per region: 1 MiB/s
and 1,000 requests/s outside us-east-1/us-west-2/eu-west-1). The sandbox's Firehose takes
its quota from the stream's ``peakready:quota-*`` tags (docs/control-plane.md), so the
fault is an ordinary ``TagDeliveryStream`` and the rollback puts the tags back exactly as
they were (``UntagDeliveryStream`` for those that were absent). On AWS the tags would change
nothing, so the experiment is sandbox-only (``semantics.SANDBOX_ONLY_ACTIONS``): the plan refuses it against
an aws target, where the throttle case is a load above the documented quota instead.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError
from chaoslib.exceptions import ActivityFailed

from peakready.chaos.aws import client
from peakready.chaos.state import forget, recall, remember, state_path
from peakready.sandbox.aws.firehose import QUOTA_TAGS as TAG_FIELDS

logger = logging.getLogger("chaostoolkit")

__all__ = ["QUOTA_TAGS", "restore_quota", "set_quota", "stream_active"]

# argument -> the sandbox's tag (its home: peakready/sandbox/aws/firehose.py)
QUOTA_TAGS = {field: tag for tag, field in TAG_FIELDS.items()}


def _tags(firehose: Any, stream: str) -> dict[str, str]:
    out: dict[str, str] = {}
    start = None
    while True:
        kwargs = {"DeliveryStreamName": stream, **({"ExclusiveStartTagKey": start}
                                                   if start else {})}
        try:
            page = firehose.list_tags_for_delivery_stream(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ActivityFailed(f"delivery stream {stream}: {code or exc}") from None
        out.update({t["Key"]: t.get("Value", "") for t in page.get("Tags") or []})
        if not page.get("HasMoreTags") or not page.get("Tags"):
            return out
        start = page["Tags"][-1]["Key"]


def _number(name: str, value: Any) -> float | None:
    """0, "" and None keep that limit as it is."""
    if value in (None, "", 0, "0"):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ActivityFailed(f"{name} must be a number, got {value!r}") from None
    if number <= 0:
        raise ActivityFailed(f"{name} must be > 0, got {value!r}")
    return number


def set_quota(delivery_stream_name: str, records_per_s: float | str | None = None,
              bytes_per_s: float | str | None = None,
              requests_per_s: float | str | None = None, saved_path: str | None = None,
              configuration: dict | None = None, secrets: dict | None = None
              ) -> dict[str, Any]:
    """Action: lower (or set) the stream's per-second quota; the quota tags as they were
    are saved for ``restore_quota``. Limits left at 0 keep their value."""
    wanted = {k: _number(k, v) for k, v in (("records_per_s", records_per_s),
                                            ("bytes_per_s", bytes_per_s),
                                            ("requests_per_s", requests_per_s))}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    if not wanted:
        raise ActivityFailed("set_quota: give at least one of records_per_s, bytes_per_s, "
                             "requests_per_s")
    firehose = client("firehose", configuration)
    before = {tag: value for tag, value in _tags(firehose, delivery_stream_name).items()
              if tag in QUOTA_TAGS.values()}
    path = state_path("firehose-quota", delivery_stream_name, saved_path)
    remember(path, {"stream": delivery_stream_name, "tags": before})
    firehose.tag_delivery_stream(DeliveryStreamName=delivery_stream_name, Tags=[
        {"Key": QUOTA_TAGS[k], "Value": f"{v:g}"} for k, v in wanted.items()])
    was = before or "the region default"
    logger.info(f"delivery stream {delivery_stream_name}: quota {wanted} (was {was})")
    return {"stream": delivery_stream_name, "quota": wanted, "before": before,
            "saved": str(path)}


def restore_quota(delivery_stream_name: str, saved_path: str | None = None,
                  configuration: dict | None = None, secrets: dict | None = None
                  ) -> dict[str, Any]:
    """Rollback: the quota tags exactly as ``set_quota`` found them (nothing to do when
    no change was made)."""
    path = state_path("firehose-quota", delivery_stream_name, saved_path)
    saved = recall(path)
    if saved is None:
        logger.info(f"delivery stream {delivery_stream_name}: no saved quota, nothing to "
                    "restore")
        return {"stream": delivery_stream_name, "restored": False}
    before = saved["tags"]
    firehose = client("firehose", configuration)
    now = _tags(firehose, delivery_stream_name)
    extra = [tag for tag in QUOTA_TAGS.values() if tag in now and tag not in before]
    if extra:
        firehose.untag_delivery_stream(DeliveryStreamName=delivery_stream_name, TagKeys=extra)
    changed = [{"Key": k, "Value": v} for k, v in before.items() if now.get(k) != v]
    if changed:
        firehose.tag_delivery_stream(DeliveryStreamName=delivery_stream_name, Tags=changed)
    forget(path)
    logger.info(f"delivery stream {delivery_stream_name}: quota restored")
    return {"stream": delivery_stream_name, "restored": True, "tags": before}


def stream_active(delivery_stream_name: str, configuration: dict | None = None,
                  secrets: dict | None = None) -> bool:
    """Probe: the delivery stream exists and is ACTIVE (it takes records)."""
    try:
        desc = client("firehose", configuration).describe_delivery_stream(
            DeliveryStreamName=delivery_stream_name)["DeliveryStreamDescription"]
    except ClientError:
        return False
    return desc.get("DeliveryStreamStatus") == "ACTIVE"
