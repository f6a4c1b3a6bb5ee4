"""Grafts that route moto's Firehose and Athena actions to the sandbox's ``LogPipe``.

Registered in ``extensions.PATCHES`` (``patches``); each method falls back
to moto as shipped when no control plane (or one without a log pipeline) is attached.

- Firehose ``PutRecord``/``PutRecordBatch`` go through the Firehose model (quota,
  buffering, AWS's failure shapes) instead of moto's one-object-per-put; create, update,
  delete, tag and untag also refresh the model's copy of the stream.
- Athena ``StartQueryExecution``/``GetQueryExecution``/``GetQueryResults`` run the SQL
  with DuckDB (``athena_engine``): states QUEUED -> RUNNING -> SUCCEEDED | FAILED with
  Athena's reasons, statistics, result paging (MaxResults <= 1000, NextToken, the header
  row first on page 1), results written to the output location.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.athena.responses import AthenaResponse
from moto.core.responses import ActionResult
from moto.firehose.exceptions import FirehoseException
from moto.firehose.responses import FirehoseResponse

from peakready.sandbox.aws.firehose import FirehoseError

MAX_RESULTS = 1000


def _pipe(plane_of: Callable[[], Any]) -> Any:
    plane = plane_of()
    return getattr(plane, "logpipe", None) if plane is not None else None


def patches(patch_cls: type, plane_of: Callable[[], Any]) -> list[Any]:
    """extensions.py's ``Patch`` entries for these grafts; ``plane_of()`` is the attached
    plane (moto as shipped while none, or one without a log pipeline, is attached)."""
    out: list[Any] = []

    def routed(cls: type, name: str, func: Callable[..., Any], why: str = "") -> None:
        def make(original: Any) -> Callable[..., Any]:
            def method(self):
                pipe = _pipe(plane_of)
                return original(self) if pipe is None else func(self, pipe, original)
            return method
        out.append(patch_cls(f"logpipe_{name}", cls, name,
                             why or "the API-log pipeline (docs/control-plane.md)", make,
                             routed=True))

    # ---- Firehose ------------------------------------------------------------------
    def put_batch(self, pipe, _original):
        name = self._get_param("DeliveryStreamName")
        records = [r["Data"] for r in self._get_param("Records") or []]
        return ActionResult(_put(pipe, name, records))

    def put_one(self, pipe, _original):
        name = self._get_param("DeliveryStreamName")
        record = self._get_param("Record") or {}
        out = _put(pipe, name, [record.get("Data", b"")])
        if out["FailedPutCount"]:  # PutRecord has no per-record errors: the call fails
            raise FirehoseException("ServiceUnavailableException",
                                    out["RequestResponses"][0]["ErrorMessage"])
        return ActionResult({"RecordId": out["RequestResponses"][0]["RecordId"],
                             "Encrypted": False})

    def refresh(self, pipe, original):
        result = original(self)
        pipe.configure_from_moto(self._get_param("DeliveryStreamName"))
        return result

    routed(FirehoseResponse, "put_record_batch", put_batch,
           "moto writes one object per put and never throttles: quota, buffering, AWS's "
           "FailedPutCount shapes")
    routed(FirehoseResponse, "put_record", put_one, "as put_record_batch, one record")
    for action in ("create_delivery_stream", "update_destination", "delete_delivery_stream",
                   "tag_delivery_stream", "untag_delivery_stream"):
        routed(FirehoseResponse, action, refresh)

    # ---- Athena --------------------------------------------------------------------
    def start_query(self, pipe, _original):
        workgroup = self._get_param("WorkGroup") or "primary"
        group = self.athena_backend.get_work_group(workgroup)
        if not group:
            return self.error("WorkGroup does not exist", 400)
        context = self._get_param("QueryExecutionContext") or {}
        output = (self._get_param("ResultConfiguration") or {}).get("OutputLocation") or (
            (group.get("Configuration") or {}).get("ResultConfiguration") or {}).get(
            "OutputLocation", "")
        query = self._get_param("QueryString") or ""
        if not query.strip():
            return self.error("QueryString must not be empty", 400)
        qid = pipe.start_query(query, context.get("Database") or "default", output, workgroup)
        return json.dumps({"QueryExecutionId": qid})

    def get_execution(self, pipe, original):
        ex = pipe.executions.get(self._get_param("QueryExecutionId"))
        if ex is None:
            return self.error("QueryExecution was not found", 400)
        return json.dumps({"QueryExecution": _describe(ex)})

    def get_results(self, pipe, original):
        ex = pipe.executions.get(self._get_param("QueryExecutionId"))
        if ex is None:
            return self.error("QueryExecution was not found", 400)
        limit = self._get_int_param("MaxResults") or MAX_RESULTS
        if not 1 <= limit <= MAX_RESULTS:
            return self.error(f"1 validation error detected: Value '{limit}' at 'maxResults' "
                              f"failed to satisfy constraint: Member must have value less "
                              f"than or equal to {MAX_RESULTS}", 400)
        if ex.state in ("QUEUED", "RUNNING"):
            return self.error(f"Query has not yet finished. Current state: {ex.state}", 400)
        if ex.state != "SUCCEEDED":
            return self.error(f"Query did not finish successfully. Final query state: "
                              f"{ex.state}\n{ex.reason}", 400)
        return json.dumps(_page(ex, limit, self._get_param("NextToken")))

    routed(AthenaResponse, "start_query_execution", start_query,
           "moto runs no SQL: DuckDB runs it over the Glue table's S3 objects")
    routed(AthenaResponse, "get_query_execution", get_execution,
           "real states, StateChangeReason and statistics")
    routed(AthenaResponse, "get_query_results", get_results,
           "paging with the header row, Athena's errors")
    return out


def _put(pipe: Any, name: str, records: list[bytes]) -> dict:
    import uuid

    if name not in pipe.firehose.streams:
        pipe.configure_from_moto(name)
    try:
        results = pipe.firehose.put_batch(name, records)
    except FirehoseError as exc:
        raise FirehoseException(exc.code, exc.message) from exc
    responses = [{"RecordId": uuid.uuid4().hex * 2} if r is None else r for r in results]
    return {"FailedPutCount": sum(1 for r in results if r is not None), "Encrypted": False,
            "RequestResponses": responses}


def _describe(ex: Any) -> dict:
    status: dict[str, Any] = {"State": ex.state, "SubmissionDateTime": ex.submitted}
    if ex.completed:
        status["CompletionDateTime"] = ex.completed
    if ex.state == "FAILED":
        status["StateChangeReason"] = ex.reason
        status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False,
                                 "ErrorMessage": ex.reason}
    engine_ms = int(1000 * ((ex.completed or ex.started or ex.submitted)
                            - (ex.started or ex.submitted)))
    total_ms = int(1000 * ((ex.completed or ex.submitted) - ex.submitted))
    statement = "DDL" if ex.query.lstrip().upper().startswith(
        ("ALTER", "CREATE", "DESCRIBE", "DROP", "MSCK", "SHOW")) else "DML"
    out = {"QueryExecutionId": ex.id, "Query": ex.query, "StatementType": statement,
           "ResultConfiguration": {"OutputLocation": _output_file(ex)},
           "QueryExecutionContext": {"Database": ex.database, "Catalog": "AwsDataCatalog"},
           "Status": status, "WorkGroup": ex.workgroup,
           "Statistics": {"EngineExecutionTimeInMillis": engine_ms,
                          "DataScannedInBytes": ex.result.scanned_bytes if ex.result else 0,
                          "TotalExecutionTimeInMillis": total_ms,
                          "QueryQueueTimeInMillis": int(1000 * max(0.0, (ex.started or
                                                                         ex.submitted)
                                                                   - ex.submitted))},
           "EngineVersion": {"SelectedEngineVersion": "AUTO",
                             "EffectiveEngineVersion": "Athena engine version 3"}}
    return out


def _output_file(ex: Any) -> str:
    if not ex.output:
        return ""
    return ex.output.rstrip("/") + f"/{ex.id}.csv"


def _page(ex: Any, limit: int, token: str | None) -> dict:
    """Page 1 starts with the header row (DML), as Athena; NextToken is an offset."""
    result = ex.result
    start = int(token) if token and token.isdigit() else 0  # over header + rows
    chunk = ([[n for n, _ in result.columns]] if start == 0 else []) + result.rows(
        max(0, start - 1), limit - (1 if start == 0 else 0))
    out: dict[str, Any] = {
        "UpdateCount": 0,
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                     for row in chunk],
            "ResultSetMetadata": {"ColumnInfo": [
                {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": n,
                 "Label": n, "Type": t, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN",
                 "CaseSensitive": t == "varchar"} for n, t in result.columns]}}}
    if start + limit < result.num_rows + 1:
        out["NextToken"] = str(start + limit)
    return out
