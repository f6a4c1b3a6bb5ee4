"""The sandbox's pager: a real process the alarm topic's HTTP subscription delivers to.

It stands where PagerDuty's CloudWatch integration stands on AWS
(``https://events.pagerduty.com/integration/<key>/enqueue``): it confirms the SNS
subscription itself (GETs ``SubscribeURL``, as PagerDuty does), records every
notification with its arrival time, opens and resolves incidents de-duplicated by alarm
(``peakready.sandbox.pagerduty``), and answers a PagerDuty-REST-shaped ``GET /incidents``
so the AWS path's incident listing is tested against it. Every record is also appended
to ``--log`` (JSON lines), so the sandbox's logs keep the pages after it stops.

Routes: ``POST /integration/<key>/enqueue`` (SNS), ``GET /pages`` (everything recorded),
``GET /incidents``, ``GET /services/<id>`` (REST, token required), ``GET /health``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from peakready.sandbox import http11, serve
from peakready.sandbox.pagerduty import SERVICE_ID, Book

INTEGRATION = re.compile(r"^/integration/([^/]+)/enqueue$")
CONFIRM_TIMEOUT_S = 5.0


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rest_incident(i: dict[str, Any]) -> dict[str, Any]:
    """An incident as PagerDuty's REST v2 shows it."""
    return {"id": i["id"], "type": "incident", "incident_number": i["incident_number"],
            "incident_key": i["incident_key"], "title": i["title"], "status": i["status"],
            "created_at": _iso(i["created_at"]),
            "last_status_change_at": _iso(i["last_status_change_at"]),
            "resolved_at": _iso(i["resolved_at"]),
            "service": {"id": i["service_id"], "type": "service_reference"},
            "alert_counts": {"all": i["alert_count"],
                             "triggered": i["alert_count"] if i["status"] == "triggered" else 0,
                             "resolved": i["alert_count"] if i["status"] == "resolved" else 0}}


class Pager:
    def __init__(self, key: str, token: str, log_path: str | None) -> None:
        self.key, self.token = key, token
        self.book = Book()
        self.confirmations: list[dict[str, Any]] = []
        self.log_path = log_path

    def _log(self, record: dict[str, Any]) -> None:
        if self.log_path:
            with open(self.log_path, "a") as fh:
                fh.write(json.dumps(record, default=str) + "\n")

    async def handle(self, req: http11.Request) -> bytes:
        arrived = time.time()
        parts = urlsplit(req.target)
        path, query = parts.path, parse_qs(parts.query)
        if req.method == "POST" and (m := INTEGRATION.match(path)):
            if m.group(1) != self.key:
                return http11.json_response(404, {"status": "invalid routing key"})
            try:
                envelope = json.loads(req.body or b"{}")
            except ValueError:
                return http11.json_response(400, {"status": "invalid event"})
            kind = req.headers.get("x-amz-sns-message-type") or envelope.get("Type", "")
            if kind == "SubscriptionConfirmation":
                asyncio.get_running_loop().run_in_executor(None, self._confirm, envelope,
                                                           arrived)
                return http11.json_response(200, {"status": "confirming"})
            page = self.book.receive(envelope, arrived, kind or "Notification")
            self._log({"record": "page", **page})
            return http11.json_response(202, {"status": "success", "dedup_key": page["alarm"]})
        if req.method == "GET" and path == "/pages":
            return http11.json_response(200, {**self.book.snapshot(),
                                              "confirmations": list(self.confirmations)})
        if req.method == "GET" and path == "/health":
            return http11.json_response(200, {"ok": True})
        if req.method == "GET" and (path == "/incidents" or path.startswith("/services/")):
            if req.headers.get("authorization") != f"Token token={self.token}":
                return http11.json_response(401, {"error": {"message": "Unauthorized",
                                                            "code": 2006}})
            if path.startswith("/services/"):
                sid = path.rsplit("/", 1)[1]
                if sid != SERVICE_ID:
                    return http11.json_response(404, {"error": {"message": "Not Found"}})
                return http11.json_response(200, {"service": {"id": sid, "type": "service",
                                                              "name": "peakready sandbox"}})
            found = self.book.list_incidents(
                _epoch((query.get("since") or [None])[0]),
                _epoch((query.get("until") or [None])[0]),
                query.get("statuses[]"), query.get("service_ids[]"))
            return http11.json_response(200, {"incidents": [rest_incident(i) for i in found],
                                              "limit": 100, "offset": 0, "more": False})
        return http11.json_response(404, {"error": f"no route {req.method} {path}"})

    def _confirm(self, envelope: dict[str, Any], arrived: float) -> None:
        """GET SubscribeURL, as PagerDuty confirms a subscription itself."""
        url = envelope.get("SubscribeURL") or ""
        record: dict[str, Any] = {"arrived_at": arrived, "topic_arn": envelope.get("TopicArn"),
                                  "subscribe_url": url}
        try:
            with urllib.request.urlopen(url, timeout=CONFIRM_TIMEOUT_S) as resp:
                record.update(status=resp.status, confirmed=200 <= resp.status < 300)
        except (OSError, ValueError) as exc:
            record.update(status=None, confirmed=False, error=str(exc))
        record["confirmed_at"] = time.time()
        self.confirmations.append(record)
        self._log({"record": "confirmation", **record})


async def main(args: argparse.Namespace) -> None:
    pager = Pager(args.key, args.token, args.log)
    server = await asyncio.start_server(serve.connection_handler(pager.handle),
                                        sock=serve.listening_socket(args.fd, args.port))

    async def shutdown() -> None:
        server.close()

    await serve.run_until_stopped([shutdown])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="peakready-pager")
    p.add_argument("--fd", type=int)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key", required=True, help="the integration key of the enqueue URL")
    p.add_argument("--token", required=True, help="the REST API token GET /incidents wants")
    p.add_argument("--log", help="append every page and confirmation here (JSON lines)")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
