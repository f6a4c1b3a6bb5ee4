"""Amazon Data Firehose (Direct PUT -> S3) as it behaves, for the sandbox endpoint.

moto writes one unbuffered, undelimited object per put and never throttles
(research/logpipe-anchors.md, section 4). This model is what the grafts in
``logpipe_ext.py`` hand ``PutRecord``/``PutRecordBatch`` to:

- **quota** per stream and per second (records/s, bytes/s, put requests/s; the default is
  the one of every region outside us-east-1/us-west-2/eu-west-1: 100,000 records/s,
  1 MiB/s, 1,000 requests/s). Above it a call is rejected whole with
  ``ServiceUnavailableException`` (requests/s) or answers HTTP 200 with
  ``FailedPutCount > 0`` and per-record ``ErrorCode`` (records/bytes), as AWS does.
- **limits** of one call: 500 records, 4 MiB, 1,000 KiB per record: ``InvalidArgumentException``.
- **buffering**: records wait until the stream's ``SizeInMBs`` or its ``IntervalInSeconds``
  (multiplied by ``interval_scale``, the sandbox's time compression) is reached, then go
  out as one object (gzip when ``CompressionFormat`` is GZIP) under AWS's key layout.
- **delivery failure**: a write the destination refuses keeps the records buffered and
  retries them every ``retry_s``; after ``retention_s`` they are lost (AWS: 24 h).
- **metrics**: what AWS/Firehose publishes per period (``period_datums``).

Pure Python with injected clock and writer, so its rules are tested without a server.
"""

from __future__ import annotations

import gzip
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Quota:
    """Per stream and per second; AWS raises the three together (docs: Firehose quotas)."""

    records_per_s: float = 100_000
    bytes_per_s: float = 1 * MIB
    requests_per_s: float = 1_000

    @classmethod
    def for_region(cls, region: str) -> Quota:
        if region in ("us-east-1", "us-west-2", "eu-west-1"):
            return cls(500_000, 5 * MIB, 2_000)
        return cls()


QUOTA_TAGS = {  # sandbox-only: a tag on the stream sets its quota (AWS has no API for it)
    "peakready:quota-records-per-s": "records_per_s",
    "peakready:quota-bytes-per-s": "bytes_per_s",
    "peakready:quota-requests-per-s": "requests_per_s",
}


class FirehoseError(Exception):
    """An error AWS answers for the whole call (``code``, HTTP ``status``)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Destination:
    bucket: str
    prefix: str = ""
    error_prefix: str = ""
    size_bytes: int = 5 * MIB
    interval_s: float = 300.0  # AWS seconds; scaled by the stream's interval_scale
    gzip: bool = False
    extension: str = ""


@dataclass
class _Counters:
    incoming_records: int = 0
    incoming_bytes: int = 0
    incoming_requests: int = 0
    throttled_records: int = 0
    delivered_records: int = 0
    delivered_bytes: int = 0
    puts: int = 0
    puts_ok: int = 0
    lost_records: int = 0


@dataclass
class Stream:
    name: str
    destination: Destination
    quota: Quota
    interval_scale: float
    version: int = 1
    buffer: list[tuple[float, bytes]] = field(default_factory=list)
    buffered_bytes: int = 0
    second: int = -1
    used: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    counters: _Counters = field(default_factory=_Counters)
    next_attempt: float = 0.0
    failing_since: float | None = None
    last_error: str = ""

    def interval(self) -> float:
        return self.destination.interval_s * self.interval_scale


Writer = Callable[[str, str, bytes], None]
"""``(bucket, key, body)``; raises to refuse the write (access denied, no bucket)."""


def render_prefix(template: str, when: float, error_type: str | None = None) -> str:
    """AWS's prefix expressions: ``!{timestamp:<java format>}`` (UTC), ``!{firehose:
    random-string}`` (11 chars), ``!{firehose:error-output-type}``; a prefix without a
    timestamp expression gets ``yyyy/MM/dd/HH/`` appended (docs: s3-prefixes)."""
    dt = datetime.fromtimestamp(when, UTC)
    has_ts = "!{timestamp:" in template

    def one(match: re.Match) -> str:
        ns, _, arg = match.group(1).partition(":")
        if ns == "timestamp":
            return _java_format(arg, dt)
        if match.group(1) == "firehose:random-string":
            return secrets.token_hex(6)[:11]
        if match.group(1) == "firehose:error-output-type" and error_type:
            return error_type
        raise ValueError(f"unsupported prefix expression !{{{match.group(1)}}}")

    out = re.sub(r"!\{([^}]*)\}", one, template)
    if not has_ts:
        out += dt.strftime("%Y/%m/%d/%H/")
    return out


def _java_format(fmt: str, dt: datetime) -> str:
    for java, py in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"),
                     ("ss", "%S")):
        fmt = fmt.replace(java, py)
    return dt.strftime(fmt)


class Firehose:
    """Every delivery stream of the sandbox account; thread-safe."""

    def __init__(self, writer: Writer, region: str, interval_scale: float,
                 clock: Callable[[], float], retry_s: float = 1.0,
                 retention_s: float = 24 * 3600.0) -> None:
        self.writer = writer
        self.region = region
        self.interval_scale = interval_scale
        self.clock = clock
        self.retry_s = retry_s
        self.retention_s = retention_s
        self.streams: dict[str, Stream] = {}
        self.lock = threading.RLock()
        self.delivered: list[dict] = []  # every object written: key, records, at

    # ---- configuration -------------------------------------------------------------
    def configure(self, name: str, destination: Destination, version: int = 1) -> Stream:
        with self.lock:
            stream = self.streams.get(name)
            if stream is None:
                stream = Stream(name, destination, Quota.for_region(self.region),
                                self.interval_scale, version)
                self.streams[name] = stream
            else:
                stream.destination, stream.version = destination, version
            return stream

    def drop(self, name: str) -> None:
        with self.lock:
            self.streams.pop(name, None)

    def set_quota_tags(self, name: str, tags: dict[str, str]) -> None:
        """Apply ``peakready:quota-*`` tags; removing a tag restores the region default."""
        with self.lock:
            stream = self.streams.get(name)
            if stream is None:
                return
            values = {f: getattr(Quota.for_region(self.region), f) for f in QUOTA_TAGS.values()}
            for key, attr in QUOTA_TAGS.items():
                if key in tags:
                    values[attr] = float(tags[key])
            stream.quota = Quota(**values)

    # ---- ingestion -------------------------------------------------------------------
    def put_batch(self, name: str, records: list[bytes]) -> list[dict | None]:
        """Per record ``None`` (accepted) or ``{"ErrorCode", "ErrorMessage"}``; raises
        ``FirehoseError`` for what fails the whole call."""
        if not records:
            raise FirehoseError("InvalidArgumentException",
                                "Records must contain at least one record", 400)
        if len(records) > MAX_BATCH_RECORDS:
            raise FirehoseError("InvalidArgumentException",
                                f"1 validation error detected: Value at 'records' failed to "
                                f"satisfy constraint: Member must have length less than or "
                                f"equal to {MAX_BATCH_RECORDS}", 400)
        total = sum(len(r) for r in records)
        if total > MAX_BATCH_BYTES:
            raise FirehoseError("InvalidArgumentException",
                                f"Records size {total} exceeds the limit of {MAX_BATCH_BYTES} "
                                "bytes per PutRecordBatch call", 400)
        big = next((i for i, r in enumerate(records) if len(r) > MAX_RECORD_BYTES), None)
        if big is not None:
            raise FirehoseError("InvalidArgumentException",
                                f"Record {big} size {len(records[big])} exceeds the limit of "
                                f"{MAX_RECORD_BYTES} bytes", 400)
        with self.lock:
            stream = self.streams.get(name)
            if stream is None:
                raise FirehoseError("ResourceNotFoundException",
                                    f"Firehose {name} under account was not found.", 400)
            now = self.clock()
            sec = int(now)
            if sec != stream.second:
                stream.second, stream.used = sec, [0.0, 0.0, 0.0]
            q, used, c = stream.quota, stream.used, stream.counters
            if used[2] + 1 > q.requests_per_s:
                c.throttled_records += len(records)
                raise FirehoseError("ServiceUnavailableException",
                                    "Slow down. Back off and retry: the stream's throughput "
                                    "limits may have been exceeded.", 500)
            used[2] += 1
            c.incoming_requests += 1
            results: list[dict | None] = []
            for data in records:
                if used[0] + 1 > q.records_per_s or used[1] + len(data) > q.bytes_per_s:
                    results.append({"ErrorCode": "ServiceUnavailableException",
                                    "ErrorMessage": "Slow down."})
                    c.throttled_records += 1
                    continue
                used[0] += 1
                used[1] += len(data)
                stream.buffer.append((now, data))
                stream.buffered_bytes += len(data)
                c.incoming_records += 1
                c.incoming_bytes += len(data)
                results.append(None)
            return results

    # ---- delivery --------------------------------------------------------------------
    def tick(self) -> int:
        """Deliver every stream whose buffer is due; returns objects written."""
        written = 0
        with self.lock:
            streams = list(self.streams.values())
        for stream in streams:
            while self._due(stream):
                if not self._deliver(stream):
                    break
                written += 1
        return written

    def _due(self, stream: Stream) -> bool:
        with self.lock:
            if not stream.buffer:
                return False
            now = self.clock()
            if now < stream.next_attempt:
                return False
            return (stream.buffered_bytes >= stream.destination.size_bytes
                    or now - stream.buffer[0][0] >= stream.interval())

    def _deliver(self, stream: Stream) -> bool:
        with self.lock:
            take, size = 0, 0
            for _, data in stream.buffer:
                if take and size + len(data) > stream.destination.size_bytes:
                    break
                take += 1
                size += len(data)
            batch = stream.buffer[:take]
            dest = stream.destination
            now = self.clock()
            oldest = batch[0][0]
            body = b"".join(d for _, d in batch)
            stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d-%H-%M-%S")
            ext = dest.extension or (".gz" if dest.gzip else "")
            key = (render_prefix(dest.prefix, oldest)
                   + f"{stream.name}-{stream.version}-{stamp}-{uuid.uuid4()}{ext}")
        payload = gzip.compress(body, compresslevel=6) if dest.gzip else body
        try:
            self.writer(dest.bucket, key, payload)
        except Exception as exc:  # noqa: BLE001 - any refusal is a failed S3 put
            with self.lock:
                stream.counters.puts += 1
                stream.last_error = f"{type(exc).__name__}: {exc}"
                stream.failing_since = stream.failing_since or now
                stream.next_attempt = now + self.retry_s
                expired = [i for i, (ts, _) in enumerate(stream.buffer)
                           if now - ts > self.retention_s]
                if expired:
                    n = expired[-1] + 1
                    stream.counters.lost_records += n
                    stream.buffered_bytes -= sum(len(d) for _, d in stream.buffer[:n])
                    del stream.buffer[:n]
            return False
        with self.lock:
            del stream.buffer[:take]
            stream.buffered_bytes -= size
            c = stream.counters
            c.puts += 1
            c.puts_ok += 1
            c.delivered_records += take
            c.delivered_bytes += size
            stream.failing_since, stream.last_error = None, ""
            self.delivered.append({"stream": stream.name, "bucket": dest.bucket, "key": key,
                                   "records": take, "at": now, "oldest": oldest})
            del self.delivered[:-1000]
        return True

    # ---- metrics ---------------------------------------------------------------------
    def period_datums(self, now: float) -> list[dict]:
        """AWS/Firehose MetricData members for the period that just ended, per stream;
        counters restart. DataFreshness is the age of the oldest record still buffered
        (0 when everything is delivered); Success is omitted when nothing was put."""
        out = []
        with self.lock:
            for stream in self.streams.values():
                c, stream.counters = stream.counters, _Counters()
                dims = [{"Name": "DeliveryStreamName", "Value": stream.name}]
                fresh = now - stream.buffer[0][0] if stream.buffer else 0.0
                values = [
                    ("IncomingRecords", "Count", c.incoming_records),
                    ("IncomingBytes", "Bytes", c.incoming_bytes),
                    ("IncomingPutRequests", "Count", c.incoming_requests),
                    ("ThrottledRecords", "Count", c.throttled_records),
                    ("DeliveryToS3.Records", "Count", c.delivered_records),
                    ("DeliveryToS3.Bytes", "Bytes", c.delivered_bytes),
                    ("DeliveryToS3.DataFreshness", "Seconds", round(fresh, 3)),
                    ("RecordsPerSecondLimit", "Count/Second", stream.quota.records_per_s),
                    ("BytesPerSecondLimit", "Bytes/Second", stream.quota.bytes_per_s),
                    ("PutRequestsPerSecondLimit", "Count/Second",
                     stream.quota.requests_per_s),
                ]
                if c.puts:
                    values.append(("DeliveryToS3.Success", "None", c.puts_ok / c.puts))
                out += [{"MetricName": m, "Dimensions": dims, "Unit": u, "Value": float(v)}
                        for m, u, v in values]
        return out

    def describe(self) -> dict:
        with self.lock:
            return {s.name: {"buffered_records": len(s.buffer),
                             "buffered_bytes": s.buffered_bytes,
                             "oldest_age_s": (self.clock() - s.buffer[0][0]) if s.buffer
                             else 0.0,
                             "quota": vars(s.quota), "interval_s": s.interval(),
                             "failing": s.last_error} for s in self.streams.values()}
