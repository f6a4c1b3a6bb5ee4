"""One region table per process for moto's import.

moto builds its region lists at import time with ``boto3.Session().get_available_regions``,
a new Session each call (three for EC2 alone, one more per service backend), and every new
Session parses the service's whole botocore model again to read one field (EC2's model is
megabytes of JSON): about 2 CPU-seconds of every sandbox start went there. The answers
depend only on the installed botocore data, so they are looked up once, in one shared
Session, and kept.
"""

from __future__ import annotations

import functools

_SHARED: list = []


def share_lookups() -> None:
    """Make ``boto3.session.Session.get_available_regions`` answer from one shared Session
    and a cache (idempotent). Call before moto is imported."""
    import boto3.session

    if getattr(boto3.session.Session.get_available_regions, "_peakready_shared", False):
        return

    @functools.cache
    def regions(service_name: str, partition_name: str, allow_non_regional: bool) -> tuple:
        if not _SHARED:
            _SHARED.append(boto3.session.Session())
        return tuple(_SHARED[0]._session.get_available_regions(
            service_name, partition_name, allow_non_regional))

    def get_available_regions(self, service_name: str, partition_name: str = "aws",
                              allow_non_regional: bool = False) -> list[str]:
        return list(regions(service_name, partition_name, allow_non_regional))

    get_available_regions._peakready_shared = True
    boto3.session.Session.get_available_regions = get_available_regions
