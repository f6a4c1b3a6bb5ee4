"""``target.paging`` of a plan: which alarm topics a run observes, and PagerDuty.

```yaml
target:
  paging:
    topics: [arn:aws:sns:eu-central-1:123456789012:oncall]   # or topic names
    pagerduty:                          # optional: list the incidents of the run window
      services: [PABC123]               # PagerDuty service ids
      token_env: PAGERDUTY_TOKEN        # the variable holding the REST token (default)
  allow:
    topics: [oncall]                    # every observed topic must be listed here
```

The token is read from the environment when the run starts and is never written to the
run folder or a log: the plan only names the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PAGERDUTY_API = "https://api.pagerduty.com"
DEFAULT_TOKEN_ENV = "PAGERDUTY_TOKEN"
KEYS = {"topics", "pagerduty"}
PAGERDUTY_KEYS = {"services", "token_env", "api_url"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOPIC = re.compile(r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:)?[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True)
class PagerDutyConfig:
    services: tuple[str, ...]
    token_env: str = DEFAULT_TOKEN_ENV
    api_url: str = PAGERDUTY_API


@dataclass(frozen=True)
class PagingConfig:
    topics: tuple[str, ...] = ()
    pagerduty: PagerDutyConfig | None = None
    notes: list[str] = field(default_factory=list)


def topic_name(topic: str) -> str:
    return topic.rsplit(":", 1)[-1]


def allowed(topic: str, allow: list[str]) -> bool:
    """A topic is allowed when the allow-list names it (its ARN, or its name when either
    side is a bare name)."""
    for entry in allow:
        if entry == topic:
            return True
        if (":" not in entry or ":" not in topic) and topic_name(entry) == topic_name(topic):
            return True
    return False


def parse(fail: Callable[[str, str], None], raw: Any, allow_topics: list[str]) -> dict[str, Any]:
    """Validate ``target.paging`` (``fail(field, message)`` raises); the plain dict kept in
    the resolved plan."""
    if raw is None:
        return {"topics": [], "pagerduty": None}
    if not isinstance(raw, Mapping):
        fail("target.paging", "must be a mapping (topics, pagerduty)")
    extra = sorted(set(map(str, raw)) - KEYS)
    if extra:
        fail(f"target.paging.{extra[0]}", f"unknown field (known: {', '.join(sorted(KEYS))})")
    topics = raw.get("topics") or []
    if not isinstance(topics, list):
        fail("target.paging.topics", "must be a list of SNS topic ARNs or names")
    for i, topic in enumerate(topics):
        if not isinstance(topic, str) or not (TOPIC.match(topic) or "CHANGE-ME" in topic):
            fail(f"target.paging.topics[{i}]", f"not an SNS topic ARN or name: {topic!r}")
        if "CHANGE-ME" not in topic and not allowed(topic, allow_topics):
            fail(f"target.paging.topics[{i}]", f"topic {topic} is not in target.allow.topics "
                 f"({', '.join(allow_topics) or 'empty'}): peakready subscribes a queue only "
                 "to topics the plan allows")
    out: dict[str, Any] = {"topics": list(topics), "pagerduty": None}
    pd = raw.get("pagerduty")
    if pd is not None:
        if not isinstance(pd, Mapping):
            fail("target.paging.pagerduty", "must be a mapping (services, token_env, api_url)")
        extra = sorted(set(map(str, pd)) - PAGERDUTY_KEYS)
        if extra:
            fail(f"target.paging.pagerduty.{extra[0]}",
                 f"unknown field (known: {', '.join(sorted(PAGERDUTY_KEYS))})")
        services = pd.get("services")
        if not isinstance(services, list) or not services or not all(
                isinstance(s, str) and s for s in services):
            fail("target.paging.pagerduty.services", "must be a non-empty list of service ids")
        token_env = pd.get("token_env", DEFAULT_TOKEN_ENV)
        if not isinstance(token_env, str) or not ENV_NAME.match(token_env):
            fail("target.paging.pagerduty.token_env",
                 f"must name an environment variable, got {token_env!r}")
        api_url = pd.get("api_url", PAGERDUTY_API)
        if not isinstance(api_url, str) or not re.match(r"^https?://\S+$", api_url):
            fail("target.paging.pagerduty.api_url", f"must be an http(s) URL, got {api_url!r}")
        out["pagerduty"] = {"services": list(services), "token_env": token_env,
                            "api_url": api_url.rstrip("/")}
    return out


def from_target(target: Mapping[str, Any]) -> PagingConfig:
    raw = target.get("paging") or {}
    pd = raw.get("pagerduty")
    return PagingConfig(tuple(raw.get("topics") or ()),
                        PagerDutyConfig(tuple(pd["services"]), pd["token_env"], pd["api_url"])
                        if pd else None)
