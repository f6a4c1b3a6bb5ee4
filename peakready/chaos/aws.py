"""boto3 clients for Chaos Toolkit providers, and the polling loop they share.

The region comes from the experiment's ``aws_region`` configuration, else the
environment; the endpoint from ``AWS_ENDPOINT_URL`` (the sandbox), which boto3 honours.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from chaoslib.exceptions import ActivityFailed

T = TypeVar("T")


def client(service: str, configuration: dict[str, Any] | None = None) -> Any:
    region = (configuration or {}).get("aws_region") or os.environ.get(
        "AWS_REGION", os.environ.get("AWS_DEFAULT_REGION"))
    if not region:
        raise ActivityFailed("no AWS region: set aws_region or AWS_REGION")
    return boto3.client(service, region_name=region)


def wait_for(check: Callable[[], T | None], timeout_s: float, poll_s: float,
             what: str) -> tuple[T, float]:
    """Poll ``check`` until it returns something other than None; (value, waited s).

    Raises ActivityFailed after ``timeout_s`` so the journal records the fault as failed.
    """
    start = time.monotonic()
    while True:
        value = check()
        waited = time.monotonic() - start
        if value is not None:
            return value, round(waited, 3)
        if waited >= timeout_s:
            raise ActivityFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)
