"""The alarm topic and its pager: what the control plane adds so alarms page someone.

At boot it starts the pager process (``peakready.sandbox.pager``, a child of the daemon
like every other part), creates the SNS topic the sandbox's alarms notify
(``names.PAGES_TOPIC``) and subscribes the pager's PagerDuty-style integration URL with
protocol ``http``, exactly as a shop subscribes PagerDuty (``https`` on AWS; loopback has
no TLS). The pager confirms the subscription itself; the plane is ready once it has.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

from moto.sns.models import sns_backends

from peakready.sandbox import procs
from peakready.sandbox.aws import bootstrap, extensions, names
from peakready.sandbox.pagerduty import SERVICE_ID
from peakready.sandbox.serve import bind_listener


class PagerHandle:
    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.key = secrets.token_hex(16)  # the integration key, 32 characters as on PagerDuty
        self.token = "peakready-sandbox-pagerduty-token"  # dummy REST token, like the AWS keys
        self.port = 0
        self.proc = None
        self.topic_arn = ""
        self.subscription_arn = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def integration_url(self) -> str:
        return f"{self.url}/integration/{self.key}/enqueue"

    def start(self) -> None:
        """Spawn the pager process; returns at once (``subscribe`` waits for it)."""
        log_dir = Path(self.stack.log_dir)
        sock = bind_listener(0)
        self.port = sock.getsockname()[1]
        cmd = procs.python_module_cmd("peakready.sandbox.pager", "--fd", str(sock.fileno()),
                                      "--key", self.key, "--token", self.token,
                                      "--log", str(log_dir / "pager.jsonl"))
        try:
            self.proc = self.stack.spawner.spawn(cmd, log_dir / "pager.log",
                                                 pass_fds=(sock.fileno(),))
        finally:
            sock.close()

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("the pager exited at start")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=0.5):
                return True
        except OSError:
            return False

    def subscribe(self, endpoint_url: str) -> str:
        """Create the pages topic and subscribe the pager (it confirms by itself)."""
        if not procs.wait_until(self._healthy, 30, 0.05):
            raise RuntimeError(f"the pager did not start (see {self.stack.log_dir}/pager.log)")
        sns = bootstrap.client("sns", endpoint_url)
        self.topic_arn = sns.create_topic(Name=names.PAGES_TOPIC)["TopicArn"]
        self.subscription_arn = sns.subscribe(TopicArn=self.topic_arn, Protocol="http",
                                              Endpoint=self.integration_url)["SubscriptionArn"]
        return self.topic_arn

    def confirmed(self) -> bool:
        with extensions.LOCK:
            sub = sns_backends[names.ACCOUNT_ID][names.REGION].subscriptions.get(
                self.subscription_arn)
            return sub is not None and sub.attributes.get("PendingConfirmation") is False

    def wait_confirmed(self, timeout: float = 15.0) -> None:
        deadline = time.time() + timeout
        while not self.confirmed():
            if time.time() > deadline:
                raise RuntimeError("the pager did not confirm its SNS subscription")
            time.sleep(0.05)

    def records(self, timeout: float = 5.0) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/pages", timeout=timeout) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        procs.stop(self.proc, timeout=3)

    def status(self) -> dict[str, Any]:
        alive = self.proc is not None and self.proc.poll() is None
        return {"pager_url": self.url if self.port else None,
                "pid": self.proc.pid if self.proc else None, "alive": alive,
                "topic_arn": self.topic_arn, "subscription_arn": self.subscription_arn,
                "integration_url": self.integration_url if self.port else None,
                "pagerduty_api_url": self.url if self.port else None,
                "pagerduty_token": self.token, "pagerduty_service_id": SERVICE_ID}
