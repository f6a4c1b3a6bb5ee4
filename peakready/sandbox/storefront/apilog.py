"""The storefront's API log: one JSON record per request, shipped through Firehose
``PutRecordBatch`` by a background thread.

A shopper's request only appends to an in-memory queue (``log``): it never waits for
Firehose and never fails because of it. When the queue is full (``max_queue``) the
record is dropped and counted, the way a bounded agent sheds load rather than eat the
instance's memory.

The sender takes up to 500 records / 4 MiB per call (the PutRecordBatch limits), reads
``FailedPutCount`` and the per-record ``ErrorCode``, and puts only the failed entries back
with exponential backoff (``retries: true``). With ``retries: false`` it behaves like the
common production bug: partial failures are ignored and the records are lost (counted
in ``lost``), as are whole-call errors once the SDK's own retries gave up.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

MAX_RECORDS = 500
MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ApiLogSettings:
    stream: str = ""
    endpoint_url: str = ""
    region: str = "eu-central-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    retries: bool = True
    flush_s: float = 1.0  # how long a record may wait for a fuller batch (cost: ~1 call/s)
    max_queue: int = 200_000
    backoff_s: float = 0.1  # first retry delay, doubled per attempt
    max_backoff_s: float = 5.0
    client: str = "http"  # "http": firehose_http (signed raw request); "boto3": the SDK

    @property
    def enabled(self) -> bool:
        return bool(self.stream)


KEYS = set(ApiLogSettings.__dataclass_fields__)
CLIENTS = ("http", "boto3")


def settings(data: Mapping[str, Any] | None) -> ApiLogSettings:
    """From the storefront config's ``api_logs`` mapping; unknown keys are an error."""
    data = dict(data or {})
    unknown = set(data) - KEYS
    if unknown:
        raise ValueError(f"storefront config: unknown api_logs keys {sorted(unknown)}")
    if data.get("client", "http") not in CLIENTS:
        raise ValueError(f"storefront config: api_logs.client must be one of {CLIENTS}, "
                         f"got {data['client']!r}")
    return ApiLogSettings(**data)


def record(request_id: str, started: float, method: str, route: str, status: int,
           latency_ms: float, instance: str, client: str, user_agent: str) -> bytes:
    """One newline-terminated JSON record (Firehose does not add delimiters).

    Every request pays for this, so it is spelled out: the same bytes as ``json.dumps``
    of the record with compact separators (strings through json's own C escaper, the
    float as ``json`` writes it), a third of its cost; the time's second is formatted
    once per second."""
    return (f'{{"request_id":{_esc(request_id)},"ts":"{_iso_ms(started)}",'
            f'"method":{_esc(method)},"route":{_esc(route)},"status":{int(status)},'
            f'"latency_ms":{float.__repr__(round(float(latency_ms), 3))},'
            f'"instance":{_esc(instance)},"client":{_esc(client)},'
            f'"user_agent":{_esc(user_agent)}}}\n').encode()


_esc = json.encoder.encode_basestring_ascii  # what json.dumps uses (ensure_ascii)
# the last second formatted: (second, "YYYY-mm-ddTHH:MM:SS"), one tuple swapped whole so
# that threads formatting either side of a second's boundary never pair a second with
# another's text (a record 1 s off)
_second: tuple[int, str] = (-1, "")


def _iso_ms(ts: float) -> str:
    """``datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")`` with Z:
    microseconds rounded as datetime rounds them, then cut to milliseconds."""
    frac, whole = math.modf(ts)  # datetime's own rounding (half even, of the fraction)
    sec, us = int(whole), round(frac * 1e6)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    elif us < 0:
        sec, us = sec - 1, us + 1_000_000
    global _second
    cached = _second
    if cached[0] != sec:
        cached = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        _second = cached
    return f"{cached[1]}.{us // 1000:03d}Z"


def batches(queue: collections.deque, now: float) -> list[tuple[bytes, int]]:
    """Pop the next batch (records due by ``now``; <= 500 records and <= 4 MiB)."""
    out: list[tuple[bytes, int]] = []
    size = 0
    while queue and len(out) < MAX_RECORDS:
        data, attempt, not_before = queue[0]
        if not_before > now or size + len(data) > MAX_BYTES:
            break
        queue.popleft()
        out.append((data, attempt))
        size += len(data)
    return out


def _freeze() -> None:
    """The client's long-lived objects (botocore's modules; boto3's service models, ~10^5
    objects) out of the garbage collector's sight: without this every full collection
    walks them again, a cost every request would pay."""
    import gc

    gc.freeze()


class Batcher:
    """Owns the queue and the sender thread. ``put`` is a callable ``(records) ->
    response`` (a boto3 firehose ``put_record_batch`` bound to the stream)."""

    def __init__(self, cfg: ApiLogSettings, put: Callable[[list[bytes]], Mapping] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self.queue: collections.deque = collections.deque()
        self.retry_queue: collections.deque = collections.deque()
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.counts = {"logged": 0, "sent": 0, "accepted": 0, "failed_entries": 0,
                       "retried": 0, "lost": 0, "dropped": 0, "calls": 0, "call_errors": 0,
                       "unsent_at_stop": 0}
        self.in_flight = 0
        self.last_error = ""
        self._put = put or self._client_put()
        self._thread = threading.Thread(target=self._run, name="apilog-sender", daemon=True)

    def _client_put(self) -> Callable[[list[bytes]], Mapping]:
        if self.cfg.client == "http":
            from peakready.sandbox.storefront.firehose_http import FirehoseHttp

            put = FirehoseHttp(self.cfg.stream, self.cfg.region, self.cfg.endpoint_url,
                               self.cfg.access_key_id, self.cfg.secret_access_key,
                               timeout_s=10.0).put_record_batch
            _freeze()  # botocore's signer and credential chain: ~2x10^4 objects
            return put
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {"region_name": self.cfg.region, "config": Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2,
            read_timeout=10)}
        if self.cfg.endpoint_url:
            kwargs["endpoint_url"] = self.cfg.endpoint_url
        if self.cfg.access_key_id:
            kwargs["aws_access_key_id"] = self.cfg.access_key_id
            kwargs["aws_secret_access_key"] = self.cfg.secret_access_key
        client = boto3.client("firehose", **kwargs)
        _freeze()
        return lambda recs: client.put_record_batch(
            DeliveryStreamName=self.cfg.stream, Records=[{"Data": r} for r in recs])

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def log(self, data: bytes) -> None:
        """Never blocks: append, or drop when the queue is full."""
        if len(self.queue) + len(self.retry_queue) >= self.cfg.max_queue:
            self.counts["dropped"] += 1
            return
        self.queue.append((data, 0, 0.0))
        self.counts["logged"] += 1
        if len(self.queue) >= MAX_RECORDS:
            self.wake.set()

    def stats(self) -> dict:
        return dict(self.counts, queued=len(self.queue) + len(self.retry_queue) + self.in_flight,
                    retries=self.cfg.retries, last_error=self.last_error)

    def stop(self, drain_s: float = 2.0) -> None:
        """Send what is queued (for at most ``drain_s``), then end the thread; what is
        still unsent then is counted in ``unsent_at_stop`` (lost with the instance)."""
        deadline = self.clock() + drain_s
        while self.stats()["queued"] and self.clock() < deadline:
            self.wake.set()
            time.sleep(0.05)
        self.stop_event.set()
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=0.5)
        self.counts["unsent_at_stop"] = len(self.queue) + len(self.retry_queue)

    # ---- the sender ------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stop_event.is_set():
            self.wake.wait(self.cfg.flush_s)
            self.wake.clear()
            self.send_due()

    def send_due(self) -> int:
        """Send what is due now; returns calls made. Due retries go out; of the fresh
        records one batch per flush, more only while a full one (500) is waiting: under
        steady traffic the records that arrive during a call wait for the next flush
        instead of going out a few at a time (a call costs the instance about a
        millisecond of CPU whatever its size)."""
        calls = 0
        while True:
            now = self.clock()
            batch = batches(self.retry_queue, now)
            if not batch:
                if calls and len(self.queue) < MAX_RECORDS:
                    return calls
                batch = batches(self.queue, now)
            if not batch:
                return calls
            calls += 1
            self.in_flight = len(batch)
            try:
                self._send(batch)
            finally:
                self.in_flight = 0

    def _send(self, batch: list[tuple[bytes, int]]) -> None:
        self.counts["calls"] += 1
        self.counts["sent"] += len(batch)
        try:
            response = self._put([d for d, _ in batch])
        except Exception as exc:  # noqa: BLE001 - a failed call never reaches a shopper
            self.counts["call_errors"] += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            self._failed(batch)
            return
        failed = int(response.get("FailedPutCount") or 0)
        results = response.get("RequestResponses") or []
        if not failed:
            self.counts["accepted"] += len(batch)
            return
        self.counts["failed_entries"] += failed
        again = [entry for entry, res in zip(batch, results, strict=False) if res.get("ErrorCode")]
        self.counts["accepted"] += len(batch) - len(again)
        self.last_error = next((f"{r['ErrorCode']}: {r.get('ErrorMessage', '')}"
                                for r in results if r.get("ErrorCode")), "")
        self._failed(again)

    def _failed(self, entries: list[tuple[bytes, int]]) -> None:
        if not self.cfg.retries:
            self.counts["lost"] += len(entries)
            return
        now = self.clock()
        for data, attempt in entries:
            delay = min(self.cfg.max_backoff_s, self.cfg.backoff_s * (2 ** attempt))
            self.retry_queue.append((data, attempt + 1, now + delay))
        self.counts["retried"] += len(entries)
