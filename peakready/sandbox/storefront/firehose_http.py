"""Firehose ``PutRecordBatch`` without boto3: one JSON request over a persistent HTTP(S)
connection, signed with botocore's own SigV4 signer.

Why: the storefront's logging must cost under 5 % of a request's CPU, and a boto3 call is
mostly the SDK around the request (parameter validation of every record, the event
system, response parsing, ~10^5 service-model objects the garbage collector walks). The
wire format here is the one boto3 sends (awsJson1_1, target
``Firehose_20150804.PutRecordBatch``, base64 record data); the answer is the same dict
(``FailedPutCount``, ``RequestResponses``). It works against AWS as boto3 does:
credentials from explicit keys or else botocore's ordinary chain (environment, profile,
SSO, container or instance role; refreshed when they expire), the endpoint from
``endpoint_url``, else ``AWS_ENDPOINT_URL_FIREHOSE`` / ``AWS_ENDPOINT_URL``, else
``https://firehose.<region>.amazonaws.com``. A whole-call failure (connection error,
HTTP 5xx, throttling) is tried ``attempts`` times in all with jittered backoff, as the
SDK's standard retry mode does; what still fails raises ``FirehoseCallError``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import time
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

TARGET = "Firehose_20150804.PutRecordBatch"
RETRYABLE_CODES = {"ServiceUnavailableException", "InternalFailure", "ThrottlingException",
                   "LimitExceededException"}


class FirehoseCallError(Exception):
    """The call failed as a whole (after the retries): ``code``, HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code, self.status = code, status


def endpoint_for(region: str, endpoint_url: str = "") -> str:
    """The Firehose endpoint boto3 would use for ``region``."""
    return (endpoint_url or os.environ.get("AWS_ENDPOINT_URL_FIREHOSE")
            or os.environ.get("AWS_ENDPOINT_URL") or f"https://firehose.{region}.amazonaws.com")


class FirehoseHttp:
    """``put_record_batch(records)`` for one delivery stream."""

    def __init__(self, stream: str, region: str, endpoint_url: str = "",
                 access_key_id: str = "", secret_access_key: str = "",
                 timeout_s: float = 10.0, attempts: int = 3) -> None:
        self.stream, self.region, self.attempts = stream, region, max(1, attempts)
        self.url = endpoint_for(region, endpoint_url).rstrip("/") + "/"
        parts = urlsplit(self.url)
        self.host = parts.netloc
        conn_cls = (http.client.HTTPSConnection if parts.scheme == "https"
                    else http.client.HTTPConnection)
        self._conn = conn_cls(parts.hostname, parts.port, timeout=timeout_s)
        if access_key_id:
            from botocore.credentials import Credentials

            self._credentials: Any = Credentials(access_key_id, secret_access_key)
        else:
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
            if self._credentials is None:
                raise FirehoseCallError("NoCredentials", "no AWS credentials found (botocore "
                                        "chain: env, profile, SSO, instance role)", 0)

    def close(self) -> None:
        self._conn.close()

    def _signed(self, body: bytes) -> dict[str, str]:
        request = AWSRequest("POST", self.url, data=body, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET,
            "Host": self.host})
        SigV4Auth(self._credentials.get_frozen_credentials(), "firehose",
                  self.region).add_auth(request)
        return dict(request.headers.items())

    def _once(self, body: bytes) -> tuple[int, bytes]:
        headers = self._signed(body)  # signed per attempt: the date is part of it
        try:
            self._conn.request("POST", "/", body=body, headers=headers)
            response = self._conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()  # the next request opens a fresh connection
            raise

    def put_record_batch(self, records: list[bytes]) -> dict[str, Any]:
        """Put ``records`` (raw bytes each); the response as boto3 returns it."""
        body = json.dumps({"DeliveryStreamName": self.stream, "Records": [
            {"Data": base64.b64encode(r).decode("ascii")} for r in records]},
            separators=(",", ":")).encode()
        for attempt in range(1, self.attempts + 1):
            try:
                status, payload = self._once(body)
            except (OSError, http.client.HTTPException) as exc:
                if attempt == self.attempts:
                    raise FirehoseCallError(type(exc).__name__, str(exc), 0) from None
                self._backoff(attempt)
                continue
            if status == 200:
                return json.loads(payload)
            code, message = _error(payload, status)
            if attempt == self.attempts or not (status >= 500 or code in RETRYABLE_CODES):
                raise FirehoseCallError(code, message, status)
            self._backoff(attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(random.uniform(0, min(20.0, 0.05 * 2 ** attempt)))  # noqa: S311


def _error(payload: bytes, status: int) -> tuple[str, str]:
    """AWS's JSON error (``__type``, ``message``); the HTTP status when it is not one."""
    try:
        doc = json.loads(payload or b"{}")
    except ValueError:
        return f"HTTP{status}", payload[:200].decode("utf-8", "replace")
    code = str(doc.get("__type") or doc.get("code") or f"HTTP{status}").rsplit("#", 1)[-1]
    return code, str(doc.get("message") or doc.get("Message") or "")
