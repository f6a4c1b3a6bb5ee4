"""The API-log faults as plain ``chaos run`` against the sandbox's log pipeline (its
Firehose, S3, Glue and Athena behind a moto endpoint, spoken to with stock boto3):
``firehose-throttle`` lowers the stream's quota and its rollback restores the tags
exactly; ``log-destination-denied`` makes the bucket refuse Firehose's writes (records held
back and retried, none lost) and its rollback restores the policy exactly. Then the
issue's case: the same throttle fault under two producers, the storefront's batcher with
retries off and on; collected through Athena, the log_pipeline check fails the first
naming the buckets and ThrottledRecords and passes the second (late, not lost)."""

from __future__ import annotations

import json
import re
import threading
import time

import boto3
import pytest
from test_chaos_experiments import run_experiment

from analysis import checks
from analysis.checks.context import context
from analysis.load import load_run
from peakready import runfolder
from peakready.collect import apilogs
from peakready.collect.clients import AwsClients
from peakready.load.capture import ShardWriter
from peakready.sandbox.aws import names
from peakready.sandbox.aws.logpipe import BUCKET, PREFIX, STREAM, Standalone
from peakready.sandbox.storefront import apilog

pytestmark = pytest.mark.spawns  # runs the chaos CLI

RECORDS_TAG = "peakready:quota-records-per-s"
BYTES_TAG = "peakready:quota-bytes-per-s"


@pytest.fixture(scope="module")
def pipeline():
    with Standalone(interval_scale=1 / 60, period_s=5) as ep:  # the 60 s hint: 1 s here
        yield ep


@pytest.fixture
def env(pipeline, tmp_path):
    return {"AWS_ENDPOINT_URL": pipeline.endpoint_url, "AWS_REGION": names.REGION,
            "AWS_DEFAULT_REGION": names.REGION, "AWS_ACCESS_KEY_ID": names.ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": names.SECRET_ACCESS_KEY, "AWS_MAX_ATTEMPTS": "1",
            "PEAKREADY_CHAOS_STATE_DIR": str(tmp_path / "state")}


def client(ep, service):
    return boto3.client(service, endpoint_url=ep.endpoint_url, region_name=names.REGION,
                        aws_access_key_id=names.ACCESS_KEY_ID,
                        aws_secret_access_key=names.SECRET_ACCESS_KEY)


def quota_tags(ep) -> dict[str, str]:
    tags = client(ep, "firehose").list_tags_for_delivery_stream(DeliveryStreamName=STREAM)
    return {t["Key"]: t["Value"] for t in tags["Tags"] if t["Key"].startswith("peakready:")}


def put(ep, n: int, prefix: str = "x") -> int:
    """FailedPutCount of one PutRecordBatch of ``n`` records."""
    out = client(ep, "firehose").put_record_batch(DeliveryStreamName=STREAM, Records=[
        {"Data": apilog.record(f"{prefix}-{i}", time.time(), "GET", "/", 200, 1.0, "i-1",
                               "127.0.0.1", "pytest")} for i in range(n)])
    return out["FailedPutCount"]


def test_firehose_throttle_lowers_the_quota_and_rollback_restores_the_tags(
        pipeline, env, live, tmp_path):
    fh = client(pipeline, "firehose")
    # a quota set at boot (PEAKREADY_FIREHOSE_QUOTA): the rollback must put it back, not
    # drop it
    fh.tag_delivery_stream(DeliveryStreamName=STREAM,
                           Tags=[{"Key": RECORDS_TAG, "Value": "5000"}])
    failed = []

    def throttled() -> bool:
        if quota_tags(pipeline).get(RECORDS_TAG) != "40":
            return False
        time.sleep(max(0.0, 1.02 - time.time() % 1))  # a fresh quota second
        failed.append(put(pipeline, 100))
        return True

    try:
        outcome = run_experiment(tmp_path, "firehose-throttle", env, live,
                                 {"records_per_s": 40, "hold_s": 60},
                                 interrupt_when=throttled)
        assert failed and failed[0] >= 60  # live on the data path: HTTP 200, 60+ refused
        assert outcome.status == "interrupted" and outcome.rollbacks_ran, outcome.reason
        assert outcome.rollbacks_failed == []
        assert quota_tags(pipeline) == {RECORDS_TAG: "5000"}
        assert put(pipeline, 100) == 0
        assert not list((tmp_path / "state").glob("*.json"))  # the saved state was used up
    finally:
        fh.untag_delivery_stream(DeliveryStreamName=STREAM, TagKeys=[RECORDS_TAG])


def test_log_destination_denied_holds_records_back_and_rollback_restores_the_policy(
        pipeline, env, live, tmp_path):
    s3 = client(pipeline, "s3")
    before = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "analysts-read", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{names.ACCOUNT_ID}:root"},
        "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]})
    s3.put_bucket_policy(Bucket=BUCKET, Policy=before)
    start = time.time()
    held = {}

    def objects() -> set[str]:
        return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get(
            "Contents", [])}

    def denied() -> bool:
        policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
        if len(policy["Statement"]) < 2:
            return False
        keys = objects()
        put_at = time.time()
        assert put(pipeline, 50, "denied") == 0  # Firehose takes the records ...
        # ... and AWS/Firehose shows the refusal: failed S3 puts, freshness beyond the
        # buffer interval (1 s), until the policy is restored; only periods that ended 2 s
        # after the put speak for these records (an earlier test's may have been late)
        deadline = time.time() + 20
        while time.time() < deadline:
            metrics = apilogs.firehose_metrics(client(pipeline, "cloudwatch"), STREAM,
                                               start - 5, time.time() + 5, 5)
            metrics = metrics.loc[metrics["ts"] + metrics["period_s"] >= put_at + 2]
            success = metrics.loc[metrics["metric"] == "DeliveryToS3.Success", "value"]
            fresh = metrics.loc[metrics["metric"] == "DeliveryToS3.DataFreshness", "value"]
            if len(success) and success.min() < 1 and fresh.max() >= 2:
                held["metrics"] = (success.min(), fresh.max())
                break
            time.sleep(0.5)
        held["new_objects"] = objects() - keys
        return True

    try:
        outcome = run_experiment(tmp_path, "log-destination-denied", env, live,
                                 {"hold_s": 60}, interrupt_when=denied)
        assert outcome.rollbacks_ran and outcome.rollbacks_failed == [], outcome.reason
        assert held["new_objects"] == set() and "metrics" in held
        assert s3.get_bucket_policy(Bucket=BUCKET)["Policy"] == before
        # every record lands once writes are allowed again: late, not lost
        cfg = apilogs.settings({"min_completeness": 1}, sandbox=True)
        deadline = time.time() + 20
        while True:
            ex = apilogs.run_query(client(pipeline, "athena"),
                                   apilogs.ids_query(cfg["table"], start - 1, time.time()),
                                   cfg)
            landed = apilogs.csv_frame(s3, ex["ResultConfiguration"]["OutputLocation"])
            ours = landed.loc[landed["request_id"].str.startswith("denied-")]
            if len(ours) == 50 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert set(ours["request_id"]) == {f"denied-{i}" for i in range(50)}
        assert (ours["landed_ts"] - ours["ts"]).min() >= 2  # held back by the refusal
    finally:
        s3.delete_bucket_policy(Bucket=BUCKET)


class Producer:
    """The storefront's batcher fed at a steady rate, writing the samples the load would
    (one per request, its X-Request-Id) into its own run folder."""

    def __init__(self, ep, run_dir, retries: bool, rps: float):
        self.run_dir, self.rps, self.retries = run_dir, rps, retries
        self.batcher = apilog.Batcher(apilog.ApiLogSettings(
            stream=STREAM, endpoint_url=ep.endpoint_url, access_key_id=names.ACCESS_KEY_ID,
            secret_access_key=names.SECRET_ACCESS_KEY, retries=retries,
            backoff_s=0.2)).start()
        self.shards = ShardWriter(run_dir / runfolder.SAMPLES_DIR, "w0")
        self.sent = 0

    def run(self, start: float, stop: threading.Event, limit_s: float) -> None:
        tag = "on" if self.retries else "off"
        while not stop.is_set() and time.time() < start + limit_s:
            due = start + self.sent / self.rps
            if due > time.time():
                time.sleep(due - time.time())
            now = time.time()
            rid = f"{tag}{self.sent:05d}"
            self.batcher.log(apilog.record(rid, now, "GET", "/api/cart", 200, 3.0, "i-1",
                                           "127.0.0.1", "pytest"))
            self.shards.add((now, due, "/api/cart", "GET", 200, True, 3.0, 100, "", "u", "",
                             rid))
            self.sent += 1
        self.shards.flush()

    def drain(self, timeout_s: float = 30.0) -> None:
        deadline = time.time() + timeout_s
        while self.batcher.stats()["queued"] and time.time() < deadline:
            time.sleep(0.1)
        self.batcher.stop(drain_s=0)


def not_landed(producer: Producer) -> list[str]:
    """The ids of ``producer`` Athena did not find (shown when the counts disagree)."""
    import pandas as pd

    landed = pd.read_parquet(producer.run_dir / apilogs.LANDED)
    tag = "on" if producer.retries else "off"
    return sorted({f"{tag}{i:05d}" for i in range(producer.sent)} - set(landed["request_id"]))


def test_throttle_fault_fails_the_check_with_retries_off_and_passes_with_them_on(
        pipeline, env, live, tmp_path):
    """Two storefront batchers share the stream through one throttle fault (quota 20
    records/s: below what each sends, 40/s); only the producer's retries differ."""
    producers = {}
    for retries in (False, True):
        run_dir = tmp_path / ("retries-on" if retries else "retries-off")
        run_dir.mkdir()
        producers[retries] = Producer(pipeline, run_dir, retries, rps=40.0)
    start = time.time()
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(start, stop, 40.0), daemon=True)
               for p in producers.values()]
    for t in threads:
        t.start()
    try:
        outcome = run_experiment(tmp_path, "firehose-throttle", env, live,
                                 {"records_per_s": 20, "hold_s": 4})
    finally:
        time.sleep(2.0)  # the peak goes on after the fault
        stop.set()
        for t in threads:
            t.join()
    end = time.time()
    assert outcome.ok, outcome.reason
    for p in producers.values():
        p.drain()
    verdicts = {}
    for retries, p in producers.items():
        runfolder.write_run_json(p.run_dir, {"run_id": p.run_dir.name, "status": "completed",
                                             "started_at": start, "load_started_at": start,
                                             "ended_at": end})
        cfg = {**apilogs.settings({"min_completeness": 1}, sandbox=True), "wait_s": 20}
        apilogs.collect_api_logs(p.run_dir, AwsClients(names.REGION, {
            "endpoint_url": pipeline.endpoint_url, "region": names.REGION,
            "access_key_id": names.ACCESS_KEY_ID,
            "secret_access_key": names.SECRET_ACCESS_KEY}), cfg, start, end, 5, bucket_s=5)
        verdicts[retries] = checks.REGISTRY["log_pipeline"].evaluate(
            context(load_run(p.run_dir)), {"min_completeness": 0.999, "bucket_s": 5}, {})[0]
    off, on = verdicts[False], verdicts[True]
    stats_off, stats_on = producers[False].batcher.stats(), producers[True].batcher.stats()
    assert stats_off["lost"] > 0 and stats_on["lost"] == 0 and stats_on["retried"] > 0
    assert off.verdict == "fail", off.reason
    # names the buckets, e.g. "+0-5 s 52.0% (96 missing, ThrottledRecords 130)"
    assert re.search(r"\+\d+-\d+ s \d+\.\d% \(\d+ missing, ThrottledRecords \d+\)",
                     off.reason), off.reason
    assert off.evidence["missing"] == stats_off["lost"], (
        stats_off, off.evidence, not_landed(producers[False]))
    assert off.evidence["throttled_records"] > 0
    assert on.verdict == "pass", on.reason
    assert on.evidence["missing"] == 0 and on.evidence["found"] == producers[True].sent
