"""PagerDuty REST v2: the incidents created in a run window for the plan's services.

``GET /incidents`` with ``since``/``until`` (created in the window), ``service_ids[]`` and
paging by ``offset``; the token comes from the environment and is only ever put in the
``Authorization`` header (never in a message, a file or a log line).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

ACCEPT = "application/vnd.pagerduty+json;version=2"
TIMEOUT_S = 10.0
MAX_PAGES = 50


class PagerDutyError(Exception):
    """A listing that failed, with a message that never contains the token."""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(api_url: str, path: str, token: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    url = f"{api_url}{path}" + (f"?{urlencode(params)}" if params else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Token token={token}",
                                               "Accept": ACCEPT})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise PagerDutyError(f"GET {path}: HTTP {exc.code}"
                             + (" (the token was refused)" if exc.code in (401, 403) else "")
                             ) from None
    except (OSError, ValueError) as exc:
        raise PagerDutyError(f"GET {path}: {type(exc).__name__}: {exc}") from None


def check_service(api_url: str, token: str, service_id: str) -> None:
    """Preflight: the token works and the service exists."""
    _get(api_url, f"/services/{service_id}", token, [])


def incidents(api_url: str, token: str, services: list[str], since: float,
              until: float) -> list[dict[str, Any]]:
    """Every incident created in [since, until) on ``services``."""
    out: list[dict[str, Any]] = []
    offset = 0
    for _ in range(MAX_PAGES):
        params = [("since", _iso(since)), ("until", _iso(until)), ("limit", "100"),
                  ("offset", str(offset)), ("sort_by", "created_at:asc")]
        params += [("service_ids[]", s) for s in services]
        page = _get(api_url, "/incidents", token, params)
        out += page.get("incidents") or []
        if not page.get("more"):
            break
        offset += len(page.get("incidents") or []) or 100
    return out
