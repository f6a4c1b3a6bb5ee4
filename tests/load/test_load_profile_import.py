"""`peakready profile import` against a real moto server (CloudWatch get_metric_data)."""

from datetime import UTC, datetime

import boto3
import pytest
from moto.server import ThreadedMotoServer

from peakready.cli import main
from peakready.profiles import load_profile

LB = "app/peakready-alb/50dc6c495c0c9188"


@pytest.fixture
def moto_url(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_import_builds_the_rate_curve_of_a_past_campaign(moto_url, tmp_path, capsys):
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    start = int(datetime.now(UTC).timestamp()) // 60 * 60 - 3600
    per_minute = [600, 1200, 4800, 4800, 0, 1800]  # minute 4: no requests, no datapoint
    for minute, count in enumerate(per_minute):
        if not count:
            continue
        # two datapoints per minute, like several ALB nodes reporting
        for half in (count / 2, count / 2):
            cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
                "MetricName": "RequestCount", "Value": half, "Unit": "Count",
                "Timestamp": datetime.fromtimestamp(start + 60 * minute + 5, UTC),
                "Dimensions": [{"Name": "LoadBalancer", "Value": LB}]}])
    # another load balancer must not leak in
    cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
        "MetricName": "RequestCount", "Value": 99999, "Unit": "Count",
        "Timestamp": datetime.fromtimestamp(start + 65, UTC),
        "Dimensions": [{"Name": "LoadBalancer", "Value": "app/other/1"}]}])
    out = tmp_path / "campaign.csv"
    rc = main(["profile", "import", "--load-balancer", LB, "--start", str(start),
               "--end", datetime.fromtimestamp(start + 360, UTC).isoformat(),
               "--period", "60", "--endpoint-url", moto_url, "--region", "us-east-1",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    profile = load_profile(out)
    assert profile.points["rps"].tolist() == [10, 20, 80, 80, 0, 30, 30]
    assert profile.duration_s == 360
    assert profile.total_arrivals == pytest.approx(
        sum((a + b) / 2 * 60 for a, b in zip([10, 20, 80, 80, 0, 30], [20, 80, 80, 0, 30, 30],
                                             strict=True)))


def test_import_of_an_empty_window_is_bad_input(moto_url, tmp_path, capsys):
    rc = main(["profile", "import", "--load-balancer", LB, "--start", "2025-11-28T00:00:00Z",
               "--end", "2025-11-28T01:00:00Z", "--endpoint-url", moto_url,
               "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "no RequestCount datapoints" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_import_without_a_region_is_one_line(monkeypatch, tmp_path, capsys):
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    code = main(["profile", "import", "--load-balancer", LB, "--start", "2026-11-26T04:00:00Z",
                 "--end", "2026-11-26T05:00:00Z", "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "region" in err[0]
    assert not (tmp_path / "p.csv").exists()
