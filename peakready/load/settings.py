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
# loaded into every Locust process next to the user's locustfile (-f plugin,locustfile)
PLUGIN_FILE = Path(__file__).resolve().parent / "locustplugin" / "peakready_plugin.py"
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

    ``closed_model``: keep the locustfile's own ``wait_time`` pacing with a fixed pool of
    ``users`` (default: one per request per second of the profile's peak) instead of
    arrival tokens; the run is labelled closed-model everywhere. ``order_request`` /
    ``order_field``: how a confirmed order shows in a response (request name, optionally
    ``"POST name"``, and a JSON field), for locustfiles that do not call ``record_order``.

    ``master_bind``: ``HOST[:PORT]`` the master listens on (default 127.0.0.1 and a free
    port; with external workers the port defaults to Locust's 5557). ``external_workers``:
    start no worker here; wait up to ``worker_wait_s`` for ``workers`` workers started
    elsewhere (``peakready worker --master HOST:PORT``, or Kubernetes).
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
    closed_model: bool = False
    users: int | None = None
    order_request: str = ""
    order_field: str = "order_id"
    master_bind: str = ""
    external_workers: bool = False
    worker_wait_s: float = 120.0

    @property
    def load_model(self) -> str:
        return "closed" if self.closed_model else "open"

    def locust_args(self) -> list[str]:
        """The peakready options every Locust process gets besides the profile and the
        run folder (which each host resolves for itself)."""
        args = ["--max-users", str(self.max_users), "--shard-seconds", f"{self.shard_seconds:g}"]
        if self.closed_model:
            args.append("--closed-model")
            if self.users is not None:
                args += ["--users", str(self.users)]
        if self.order_request:
            args += ["--order-request", self.order_request, "--order-field", self.order_field]
        return args

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = str(self.profile)
        data["locustfile"] = str(self.locustfile)
        data["load_model"] = self.load_model
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
    if settings.external_workers and settings.workers < 1:
        raise BadInput("--external-workers needs --workers N >= 1 (how many to wait for)")
    if settings.master_bind:
        master_address(settings)
    if not (isinstance(settings.worker_wait_s, int | float) and settings.worker_wait_s > 0):
        raise BadInput(f"--worker-wait must be a positive number of seconds, got "
                       f"{settings.worker_wait_s!r}")
    if not isinstance(settings.max_users, int) or settings.max_users < 1:
        raise BadInput(f"--max-users must be an integer >= 1, got {settings.max_users!r}")
    if not Path(settings.locustfile).is_file():
        raise BadInput(f"locustfile {settings.locustfile}: file not found")
    if settings.users is not None and (not isinstance(settings.users, int) or settings.users < 1):
        raise BadInput(f"--users must be an integer >= 1, got {settings.users!r}")
    if settings.users is not None and not settings.closed_model:
        raise BadInput("--users sets the pool of a closed model: it needs --closed-model "
                       "(the open model's pool follows the arrival rate)")
    if settings.order_request and not settings.order_field.strip(".").strip():
        raise BadInput("--order-field must name a JSON field, e.g. order_id")
    profile = load_profile(settings.profile).scaled(settings.scale).compressed(settings.speed)
    if settings.duration_s is not None:
        profile = profile.truncated(settings.duration_s)
    return profile


DEFAULT_MASTER_PORT = 5557  # Locust's


def master_address(settings: LoadSettings) -> tuple[str, int | None]:
    """(host, port) the master binds to; port None: pick a free one (local workers)."""
    text = (settings.master_bind or "").strip()
    if not text:
        return "127.0.0.1", DEFAULT_MASTER_PORT if settings.external_workers else None
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if not host or any(c.isspace() for c in host):
        raise BadInput(f"--master-bind must be HOST[:PORT] (e.g. 10.0.0.1:5557 or "
                       f"0.0.0.0), got {text!r}")
    if not port:
        return host, DEFAULT_MASTER_PORT if settings.external_workers else None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--master-bind: port must be 1-65535, got {port!r}")
    return host, int(port)


def check_locustfile(settings: LoadSettings) -> dict[str, Any]:
    """Import the locustfile with Locust next to peakready's plugin and parse the options
    the load processes will get (in a child process); BadInput with Locust's own error
    text if it cannot run. Returns the user classes that will run."""
    from peakready.load.preflight import check_locustfile as run_check

    args = [*settings.locust_args(), *settings.extra_args, *settings.user_classes]
    return run_check(PLUGIN_FILE, settings.locustfile, args, env=settings.extra_env)


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
