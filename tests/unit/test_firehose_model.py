"""The sandbox Firehose's rules (quota, limits, buffering, key layout, delivery failure,
metrics), on an injected clock: what a producer and a reader of S3 would notice."""

from __future__ import annotations

import gzip
import re

import pytest

from peakready.sandbox.aws.firehose import (
    Destination,
    Firehose,
    FirehoseError,
    Quota,
    render_prefix,
)

T0 = 1_764_230_400.0  # 2025-11-27 08:00:00 UTC


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def hose(writes: list, interval_s: float = 60, size_mb: int = 5, scale: float = 1 / 12,
         deny: list | None = None) -> tuple[Firehose, Clock]:
    clock = Clock()

    def writer(bucket: str, key: str, body: bytes) -> None:
        if deny:
            raise PermissionError("AccessDenied")
        writes.append((bucket, key, body))

    fh = Firehose(writer, "eu-central-1", scale, clock, retry_s=1.0)
    fh.configure("logs", Destination("b", prefix="api-logs/", size_bytes=size_mb * 2**20,
                                     interval_s=interval_s, gzip=True))
    return fh, clock


def test_quota_above_limit_answers_failed_entries_not_an_error():
    fh, _ = hose([])
    fh.set_quota_tags("logs", {"peakready:quota-records-per-s": "300"})
    results = fh.put_batch("logs", [b"x\n"] * 500)
    failed = [r for r in results if r is not None]
    assert len(failed) == 200  # records 301..500 of the same second
    assert results[299] is None and results[300]["ErrorCode"] == "ServiceUnavailableException"
    assert failed[0]["ErrorMessage"] == "Slow down."
    datums = {d["MetricName"]: d["Value"] for d in fh.period_datums(T0 + 5)}
    assert datums["IncomingRecords"] == 300 and datums["ThrottledRecords"] == 200
    assert datums["RecordsPerSecondLimit"] == 300


def test_quota_resets_each_second_and_requests_per_second_fail_the_call():
    fh, clock = hose([])
    fh.set_quota_tags("logs", {"peakready:quota-requests-per-s": "2"})
    fh.put_batch("logs", [b"a"])
    fh.put_batch("logs", [b"a"])
    with pytest.raises(FirehoseError) as err:
        fh.put_batch("logs", [b"a"])
    assert err.value.code == "ServiceUnavailableException" and err.value.status == 500
    clock.t += 1.0
    assert fh.put_batch("logs", [b"a"]) == [None]
    fh.set_quota_tags("logs", {})  # tag removed: the region's default again
    assert fh.streams["logs"].quota == Quota.for_region("eu-central-1")


def test_call_limits_are_aws_validation_errors():
    fh, _ = hose([])
    with pytest.raises(FirehoseError, match="less than or equal to 500"):
        fh.put_batch("logs", [b"a"] * 501)
    with pytest.raises(FirehoseError, match="4194304"):
        fh.put_batch("logs", [b"a" * 1_000_000] * 5)
    with pytest.raises(FirehoseError) as err:
        fh.put_batch("nope", [b"a"])
    assert err.value.code == "ResourceNotFoundException"


def test_buffer_waits_for_the_scaled_interval_then_writes_one_gzip_object():
    writes: list = []
    fh, clock = hose(writes, interval_s=60)  # x 1/12: 5 s in the sandbox
    fh.put_batch("logs", [b'{"n":1}\n', b'{"n":2}\n'])
    clock.t += 2.0
    fh.put_batch("logs", [b'{"n":3}\n'])
    clock.t += 2.9
    assert fh.tick() == 0 and not writes
    clock.t += 0.2  # 5.1 s after the oldest record
    assert fh.tick() == 1
    bucket, key, body = writes[0]
    assert bucket == "b"
    assert gzip.decompress(body) == b'{"n":1}\n{"n":2}\n{"n":3}\n'
    assert re.fullmatch(r"api-logs/2025/11/27/08/logs-1-2025-11-27-08-00-05-[0-9a-f-]{36}\.gz",
                        key), key
    datums = {d["MetricName"]: d["Value"] for d in fh.period_datums(clock.t)}
    assert datums["DeliveryToS3.Records"] == 3 and datums["DeliveryToS3.Success"] == 1.0
    assert datums["DeliveryToS3.DataFreshness"] == 0.0


def test_size_hint_flushes_before_the_interval():
    writes: list = []
    fh, _ = hose(writes, interval_s=900, size_mb=1)
    fh.set_quota_tags("logs", {"peakready:quota-bytes-per-s": str(5 * 2**20)})
    for _ in range(3):
        fh.put_batch("logs", [b"y" * 200_000] * 2)  # 1.2 MB in all
    assert fh.tick() == 1
    assert len(gzip.decompress(writes[0][2])) == 1_000_000  # 5 records fit the 1 MiB hint


def test_refused_delivery_keeps_records_and_freshness_grows_until_allowed():
    deny = [True]
    writes: list = []
    fh, clock = hose(writes, interval_s=12, deny=deny)  # 1 s here
    fh.put_batch("logs", [b"r\n"] * 10)
    clock.t += 1.5
    assert fh.tick() == 0
    clock.t += 10
    fh.tick()
    datums = {d["MetricName"]: d["Value"] for d in fh.period_datums(clock.t)}
    assert datums["DeliveryToS3.Success"] == 0.0
    assert datums["DeliveryToS3.DataFreshness"] == pytest.approx(11.5)
    deny.clear()  # rollback: the bucket accepts writes again
    clock.t += 1.0
    assert fh.tick() == 1
    assert gzip.decompress(writes[0][2]) == b"r\n" * 10


def test_prefix_expressions_follow_aws():
    when = T0 + 3723  # 09:02:03
    assert render_prefix("logs/", when) == "logs/2025/11/27/09/"
    assert render_prefix("x/!{timestamp:yyyy-MM-dd}/", when) == "x/2025-11-27/"
    assert render_prefix("e/!{firehose:error-output-type}/", when,
                         "processing-failed").startswith("e/processing-failed/2025/11/27/09/")
    with pytest.raises(ValueError):
        render_prefix("!{partitionKeyFromQuery:k}/", when)
