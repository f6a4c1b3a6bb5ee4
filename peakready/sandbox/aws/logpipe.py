"""The API-log pipeline of the seed architecture in the sandbox: Firehose -> S3 -> Glue
-> Athena, with real behaviour behind moto's API (research/logpipe-anchors.md).

``LogPipe`` belongs to the control plane (``plane.logpipe``): it creates the resources
with plain boto3 (what a user runs on AWS), owns the Firehose model (buffering, quota,
delivery into moto's S3), publishes ``AWS/Firehose`` into the plane's metric store every
period, and runs Athena queries with DuckDB in a thread each. The grafts that route
moto's actions here are in ``logpipe_ext.py``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peakready.sandbox.aws import athena_engine, bootstrap, names
from peakready.sandbox.aws.firehose import MIB, QUOTA_TAGS, Destination, Firehose

log = logging.getLogger(__name__)

STREAM = names.DELIVERY_STREAM
BUCKET = names.LOG_BUCKET
PREFIX = "api-logs/"
ERROR_PREFIX = "api-logs-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
RESULTS_BUCKET = "peakready-athena-results"
DATABASE = "peakready"
TABLE = "api_logs"
WORKGROUP = "peakready"
BUFFER_INTERVAL_S = 60  # AWS seconds; x interval_scale in the sandbox
BUFFER_SIZE_MB = 5
TICK_S = 0.1
COLUMNS = [("request_id", "string"), ("ts", "string"), ("method", "string"),
           ("route", "string"), ("status", "int"), ("latency_ms", "double"),
           ("instance", "string"), ("client", "string"), ("user_agent", "string")]


def resources() -> dict[str, str]:
    """What the plan's ``api_logs`` section names by default in the sandbox."""
    return {"delivery_stream": STREAM, "bucket": BUCKET, "prefix": PREFIX,
            "database": DATABASE, "table": TABLE, "workgroup": WORKGROUP,
            "output_location": f"s3://{RESULTS_BUCKET}/"}


def quota_tags(raw: str | None = None) -> list[dict[str, str]]:
    """``PEAKREADY_FIREHOSE_QUOTA`` (JSON ``{"records_per_s", "bytes_per_s",
    "requests_per_s"}``, any subset) as the stream's sandbox-only quota tags."""
    raw = os.environ.get("PEAKREADY_FIREHOSE_QUOTA", "") if raw is None else raw
    if not raw.strip():
        return []
    values = json.loads(raw)
    by_field = {v: k for k, v in QUOTA_TAGS.items()}
    unknown = set(values) - set(by_field)
    if unknown:
        raise ValueError(f"PEAKREADY_FIREHOSE_QUOTA: unknown keys {sorted(unknown)} "
                         f"(known: {sorted(by_field)})")
    return [{"Key": by_field[k], "Value": str(float(v))} for k, v in values.items()]


def create(endpoint_url: str) -> None:
    """Bucket, delivery stream, Glue database and table (partition projection on the
    Firehose key layout), Athena workgroup: plain boto3, as on AWS."""
    s3 = bootstrap.client("s3", endpoint_url)
    for bucket in (BUCKET, RESULTS_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={
            "LocationConstraint": names.REGION})
    role = f"arn:aws:iam::{names.ACCOUNT_ID}:role/peakready-firehose"
    bootstrap.client("firehose", endpoint_url).create_delivery_stream(
        DeliveryStreamName=STREAM, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": role, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": PREFIX,
            "ErrorOutputPrefix": ERROR_PREFIX, "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": BUFFER_SIZE_MB,
                               "IntervalInSeconds": BUFFER_INTERVAL_S}},
        **({"Tags": tags} if (tags := quota_tags()) else {}))
    glue = bootstrap.client("glue", endpoint_url)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    glue.create_table(DatabaseName=DATABASE, TableInput={
        "Name": TABLE, "TableType": "EXTERNAL_TABLE",
        "PartitionKeys": [{"Name": "datehour", "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in COLUMNS],
            "Location": f"s3://{BUCKET}/{PREFIX}",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}},
        "Parameters": {"classification": "json", "compressionType": "gzip",
                       "projection.enabled": "true", "projection.datehour.type": "date",
                       "projection.datehour.format": "yyyy/MM/dd/HH",
                       "projection.datehour.range": "2021/01/01/00,NOW",
                       "projection.datehour.interval": "1",
                       "projection.datehour.interval.unit": "HOURS",
                       "storage.location.template":
                           f"s3://{BUCKET}/{PREFIX}" + "${datehour}/"}})
    bootstrap.client("athena", endpoint_url).create_work_group(
        Name=WORKGROUP, Configuration={"ResultConfiguration": {
            "OutputLocation": f"s3://{RESULTS_BUCKET}/"}})


@dataclass
class Execution:
    id: str
    query: str
    database: str
    output: str
    workgroup: str
    submitted: float
    state: str = "QUEUED"
    reason: str = ""
    started: float = 0.0
    completed: float = 0.0
    result: athena_engine.Result | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LogPipe:
    def __init__(self, plane: Any, interval_scale: float, period_s: float) -> None:
        self.plane = plane
        self.period_s = period_s
        self.firehose = Firehose(self._write_s3, names.REGION, interval_scale, time.time)
        self.executions: dict[str, Execution] = {}
        self._cache = Path(tempfile.mkdtemp(prefix="peakready-athena-"))
        self.engine = athena_engine.Engine(self._cache, self._list_s3, self._read_s3)
        self._stop = threading.Event()
        self._created = threading.Event()
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None

    # ---- moto's S3, in-process -----------------------------------------------------
    @staticmethod
    def _s3():
        from moto.s3.models import s3_backends

        return s3_backends[names.ACCOUNT_ID]["global"]

    def _write_s3(self, bucket: str, key: str, body: bytes) -> None:
        """Firehose's S3 put: refused when the bucket is gone or its policy denies it."""
        from moto.iam.access_control import PermissionResult

        from peakready.sandbox.aws import extensions

        with extensions.LOCK:
            backend = self._s3()
            found = backend.buckets.get(bucket)
            if found is None:
                raise PermissionError(f"NoSuchBucket: {bucket}")
            verdict = found.get_permission("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}")
            if verdict == PermissionResult.DENIED:
                raise PermissionError(f"AccessDenied: s3:PutObject on {bucket}/{key}")
            backend.put_object(bucket, key, body)

    def _list_s3(self, bucket: str, prefix: str) -> list[tuple[str, int, str]]:
        from peakready.sandbox.aws import extensions

        with extensions.LOCK:
            found = self._s3().buckets.get(bucket)
            if found is None:
                raise athena_engine.QueryFailed(
                    f"HIVE_CANNOT_OPEN_SPLIT: bucket {bucket} does not exist")
            return [(k, o.size, o.etag) for k, o in list(found.keys.items())
                    if k.startswith(prefix) and o is not None]

    def _read_s3(self, bucket: str, key: str) -> bytes:
        from peakready.sandbox.aws import extensions

        with extensions.LOCK:
            return self._s3().get_object(bucket, key).value

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, wait: bool = True) -> None:
        """Create the resources and start delivering; ``wait=False`` does it in the
        background (the sandbox boots its web tier meanwhile: instances take
        ``boot_delay_s`` before any shopper's request, so the stream exists by then)."""
        self._thread = threading.Thread(target=self._run, name="logpipe", daemon=True)
        self._thread.start()
        if wait:
            self._created.wait(60)
            self.ready()

    def ready(self) -> bool:
        if self._error is not None:
            raise RuntimeError(f"log pipeline bootstrap failed: {self._error}")
        return self._created.is_set()

    def _run(self) -> None:
        try:
            create(self.plane.endpoint_url)
        except Exception as exc:  # noqa: BLE001 - reported by ready()
            log.exception("log pipeline bootstrap failed")
            self._error = exc
            return
        self._created.set()
        self._loop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        import shutil

        shutil.rmtree(self._cache, ignore_errors=True)

    def storefront_settings(self) -> dict:
        """What each storefront instance needs to reach the stream."""
        return {"stream": STREAM, "endpoint_url": self.plane.endpoint_url,
                "region": names.REGION, "access_key_id": names.ACCESS_KEY_ID,
                "secret_access_key": names.SECRET_ACCESS_KEY}

    def _loop(self) -> None:
        period = self.period_s
        next_boundary = (int(time.time() // period) + 1) * period
        while not self._stop.wait(TICK_S):
            try:
                self.firehose.tick()
                now = time.time()
                if now >= next_boundary:
                    for datum in self.firehose.period_datums(next_boundary):
                        self.plane.store.put("AWS/Firehose", datum, next_boundary - period)
                    next_boundary += period
            except Exception:  # noqa: BLE001 - keep delivering; logged
                log.exception("log pipeline tick failed")

    def status(self) -> dict:
        return {"streams": self.firehose.describe(), "resources": resources()}

    # ---- configuration from moto's stream ---------------------------------------------
    def configure_from_moto(self, name: str) -> None:
        from moto.firehose.models import firehose_backends

        backend = firehose_backends[names.ACCOUNT_ID][names.REGION]
        stream = backend.delivery_streams.get(name)
        if stream is None:
            self.firehose.drop(name)
            return
        dest = stream.destinations[0].get("ExtendedS3") or stream.destinations[0].get("S3")
        if dest is None:
            return
        hints = dest.get("BufferingHints") or {}
        self.firehose.configure(name, Destination(
            bucket=str(dest.get("BucketARN", "")).split(":::", 1)[-1],
            prefix=dest.get("Prefix") or "", error_prefix=dest.get("ErrorOutputPrefix") or "",
            size_bytes=int(hints.get("SizeInMBs", 5)) * MIB,
            interval_s=float(hints.get("IntervalInSeconds", 300)),
            gzip=(dest.get("CompressionFormat") or "UNCOMPRESSED") == "GZIP",
            extension=dest.get("FileExtension") or ""), version=int(stream.version_id))
        tags = {t["Key"]: t["Value"] for t in backend.tagger.list_tags_for_resource(
            stream.delivery_stream_arn).get("Tags", [])}
        self.firehose.set_quota_tags(name, tags)

    # ---- Athena ----------------------------------------------------------------------
    def start_query(self, query: str, database: str, output: str, workgroup: str) -> str:
        qid = str(uuid.uuid4())
        ex = Execution(qid, query, database, output, workgroup, time.time())
        self.executions[qid] = ex
        threading.Thread(target=self._execute, args=(ex,), name=f"athena-{qid[:8]}",
                         daemon=True).start()
        return qid

    def _glue_tables(self, database: str) -> list[athena_engine.Table]:
        from moto.glue.models import glue_backends

        from peakready.sandbox.aws import extensions

        with extensions.LOCK:
            glue = glue_backends[names.ACCOUNT_ID][names.REGION]
            db = glue.databases.get(database)
            if db is None:
                raise athena_engine.QueryFailed(
                    f"SCHEMA_NOT_FOUND: line 1:1: Schema '{database}' does not exist")
            out = []
            for table in db.tables.values():
                spec = table.as_dict()
                sd = spec.get("StorageDescriptor") or {}
                params = spec.get("Parameters") or {}
                out.append(athena_engine.Table(
                    table.name, sd.get("Location", ""),
                    [(c["Name"], c.get("Type", "string")) for c in sd.get("Columns", [])],
                    [k["Name"] for k in spec.get("PartitionKeys", [])],
                    compressed=params.get("compressionType", "gzip") != "none"))
            return out

    def _execute(self, ex: Execution) -> None:
        ex.state, ex.started = "RUNNING", time.time()
        try:
            ex.result = self.engine.run(ex.query, ex.database, self._glue_tables(ex.database))
            self._write_results(ex)
            state, reason = "SUCCEEDED", ""
        except athena_engine.QueryFailed as exc:
            state, reason = "FAILED", exc.reason
        except Exception as exc:  # noqa: BLE001 - an engine bug is a failed query, named
            log.exception("athena query %s failed", ex.id)
            state, reason = "FAILED", f"GENERIC_INTERNAL_ERROR: {exc}"
        # completion time first: a poll that sees the final state reads real statistics
        ex.completed = time.time()
        ex.reason, ex.state = reason, state

    def _write_results(self, ex: Execution) -> None:
        """``<OutputLocation>/<id>.csv``: header row, every value quoted (as Athena)."""
        if not ex.output:
            return
        bucket, prefix = athena_engine.split_s3(ex.output)
        if prefix and not prefix.endswith("/"):
            prefix += "/"

        body = ex.result.csv()
        from peakready.sandbox.aws import extensions

        with extensions.LOCK:
            if self._s3().buckets.get(bucket) is None:
                raise athena_engine.QueryFailed(
                    f"Unable to verify/create output bucket {bucket}")
            self._s3().put_object(bucket, f"{prefix}{ex.id}.csv", body)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Standalone:
    """The log pipeline on its own moto endpoint (no web or data tier): for the batcher
    tests and the benchmarks, which need the real Firehose/S3/Glue/Athena behaviour but
    not a storefront fleet. ``with Standalone() as ep: ep.endpoint_url``."""

    def __init__(self, interval_scale: float = 1 / 12, period_s: int = 5) -> None:
        from peakready.sandbox.aws.metricstore import MetricStore

        self.store = MetricStore()
        self.endpoint_url = ""
        self.logpipe = LogPipe(self, interval_scale, period_s)
        self._server = None

    @staticmethod
    def now() -> float:
        return time.time()

    def __enter__(self) -> Standalone:
        from moto.server import ThreadedMotoServer

        from peakready.sandbox.aws import extensions

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        extensions.attach(self)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.logpipe.start()
        return self

    def __exit__(self, *exc: object) -> None:
        from peakready.sandbox.aws import extensions

        self.logpipe.stop()
        if self._server:
            self._server.stop()
        extensions.detach(self)
        from moto.core.base_backend import BackendDict

        BackendDict.reset()  # the next Standalone in this process starts empty
