"""The API-log pipeline on a real moto endpoint with peakready's grafts, spoken to with
stock boto3: Firehose throttling shapes, the storefront's batcher with retries on and off,
Athena run by DuckDB (answers, paging, failures) against the objects Firehose delivered."""

from __future__ import annotations

import gzip
import time

import boto3
import duckdb
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from peakready.collect import apilogs
from peakready.collect.clients import AwsClients
from peakready.sandbox.aws import names
from peakready.sandbox.aws.logpipe import BUCKET, PREFIX, STREAM, Standalone
from peakready.sandbox.storefront import apilog

QUOTA_TAG = "peakready:quota-records-per-s"


@pytest.fixture(scope="module")
def endpoint():
    with Standalone(interval_scale=1 / 60) as ep:  # the 60 s hint: 1 s here
        yield ep


def client(ep, service):
    return boto3.client(service, endpoint_url=ep.endpoint_url, region_name=names.REGION,
                        aws_access_key_id=names.ACCESS_KEY_ID,
                        aws_secret_access_key=names.SECRET_ACCESS_KEY,
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def clients(ep):
    return AwsClients(names.REGION, {"endpoint_url": ep.endpoint_url, "region": names.REGION,
                                     "access_key_id": names.ACCESS_KEY_ID,
                                     "secret_access_key": names.SECRET_ACCESS_KEY})


def set_quota(ep, records_per_s):
    fh = client(ep, "firehose")
    arn = fh.describe_delivery_stream(DeliveryStreamName=STREAM)[
        "DeliveryStreamDescription"]["DeliveryStreamARN"]
    assert arn
    if records_per_s is None:
        fh.untag_delivery_stream(DeliveryStreamName=STREAM, TagKeys=[QUOTA_TAG])
    else:
        fh.tag_delivery_stream(DeliveryStreamName=STREAM,
                               Tags=[{"Key": QUOTA_TAG, "Value": str(records_per_s)}])


def landed_ids(ep, start, end):
    cfg = apilogs.settings({"min_completeness": 1}, sandbox=True)
    athena = client(ep, "athena")
    ex = apilogs.run_query(athena, apilogs.ids_query(cfg["table"], start, end), cfg)
    frame = apilogs.csv_frame(client(ep, "s3"), ex["ResultConfiguration"]["OutputLocation"])
    return frame


def send(batcher, prefix, n):
    start = time.time()
    for i in range(n):
        batcher.log(apilog.record(f"{prefix}-{i}", time.time(), "GET", "/api/cart", 200, 3.0,
                                  "i-0abc", "127.0.0.1", "pytest"))
    return start


def drain(batcher, timeout=30.0):
    deadline = time.time() + timeout
    while batcher.stats()["queued"] and time.time() < deadline:
        time.sleep(0.1)
    batcher.stop(drain_s=0)
    assert batcher.stats()["unsent_at_stop"] == 0
    time.sleep(1.6)  # the buffer interval (1 s here) plus a delivery tick


def test_throttled_batch_is_http_200_with_failed_entries(endpoint):
    set_quota(endpoint, 100)
    try:
        fh = client(endpoint, "firehose")
        out = fh.put_record_batch(DeliveryStreamName=STREAM,
                                  Records=[{"Data": b'{"request_id":"t"}\n'}] * 300)
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert out["FailedPutCount"] >= 200
        failed = [r for r in out["RequestResponses"] if "ErrorCode" in r]
        assert failed[0]["ErrorCode"] == "ServiceUnavailableException"
        assert all("RecordId" in r for r in out["RequestResponses"] if "ErrorCode" not in r)
        with pytest.raises(ClientError) as err:
            fh.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": b"x"}] * 501)
        assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
    finally:
        set_quota(endpoint, None)


def test_batcher_without_retries_loses_what_firehose_throttled(endpoint):
    set_quota(endpoint, 150)
    try:
        batcher = apilog.Batcher(apilog.ApiLogSettings(
            stream=STREAM, endpoint_url=endpoint.endpoint_url,
            access_key_id=names.ACCESS_KEY_ID, secret_access_key=names.SECRET_ACCESS_KEY,
            retries=False)).start()
        start = send(batcher, "off", 450)
        drain(batcher)
    finally:
        set_quota(endpoint, None)
    stats = batcher.stats()
    assert stats["lost"] > 0 and stats["failed_entries"] == stats["lost"]
    found = landed_ids(endpoint, start - 1, time.time())
    ours = found.loc[found["request_id"].str.startswith("off-")]
    assert len(ours) == 450 - stats["lost"]  # exactly the accepted ones landed


def test_batcher_with_retries_lands_every_record_late_not_lost(endpoint):
    set_quota(endpoint, 150)
    try:
        batcher = apilog.Batcher(apilog.ApiLogSettings(
            stream=STREAM, endpoint_url=endpoint.endpoint_url,
            access_key_id=names.ACCESS_KEY_ID, secret_access_key=names.SECRET_ACCESS_KEY,
            retries=True, backoff_s=0.2)).start()
        start = send(batcher, "on", 450)
        drain(batcher)
    finally:
        set_quota(endpoint, None)
    stats = batcher.stats()
    assert stats["failed_entries"] > 0 and stats["retried"] > 0 and stats["lost"] == 0
    found = landed_ids(endpoint, start - 1, time.time())
    ours = found.loc[found["request_id"].str.startswith("on-")]
    assert set(ours["request_id"]) == {f"on-{i}" for i in range(450)}
    assert (ours["landed_ts"] - ours["ts"]).max() > 1.5  # late: held back by the quota


def test_athena_answers_equal_duckdb_over_the_same_objects_and_the_sent_counts(
        endpoint, tmp_path):
    batcher = apilog.Batcher(apilog.ApiLogSettings(
        stream=STREAM, endpoint_url=endpoint.endpoint_url,
        access_key_id=names.ACCESS_KEY_ID, secret_access_key=names.SECRET_ACCESS_KEY)).start()
    start = send(batcher, "eq", 2500)
    end = time.time() + 0.001
    drain(batcher)
    athena = client(endpoint, "athena")
    cfg = apilogs.settings({"min_completeness": 1}, sandbox=True)
    start -= 0.01  # a record's ts is its arrival to the millisecond, truncated
    sql = apilogs.minutes_query(cfg["table"], start, end, bucket_s=1)
    ex = apilogs.run_query(athena, sql, cfg)
    via_athena = apilogs.results_frame(athena, ex["QueryExecutionId"])
    # the same objects read by DuckDB directly
    s3 = client(endpoint, "s3")
    files = []
    for n, obj in enumerate(s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]):
        path = tmp_path / f"{n}.json.gz"
        path.write_bytes(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
        assert gzip.decompress(path.read_bytes()).endswith(b"\n")  # newline-delimited
        files.append(str(path))
    direct = duckdb.sql(
        f"SELECT floor(epoch(CAST(ts AS TIMESTAMPTZ)) / 1) * 1 AS bucket, count(*) AS records,"
        f" count(DISTINCT request_id) AS ids FROM read_json({files}, "
        f"format='newline_delimited') WHERE epoch(CAST(ts AS TIMESTAMPTZ)) >= {start:.3f} "
        f"AND epoch(CAST(ts AS TIMESTAMPTZ)) < {end:.3f} GROUP BY 1 ORDER BY 1").df()
    assert via_athena["bucket"].astype(float).tolist() == direct["bucket"].tolist()
    assert via_athena["records"].astype(int).tolist() == direct["records"].tolist()
    assert via_athena["ids"].astype(int).sum() == 2500 == direct["ids"].sum()


def test_athena_paging_header_and_failures_are_athenas(endpoint):
    athena = client(endpoint, "athena")
    cfg = apilogs.settings({"min_completeness": 1}, sandbox=True)
    ex = apilogs.run_query(athena, "SELECT * FROM range(2500) t(n)", cfg)
    qid = ex["QueryExecutionId"]
    pages = list(athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid))
    assert [len(p["ResultSet"]["Rows"]) for p in pages] == [1000, 1000, 501]
    assert pages[0]["ResultSet"]["Rows"][0]["Data"] == [{"VarCharValue": "n"}]
    assert pages[1]["ResultSet"]["Rows"][0]["Data"] == [{"VarCharValue": "999"}]
    assert pages[0]["ResultSet"]["ResultSetMetadata"]["ColumnInfo"][0]["Type"] == "bigint"
    with pytest.raises(ClientError, match="less than or equal to 1000"):
        athena.get_query_results(QueryExecutionId=qid, MaxResults=2000)
    bad = athena.start_query_execution(QueryString="SELECT nope FROM api_logs",
                                       QueryExecutionContext={"Database": "peakready"},
                                       WorkGroup="peakready")["QueryExecutionId"]
    with pytest.raises(apilogs.QueryError, match="COLUMN_NOT_FOUND"):
        apilogs.run_query(athena, "SELECT nope FROM api_logs", cfg)
    state = athena.get_query_execution(QueryExecutionId=bad)["QueryExecution"]["Status"]
    deadline = time.time() + 10
    while state["State"] in ("QUEUED", "RUNNING") and time.time() < deadline:
        time.sleep(0.1)
        state = athena.get_query_execution(QueryExecutionId=bad)["QueryExecution"]["Status"]
    assert state["State"] == "FAILED"
    assert "Column 'nope' cannot be resolved" in state["StateChangeReason"]
    with pytest.raises(ClientError, match="Final query state: FAILED"):
        athena.get_query_results(QueryExecutionId=bad)
    with pytest.raises(apilogs.QueryError, match="TABLE_NOT_FOUND"):
        apilogs.run_query(athena, "SELECT count(*) FROM missing_table", cfg)


def test_the_storefronts_raw_http_client_speaks_firehose_as_boto3_does(endpoint, monkeypatch):
    """The batcher's default client (a SigV4-signed request, no boto3): the same answer
    shapes as boto3 for a throttled batch, AWS's error codes for a failed call, and the
    ordinary credential chain when no keys are given."""
    from peakready.sandbox.storefront.firehose_http import FirehoseCallError, FirehoseHttp

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", names.ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", names.SECRET_ACCESS_KEY)
    raw = FirehoseHttp(STREAM, names.REGION, endpoint.endpoint_url)  # keys from the env
    set_quota(endpoint, 100)
    try:
        time.sleep(max(0.0, 1.02 - time.time() % 1))  # a fresh quota second
        out = raw.put_record_batch([b'{"request_id":"raw"}\n'] * 300)
    finally:
        set_quota(endpoint, None)
    assert out["FailedPutCount"] == 200
    assert [r["ErrorCode"] for r in out["RequestResponses"][100:]] == [
        "ServiceUnavailableException"] * 200
    assert all(len(r["RecordId"]) > 0 for r in out["RequestResponses"][:100])
    with pytest.raises(FirehoseCallError) as err:
        FirehoseHttp("no-such-stream", names.REGION, endpoint.endpoint_url).put_record_batch(
            [b"x"])
    assert err.value.code == "ResourceNotFoundException" and err.value.status == 400
