"""boto3 clients for collection, the same code for the sandbox and a real account.

Against AWS the ordinary credential chain applies (env, profile, SSO, instance role);
against the sandbox its endpoint and static credentials come from ``status()["aws"]``
and retries are off, so a call moto does not implement fails at once instead of being
retried for a minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config


class AwsClients:
    """Lazily created, cached clients for one region (and one endpoint, for the sandbox)."""

    def __init__(self, region: str, sandbox: Mapping[str, Any] | None = None) -> None:
        self.region = region
        self.sandbox = dict(sandbox) if sandbox else None
        if self.sandbox:
            self._session = boto3.Session(
                aws_access_key_id=self.sandbox.get("access_key_id", "testing"),
                aws_secret_access_key=self.sandbox.get("secret_access_key", "testing"),
                region_name=self.sandbox.get("region", region),
            )
            self._config = Config(retries={"max_attempts": 1, "mode": "standard"},
                                  connect_timeout=3, read_timeout=30)
        else:
            self._session = boto3.Session(region_name=region)
            self._config = Config(retries={"max_attempts": 5, "mode": "adaptive"})
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            kwargs: dict[str, Any] = {"config": self._config}
            if self.sandbox and self.sandbox.get("endpoint_url"):
                kwargs["endpoint_url"] = self.sandbox["endpoint_url"]
            self._clients[service] = self._session.client(service, **kwargs)
        return self._clients[service]

    def env(self) -> dict[str, str]:
        """Environment for child processes (``chaos run``) so they reach the same account."""
        if not self.sandbox:
            return {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        return {
            "AWS_ENDPOINT_URL": self.sandbox["endpoint_url"],
            "AWS_ACCESS_KEY_ID": self.sandbox.get("access_key_id", "testing"),
            "AWS_SECRET_ACCESS_KEY": self.sandbox.get("secret_access_key", "testing"),
            "AWS_REGION": self.sandbox.get("region", self.region),
            "AWS_DEFAULT_REGION": self.sandbox.get("region", self.region),
            "AWS_MAX_ATTEMPTS": "1",
        }
