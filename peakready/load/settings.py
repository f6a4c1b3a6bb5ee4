"""Load settings and their validation: everything is checked before any load starts."""

from __future__ import annotations

import http.client
import math
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from peakready.errors import BadInput
from peakready.profiles import Profile, load_profile

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LOCUSTFILE = REPO_ROOT / "scenarios" / "storefront.py"
DEFAULT_MAX_USERS = 2000


@dataclass
class LoadSettings:
    """What ``peakready load`` / ``peakready run`` need to start Locust.

    ``workers``: 1 runs one Locust process; N >= 2 runs a master and N workers on this
    machine, each worker taking 1/N of the arrivals. ``max_users`` caps the user pool of
    each load process. ``extra_args`` go to every Locust process (e.g. the scenario's
    ``--shopper-mix normal``); ``extra_env`` is added to their environment. ``drain_s``:
    at the end of the profile, requests in flight get this long to complete (Locust's
    ``--stop-timeout``) so the last seconds of a slow run are recorded too.
    """

    host: str
    profile: Path | str
    scale: float = 1.0
    speed: float = 1.0
    duration_s: float | None = None
    locustfile: Path | str = DEFAULT_LOCUSTFILE
    user_classes: list[str] = field(default_factory=list)
    workers: int = 1
    max_users: int = DEFAULT_MAX_USERS
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    shard_seconds: float = 2.0
    drain_s: float = 10.0
    grace_s: float = 10.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = str(self.profile)
        data["locustfile"] = str(self.locustfile)
        return data


def resolve(settings: LoadSettings) -> Profile:
    """Validate every field; returns the profile after scale, speed and duration."""
    _check_url(settings.host)
    for name in ("scale", "speed"):
        value = getattr(settings, name)
        if not isinstance(value, int | float) or not (value > 0 and math.isfinite(value)):
            raise BadInput(f"--{name} must be a positive number, got {value!r}")
    if settings.duration_s is not None and not (settings.duration_s > 0):
        raise BadInput(f"--duration must be a positive number of seconds, got {settings.duration_s!r}")
    if not isinstance(settings.workers, int) or settings.workers < 1:
        raise BadInput(f"--workers must be an integer >= 1, got {settings.workers!r}")
    if not isinstance(settings.max_users, int) or settings.max_users < 1:
        raise BadInput(f"--max-users must be an integer >= 1, got {settings.max_users!r}")
    if not Path(settings.locustfile).is_file():
        raise BadInput(f"locustfile {settings.locustfile}: file not found")
    profile = load_profile(settings.profile).scaled(settings.scale).compressed(settings.speed)
    if settings.duration_s is not None:
        profile = profile.truncated(settings.duration_s)
    return profile


def _check_url(url: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"--host must be an http(s) URL like http://127.0.0.1:8080, got {url!r}")


def check_host(url: str, timeout_s: float = 5.0) -> None:
    """Any HTTP answer (even 404 or 500) proves the storefront is there; no answer is
    bad input, reported before any load is sent."""
    _check_url(url)
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise BadInput(f"host {url} is unreachable ({reason})") from None
