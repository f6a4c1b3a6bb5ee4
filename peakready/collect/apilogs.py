"""Collection source: the API logs of the run window, queried through Athena with plain
boto3 (the same calls against the sandbox and a real account), plus the delivery
stream's ``AWS/Firehose`` metrics. Written to ``api_logs/`` in the run folder
(docs/run-folder.md), judged by the ``log_pipeline`` check.

The plan names where the logs are (``checks.log_pipeline.athena``: database, table,
workgroup, output location; ``delivery_stream``). Before querying, collection waits (up
to ``wait_s``) until ``DeliveryToS3.DataFreshness`` says delivery has caught up with the
end of the window plus ``producer_lag_s``; how far it got is recorded (``caught_up_to``) so
analysis can tell final minutes from those still in flight. The lag is there because
DataFreshness only speaks for records Firehose already has: a producer holds each record
for a while first (the storefront's batcher: its flush interval, retries' backoff), so a
request made just before the end reaches the stream after it. ``peakready collect``
re-runs this later.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from peakready import runfolder
from peakready.sandbox.aws import names

DIR = "api_logs"
LANDED = f"{DIR}/landed.parquet"
MINUTES = f"{DIR}/minutes.parquet"
FIREHOSE = f"{DIR}/firehose.parquet"
SUMMARY = f"{DIR}/collect.json"
FIREHOSE_METRICS = {"IncomingRecords": "Sum", "IncomingBytes": "Sum",
                    "ThrottledRecords": "Sum", "DeliveryToS3.Records": "Sum",
                    "DeliveryToS3.DataFreshness": "Maximum", "DeliveryToS3.Success": "Average",
                    "RecordsPerSecondLimit": "Maximum", "BytesPerSecondLimit": "Maximum",
                    "PutRequestsPerSecondLimit": "Maximum"}
SANDBOX_DEFAULTS = {"database": "peakready", "table": "api_logs", "workgroup": "peakready",
                    "output_location": "s3://peakready-athena-results/",
                    "delivery_stream": names.DELIVERY_STREAM}
# the delivery time of each record: the timestamp in its object's name (Firehose layout
# <stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid>[.ext])
LANDED_EXPR = ("to_unixtime(date_parse(regexp_extract(\"$path\", "
               "'-(\\d{4}-\\d{2}-\\d{2}-\\d{2}-\\d{2}-\\d{2})-[0-9a-f-]{36}[^/]*$', 1), "
               "'%Y-%m-%d-%H-%i-%s'))")


def settings(check_cfg: Mapping[str, Any] | None, sandbox: bool) -> dict[str, Any] | None:
    """Where the logs are, from the plan's ``checks.log_pipeline``; None: not planned."""
    if not check_cfg:
        return None
    athena = dict(check_cfg.get("athena") or {})
    defaults = SANDBOX_DEFAULTS if sandbox else {}
    out = {k: athena.get(k, defaults.get(k)) for k in
           ("database", "table", "workgroup", "output_location")}
    out["delivery_stream"] = check_cfg.get("delivery_stream",
                                           defaults.get("delivery_stream"))
    out["wait_s"] = float(check_cfg.get("wait_s", 60.0 if sandbox else 900.0))
    out["producer_lag_s"] = float(check_cfg.get("producer_lag_s", 10.0 if sandbox else 60.0))
    return out


def _partition_bounds(start: float, end: float) -> tuple[str, str]:
    """The key hour is the arrival hour of each object's oldest record: widen by an hour."""
    fmt = "%Y/%m/%d/%H"
    lo = datetime.fromtimestamp(start, UTC) - timedelta(hours=1)
    hi = datetime.fromtimestamp(end, UTC) + timedelta(hours=1)
    return lo.strftime(fmt), hi.strftime(fmt)


def _window(ts: str, start: float, end: float) -> str:
    """The WHERE clause of the run window: its partitions, and its records by ``ts`` with
    the bounds in the records' resolution (their ``ts`` is cut to the millisecond, so a
    request a fraction of a millisecond after the start is written as before it: the
    start is floored and the end ceiled, or the window's edge requests are dropped)."""
    lo, hi = _partition_bounds(start, end)
    return (f"datehour BETWEEN '{lo}' AND '{hi}' "
            f"AND {ts} >= {math.floor(start * 1000) / 1000:.3f} "
            f"AND {ts} < {math.ceil(end * 1000) / 1000:.3f}")


def minutes_query(table: str, start: float, end: float, bucket_s: int = 60) -> str:
    """Per-bucket counts: records, distinct ids, and the worst landing lag."""
    ts = "to_unixtime(from_iso8601_timestamp(ts))"
    return (f"SELECT floor({ts} / {bucket_s}) * {bucket_s} AS bucket, count(*) AS records, "
            f"count(DISTINCT request_id) AS ids, max({LANDED_EXPR} - {ts}) AS max_lag_s "
            f"FROM {table} WHERE {_window(ts, start, end)} GROUP BY 1 ORDER BY 1")


def ids_query(table: str, start: float, end: float) -> str:
    """Every request id of the window, with its copies and first landing time."""
    ts = "to_unixtime(from_iso8601_timestamp(ts))"
    return (f"SELECT request_id, min({ts}) AS ts, count(*) AS copies, "
            f"min({LANDED_EXPR}) AS landed_ts, max(status) AS status FROM {table} "
            f"WHERE {_window(ts, start, end)} GROUP BY request_id")


class QueryError(Exception):
    pass


def run_query(athena: Any, sql: str, cfg: Mapping[str, Any], timeout_s: float = 120.0,
              poll_s: float = 0.2) -> dict[str, Any]:
    """Start, poll to a final state; returns the QueryExecution. FAILED/CANCELLED raise
    ``QueryError`` with Athena's StateChangeReason."""
    kwargs: dict[str, Any] = {"QueryString": sql,
                              "QueryExecutionContext": {"Database": cfg["database"]}}
    if cfg.get("workgroup"):
        kwargs["WorkGroup"] = cfg["workgroup"]
    if cfg.get("output_location"):
        kwargs["ResultConfiguration"] = {"OutputLocation": cfg["output_location"]}
    qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
    deadline = time.time() + timeout_s
    while True:
        ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        state = ex["Status"]["State"]
        if state == "SUCCEEDED":
            return ex
        if state in ("FAILED", "CANCELLED"):
            raise QueryError(ex["Status"].get("StateChangeReason") or state)
        if time.time() > deadline:
            raise QueryError(f"query {qid} still {state} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def results_frame(athena: Any, qid: str) -> pd.DataFrame:
    """Every row through GetQueryResults' paginator; row 1 of page 1 is the header."""
    columns: list[str] = []
    rows: list[list[str | None]] = []
    for n, page in enumerate(athena.get_paginator("get_query_results").paginate(
            QueryExecutionId=qid, PaginationConfig={"PageSize": 1000})):
        info = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        columns = [c["Name"] for c in info]
        data = [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
        if n == 0 and data and data[0] == columns:
            data = data[1:]
        rows += data
    return pd.DataFrame(rows, columns=columns)


def csv_frame(s3: Any, output_file: str) -> pd.DataFrame:
    """The query's result file (``<OutputLocation>/<id>.csv``): one GET instead of a page
    per 1,000 rows, what PyAthena and awswrangler do for large results."""
    bucket, _, key = output_file.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    # pyarrow's reader: ~10x pandas' on a million quoted rows; request_id stays text
    table = pacsv.read_csv(io.BytesIO(body), convert_options=pacsv.ConvertOptions(
        column_types={"request_id": pa.string()}))
    frame = table.to_pandas()
    if "request_id" in frame:  # a request without X-Request-Id (not the load's) logs ""
        frame["request_id"] = frame["request_id"].fillna("")
    return frame


def firehose_metrics(cloudwatch: Any, stream: str, start: float, end: float,
                     period: int) -> pd.DataFrame:
    """The stream's AWS/Firehose series, long format as metrics.parquet."""
    queries = [{"Id": f"m{i}", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/Firehose", "MetricName": metric,
                   "Dimensions": [{"Name": "DeliveryStreamName", "Value": stream}]},
        "Period": period, "Stat": stat}} for i, (metric, stat) in enumerate(
        FIREHOSE_METRICS.items())]
    rows = []
    names = list(FIREHOSE_METRICS.items())
    token = None
    while True:
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "ScanBy": "TimestampAscending",
                                  "StartTime": datetime.fromtimestamp(start, UTC),
                                  "EndTime": datetime.fromtimestamp(end, UTC)}
        if token:
            kwargs["NextToken"] = token
        out = cloudwatch.get_metric_data(**kwargs)
        for res in out["MetricDataResults"]:
            metric, stat = names[int(res["Id"][1:])]
            for ts, value in zip(res["Timestamps"], res["Values"], strict=True):
                rows.append({"ts": ts.timestamp(), "source": "cloudwatch",
                             "namespace": "AWS/Firehose", "metric": metric,
                             "dimensions": f"DeliveryStreamName={stream}", "stat": stat,
                             "period_s": period, "value": float(value)})
        token = out.get("NextToken")
        if not token:
            break
    return pd.DataFrame(rows, columns=["ts", "source", "namespace", "metric", "dimensions",
                                       "stat", "period_s", "value"])


def caught_up_to(metrics: pd.DataFrame) -> float | None:
    """Everything older than this instant has been delivered: the latest DataFreshness
    datapoint (F at the end of its period T) says so for T - F."""
    fresh = metrics.loc[metrics["metric"] == "DeliveryToS3.DataFreshness"]
    if fresh.empty:
        return None
    last = fresh.sort_values("ts").iloc[-1]
    return float(last["ts"] + last["period_s"] - last["value"])


def wait_for_delivery(fetch: Callable[[], pd.DataFrame], end: float, wait_s: float,
                      poll_s: float) -> tuple[pd.DataFrame, float | None]:
    """Poll the metrics until delivery caught up with ``end`` or ``wait_s`` passed."""
    deadline = time.time() + wait_s
    while True:
        metrics = fetch()
        upto = caught_up_to(metrics)
        if (upto is not None and upto >= end) or time.time() >= deadline:
            return metrics, upto
        time.sleep(poll_s)


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def collect_api_logs(run_dir: Path | str, clients: Any, cfg: Mapping[str, Any], start: float,
                     end: float, period_s: int, bucket_s: int = 60) -> dict[str, Any]:
    """Query the window, write ``api_logs/``; returns the summary (also ``collect.json``)."""
    run_dir = Path(run_dir)
    summary: dict[str, Any] = {"collected_at": None, "window": [start, end], "config": dict(cfg),
                               "queries": {}, "caught_up_to": None, "errors": []}
    metrics = pd.DataFrame()
    if cfg.get("delivery_stream"):
        try:
            # StartTime on a period boundary, as CloudWatch publishes: buckets started
            # between boundaries would straddle two published periods
            metrics, upto = wait_for_delivery(
                lambda: firehose_metrics(clients("cloudwatch"), cfg["delivery_stream"],
                                         (start // period_s - 1) * period_s,
                                         time.time() + period_s, period_s),
                end + float(cfg.get("producer_lag_s", 0)), float(cfg.get("wait_s", 0)),
                max(1.0, period_s / 2))
            summary["caught_up_to"] = upto
            _write(metrics, run_dir / FIREHOSE)
        except Exception as exc:  # noqa: BLE001 - the queries still say what landed
            summary["errors"].append(f"AWS/Firehose metrics: {exc}")
    summary["collected_at"] = time.time()
    athena = clients("athena")
    for name, sql, read in (
            ("minutes", minutes_query(cfg["table"], start, end, bucket_s),
             lambda ex: results_frame(athena, ex["QueryExecutionId"])),
            ("ids", ids_query(cfg["table"], start, end),
             lambda ex: csv_frame(clients("s3"), ex["ResultConfiguration"]["OutputLocation"]))):
        entry: dict[str, Any] = {"sql": sql}
        summary["queries"][name] = entry
        try:
            ex = run_query(athena, sql, cfg)
            frame = read(ex)
            stats = ex.get("Statistics") or {}
            entry.update(state="SUCCEEDED", id=ex["QueryExecutionId"], rows=len(frame),
                         scanned_bytes=stats.get("DataScannedInBytes"),
                         engine_ms=stats.get("EngineExecutionTimeInMillis"))
            for col in frame.columns:
                if col not in ("request_id",):
                    frame[col] = pd.to_numeric(frame[col], errors="coerce")
            _write(frame, run_dir / (MINUTES if name == "minutes" else LANDED))
        except Exception as exc:  # noqa: BLE001 - analysis says "could not be verified"
            entry.update(state="FAILED", reason=str(exc)[:500])
    (run_dir / DIR).mkdir(parents=True, exist_ok=True)
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
    return summary


def collect_planned(run_dir: Path, clients: Any, spec: Mapping[str, Any], start: float,
                    end: float, period_s: int, sandbox: bool) -> dict[str, Any] | None:
    """The run's hook: collect when the plan checks the log pipeline."""
    cfg = settings((spec.get("checks") or {}).get("log_pipeline"), sandbox)
    if cfg is None:
        return None
    bucket_s = int(((spec.get("checks") or {}).get("log_pipeline") or {}).get("bucket_s", 60))
    summary = collect_api_logs(run_dir, clients, cfg, start, end, period_s, bucket_s)
    runfolder.update_run_json(run_dir, api_logs={
        k: summary[k] for k in ("caught_up_to", "errors")})
    return summary
