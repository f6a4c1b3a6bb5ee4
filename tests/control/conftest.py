"""A real sandbox (daemon, processes, control plane) for the control-plane tests, with
short time constants, and the environment stock boto3 / chaostoolkit-aws read."""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

import peakready.sandbox as sandbox
from peakready.sandbox.aws import bootstrap, names
from peakready.sandbox.timing import Timing

FAST = Timing(boot_delay_s=2.0, instance_warmup_s=2.0, scale_out_cooldown_s=4.0,
              scale_in_cooldown_s=6.0, replace_unhealthy_after_s=2.0,
              deregistration_delay_s=1.0, metric_period_s=2, scale_out_datapoints=2,
              scale_in_datapoints=3, cache_node_recover_s=2.0)


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.2,
             what: str = "condition"):
    """The predicate's first truthy value, or a test failure naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Shop:
    """A tiny HTTP client for the storefront behind the balancer."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port

    def request(self, method: str, path: str, body: dict | None = None,
                cookie: str | None = None, timeout: float = 5.0):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if cookie:
            headers["Cookie"] = cookie
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            resp = conn.getresponse()
            data = resp.read()
            try:
                payload = json.loads(data) if data else None
            except ValueError:
                payload = data.decode(errors="replace")
            return resp.status, payload, dict(resp.getheaders())
        finally:
            conn.close()

    def login(self, email: str) -> str:
        status, _, headers = self.request("POST", "/api/login", {"email": email})
        assert status == 200, status
        return headers["Set-Cookie"].split(";", 1)[0]


@pytest.fixture(scope="package")
def sandbox_status(tmp_path_factory):
    """One sandbox for the control-plane modules (starting one costs seconds of CPU): each
    test waits for the state it needs and undoes what it changes (two instances in service,
    the scaling policy as it was), so the next module starts from the same sandbox."""
    state_dir = tmp_path_factory.mktemp("sandbox")
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY", "AWS_MAX_ATTEMPTS",
                                            "AWS_DEFAULT_REGION")}
    with sandbox.running(state_dir, timing=FAST) as status:
        aws = status["aws"]
        os.environ.update(AWS_ENDPOINT_URL=aws["endpoint_url"],
                          AWS_ACCESS_KEY_ID=aws["access_key_id"],
                          AWS_SECRET_ACCESS_KEY=aws["secret_access_key"],
                          AWS_MAX_ATTEMPTS="1", AWS_DEFAULT_REGION=aws["region"])
        try:
            yield {**status, "state_dir": str(state_dir)}
        finally:
            log = state_dir / "logs" / "daemon.log"
            if log.exists():  # kept for post-mortems: the state folder is removed on stop
                keep = tmp_path_factory.getbasetemp() / f"daemon-{state_dir.name}.log"
                keep.write_bytes(log.read_bytes())
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="package")
def aws(sandbox_status):
    """``aws("autoscaling")``: a stock boto3 client for the sandbox endpoint."""
    return lambda service: bootstrap.client(service, sandbox_status["aws"]["endpoint_url"])


@pytest.fixture(scope="package")
def shop(sandbox_status) -> Shop:
    return Shop(sandbox_status["storefront_url"])


@pytest.fixture(scope="package")
def chaos_config(sandbox_status) -> dict:
    return {"aws_region": names.REGION}


def live_status(sandbox_status) -> dict:
    return sandbox.status(sandbox_status["state_dir"])


def component(status: dict, name: str) -> dict:
    return next(c for c in status["components"] if c["name"] == name)


def asg_instances(aws) -> list[dict]:
    return aws("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[names.ASG])["AutoScalingGroups"][0]["Instances"]


def read_access_log(sandbox_status, start: float, end: float) -> list[float]:
    """Request times (s) of proxied requests the balancer logged, started in [start, end)."""
    return [seconds for began, _, seconds in access_log_rows(sandbox_status)
            if start <= began < end]


def access_log_rows(sandbox_status) -> list[tuple[float, float, float]]:
    """(started, finished, seconds) of each request a target answered, from the access log."""
    from pathlib import Path

    path = Path(sandbox_status["state_dir"]) / "logs" / "alb-access.log"
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split(" ")
        if fields[9] != "-":  # target answered
            began, seconds = datetime_epoch(fields[1]), float(fields[6])
            rows.append((began, began + seconds, seconds))
    return rows


def datetime_epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class PacedLoad:
    """Requests at a fixed arrival rate from one thread (bounded by ``stop()``)."""

    def __init__(self, shop: Shop, rps: float, path: str = "/api/products?page=1"):
        import threading

        self.shop, self.rps, self.path = shop, rps, path
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PacedLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.shop.request("GET", self.path, timeout=2.0)
            except OSError:
                pass
            self.sent += 1
            next_at += 1.0 / self.rps
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
