"""SNS HTTP(S) subscriptions as AWS runs them, where moto 5.2.5 does not.

moto creates HTTP subscriptions already confirmed, never POSTs a SubscriptionConfirmation,
and delivers with a timeout-less ``requests.post`` inside the publish call, which in the
sandbox runs under the control plane's one moto lock: a slow or dead receiver would stall
every API call and the alarm evaluator. Here (only while a control plane is attached):

- a new HTTP(S) subscription is ``PendingConfirmation`` and gets a
  ``SubscriptionConfirmation`` POST with ``Token`` and ``SubscribeURL``; nothing is
  delivered until the URL is fetched or ``ConfirmSubscription`` is called with the token;
- a notification to a confirmed subscription is built under the lock (moto's signed
  envelope) and POSTed *after* it is released, by a small pool, with the ``x-amz-sns-*``
  headers, a per-attempt timeout and AWS's default HTTP retry policy (3 retries), scaled to
  the sandbox's time constants. The publisher can collect the deliveries it caused and
  learn their outcome (the alarm history records it).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sns.exceptions import SNSInvalidParameter
from moto.sns.models import SNSBackend, Subscription
from moto.sns.responses import SNSResponse

log = logging.getLogger(__name__)
_state: dict[str, Any] = {"endpoint_url": None, "timing": None, "installed": False,
                          "pool": None}
_tokens: dict[str, str] = {}  # confirmation token -> subscription ARN
_collector = threading.local()


@dataclass
class Delivery:
    endpoint: str
    envelope: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Outcome:
    endpoint: str
    ok: bool
    attempts: int
    status: int | None
    error: str
    delivered_at: float


def attach(endpoint_url: str, timing: Any) -> None:
    """Turn the behaviour on for the control plane serving ``endpoint_url``."""
    install()
    _state.update(endpoint_url=endpoint_url, timing=timing)
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(4, thread_name_prefix="sns-http")


def detach() -> None:
    _state.update(endpoint_url=None, timing=None)
    pool, _state["pool"] = _state["pool"], None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def active() -> bool:
    return _state["endpoint_url"] is not None


@contextmanager
def collecting() -> Iterator[list[Delivery]]:
    """Deliveries caused by publishes in this block are handed to the caller (who runs
    them with ``deliver_all`` outside the lock) instead of being sent in the background."""
    jobs: list[Delivery] = []
    _collector.jobs = jobs
    try:
        yield jobs
    finally:
        _collector.jobs = None


def _policy() -> tuple[float, int, float]:
    t = _state["timing"]
    return (float(getattr(t, "sns_http_timeout_s", 2.0)), int(getattr(t, "sns_http_retries", 3)),
            float(getattr(t, "sns_http_retry_delay_s", 1.0)))


def deliver(job: Delivery, stop: threading.Event | None = None) -> Outcome:
    """POST one message: 2xx is delivered; anything else (or no answer within the
    timeout) is retried per the HTTP retry policy, then given up."""
    timeout, retries, delay = _policy()
    status, error = None, ""
    for attempt in range(1, retries + 2):
        try:
            resp = requests.post(job.endpoint, data=json.dumps(job.envelope).encode(),
                                 headers=job.headers, timeout=timeout)
            status = resp.status_code
            if 200 <= status < 300:
                return Outcome(job.endpoint, True, attempt, status, "", time.time())
            error = f"HTTP {status}"
        except requests.RequestException as exc:
            error = _short(exc)
        if attempt <= retries and (stop.wait(delay) if stop else time.sleep(delay)):
            break
    return Outcome(job.endpoint, False, retries + 1, status, error, time.time())


def deliver_all(jobs: list[Delivery], done: Callable[[list[Outcome]], None]) -> None:
    """Run ``jobs`` in the pool (never under the lock), then ``done(outcomes)``."""
    pool = _state["pool"]

    def run() -> None:
        outcomes = [deliver(job) for job in jobs]
        try:
            done(outcomes)
        except Exception:  # noqa: BLE001 - a failing callback must not kill the pool
            log.exception("delivery callback failed")

    if pool is None:
        run()
    else:
        pool.submit(run)


def _short(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "Connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _headers(sub: Subscription, kind: str, message_id: str) -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": kind,
            "x-amz-sns-message-id": message_id, "x-amz-sns-topic-arn": sub.topic.arn,
            "x-amz-sns-subscription-arn": sub.arn, "User-Agent": "Amazon Simple Notification Service Agent"}


def _send(job: Delivery) -> None:
    jobs = getattr(_collector, "jobs", None)
    if jobs is not None:
        jobs.append(job)
        return
    pool = _state["pool"]
    if pool is not None:
        pool.submit(lambda: log.info("sns delivery %s", deliver(job)))


def _confirmation(sub: Subscription) -> Delivery:
    token = secrets.token_hex(64)
    _tokens[token] = sub.arn
    region = sub.topic.arn.split(":")[3]
    query = urlencode({"Action": "ConfirmSubscription", "TopicArn": sub.topic.arn,
                       "Token": token})
    message_id = secrets.token_hex(16)
    envelope = {"Type": "SubscriptionConfirmation", "MessageId": message_id, "Token": token,
                "TopicArn": sub.topic.arn,
                "Message": f"You have chosen to subscribe to the topic {sub.topic.arn}.\n"
                           "To confirm the subscription, visit the SubscribeURL included in "
                           "this message.",
                "SubscribeURL": f"{_state['endpoint_url']}/?{query}",
                "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "SignatureVersion": "2", "Region": region}
    return Delivery(sub.endpoint, envelope, _headers(sub, "SubscriptionConfirmation",
                                                     message_id))


def install() -> None:
    """Idempotent; the patches act only while ``attach``ed."""
    if _state["installed"]:
        return
    _state["installed"] = True

    original_subscribe = SNSBackend.subscribe

    def subscribe(self, topic_arn: str, endpoint: str, protocol: str) -> Subscription:
        before = set(self.subscriptions)
        sub = original_subscribe(self, topic_arn, endpoint, protocol)
        if active() and protocol in ("http", "https") and sub.arn not in before:
            sub.confirmed = False
            sub.attributes["PendingConfirmation"] = True
            sub.attributes["ConfirmationWasAuthenticated"] = False
            _send(_confirmation(sub))
        return sub

    SNSBackend.subscribe = subscribe

    original_publish = Subscription.publish

    def publish(self, message: str, message_id: str, subject: str | None = None,
                *args: Any, **kwargs: Any) -> None:
        if not (active() and self.protocol in ("http", "https")):
            return original_publish(self, message, message_id, subject, *args, **kwargs)
        if self.attributes.get("PendingConfirmation") is True:
            return None  # AWS delivers nothing before the subscription is confirmed
        envelope = self.get_post_data(message, message_id, subject)
        _send(Delivery(self.endpoint, envelope, _headers(self, "Notification", message_id)))
        return None

    Subscription.publish = publish

    original_confirm = SNSResponse.confirm_subscription

    def confirm_subscription(self):
        if not active():
            return original_confirm(self)
        arn = _tokens.get(self._get_param("Token") or "")
        sub = self.backend.subscriptions.get(arn or "")
        if sub is None or sub.topic.arn != self._get_param("TopicArn"):
            raise SNSInvalidParameter("Invalid token")
        sub.confirmed = True
        sub.attributes["PendingConfirmation"] = False
        sub.attributes["ConfirmationWasAuthenticated"] = True
        from moto.core.responses import ActionResult

        return ActionResult({"SubscriptionArn": sub.arn})

    SNSResponse.confirm_subscription = confirm_subscription

    # SubscribeURL is an unsigned GET; moto routes unsigned requests by host or body and
    # would hand it to S3: route ConfirmSubscription to SNS in the topic's region.
    original_infer = DomainDispatcherApplication.infer_service_region_host

    def infer(self, environ: dict[str, Any], path: str):
        query = environ.get("QUERY_STRING", "")
        if active() and not environ.get("HTTP_AUTHORIZATION") \
                and "Action=ConfirmSubscription" in query:
            from urllib.parse import parse_qs

            topic = (parse_qs(query).get("TopicArn") or [""])[0]
            region = topic.split(":")[3] if topic.count(":") >= 5 else "us-east-1"
            environ["HTTP_AUTHORIZATION"] = (
                f"AWS4-HMAC-SHA256 Credential=SUBSCRIBEURL/20260101/{region}/sns/aws4_request, "
                "SignedHeaders=host, Signature=0")
        return original_infer(self, environ, path)

    DomainDispatcherApplication.infer_service_region_host = infer
