"""Locust wiring of the open model, loaded into every Locust process peakready starts.

peakready always passes its plugin file (``locustplugin/peakready_plugin.py``, which
imports this module) next to the user's locustfile, so whatever that file imports, this
module adds the ``--traffic-*`` options (all through ``events.init_command_line_parser``),
a per-process arrival scheduler (``Pacer``), an ``ArrivalRateShape`` that runs for the
profile's duration, the per-process sample/order capture, and ``live.json`` on the
master (or the single local process). User classes written closed (``wait_time``) are
paced by arrival tokens (``taskpacing``); ``ArrivalUser`` paces itself the same way;
``--closed-model`` keeps the file's own pacing and labels the run. Distributed mode: the
master assigns every worker its index, the worker count and the common start time t0,
and collects the live rows.

Importing this module imports Locust (and so gevent's monkey patching): the engine side
(`peakready.load`) never imports it, it only starts Locust processes.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from locust import FastHttpUser, LoadTestShape, User, events
from locust.clients import HttpSession
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import LocalRunner, MasterRunner, WorkerRunner
from locust.user.task import LOCUST_STATE_WAITING

from peakready import runfolder
from peakready.errors import EXIT_BAD_INPUT, BadInput
from peakready.load import distributed, taskpacing
from peakready.load.capture import OrderLog, OrderRule, ShardWriter
from peakready.load.live import LiveStats
from peakready.load.pacer import Pacer

if TYPE_CHECKING:  # pandas is imported only when a profile is loaded (not by the check)
    from peakready.profiles import Profile

REQUEST_ID_HEADER = "X-Request-Id"
log = logging.getLogger("peakready.load")

MSG_ASSIGN = "peakready_assign"
MSG_LIVE = "peakready_live"
DEFAULT_MAX_USERS = 2000
# A locustfile may set this so that `locust -f it.py` runs a profile without options.
DEFAULT_PROFILE: str = ""


@dataclass
class _State:
    """Everything one Locust process knows about the run (one per process)."""

    profile: Profile | None = None
    run_dir: Path | None = None
    worker: str = "w0"
    index: int = 0
    count: int = 1
    t0: float | None = None
    max_users: int = DEFAULT_MAX_USERS
    shard_s: float = 2.0
    pacer: Pacer | None = None
    shards: ShardWriter | None = None
    orders: OrderLog | None = None
    live: LiveStats = field(default_factory=LiveStats)
    outbox: list = field(default_factory=list)  # live rows not yet sent to the master
    worker_cap: dict[str, dict[str, Any]] = field(default_factory=dict)
    greenlets: list = field(default_factory=list)
    user_seq: int = 0
    done: bool = False
    forward: bool = False  # a worker forwards its live rows to the master
    owns_run_dir: bool = False  # started without --run-dir: finalise run.json ourselves
    peak_users: int = 0
    closed: bool = False  # --closed-model: the file's own pacing, no arrival tokens
    order_rule: OrderRule | None = None
    orders_seen: set = field(default_factory=set)  # record_order and the rule may both see one
    shipper: Any = None  # worker: ships closed shards to the master (peakready.load.shipping)
    receiver: Any = None  # master: writes the shipped shards into the run folder
    coord: Any = None  # master: assignments, takeovers, the end (peakready.load.coordination)
    ended: bool = False  # worker: the master's end message was handled
    worker_name: str = ""  # worker: --worker-name (the master records it)


STATE = _State()


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    group = parser.add_argument_group("peakready open model")
    group.add_argument("--traffic-profile", default="",
                       help="campaign profile CSV t_s,rps (arrival rate)")
    group.add_argument("--traffic-scale", type=float, default=1.0, help="rps multiplier")
    group.add_argument("--traffic-speed", type=float, default=1.0, help="time compression")
    group.add_argument("--traffic-duration", type=float, default=0.0,
                       help="cap on the run length in s (0: the whole profile)")
    group.add_argument("--max-users", type=int, default=DEFAULT_MAX_USERS,
                       help="cap on concurrent users per load process")
    group.add_argument("--run-dir", default="", help="run folder (default: a new one under reports/)")
    group.add_argument("--shard-seconds", type=float, default=2.0,
                       help="seconds between sample shard flushes")
    group.add_argument("--closed-model", action="store_true", default=False,
                       help="keep the locustfile's own wait_time pacing (users from --users); "
                       "the run is labelled closed-model: coordinated omission possible")
    group.add_argument("--order-request", default="",
                       help="request name (optionally 'POST /api/checkout') whose response "
                       "confirms an order")
    group.add_argument("--order-field", default="order_id",
                       help="JSON field (dotted for nested) holding the order id")
    group.add_argument("--worker-name", default="",
                       help="worker: the name the master records (default: the host name)")
    group.add_argument("--worker-bundle", default="",
                       help="master: JSON naming what `peakready worker` fetches")
    group.add_argument("--drain-seconds", type=float, default=10.0,
                       help="master: in-flight requests' time at the end (as --stop-timeout)")


def load_model() -> str:
    return "closed" if STATE.closed else "open"


def profile_path(options) -> str:
    return getattr(options, "traffic_profile", "") or DEFAULT_PROFILE


def resolved_profile(options) -> Profile:
    from peakready.profiles import load_profile

    profile = load_profile(profile_path(options))
    profile = profile.scaled(options.traffic_scale).compressed(options.traffic_speed)
    if options.traffic_duration:
        profile = profile.truncated(options.traffic_duration)
    return profile


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    options = environment.parsed_options
    if options is None or not profile_path(options):
        return
    runner = environment.runner
    try:
        STATE.profile = resolved_profile(options)
    except BadInput as exc:  # one clear line and exit 2, like `peakready load`
        sys.stderr.write(f"peakready: error: {exc}\n")
        raise SystemExit(EXIT_BAD_INPUT) from None
    STATE.max_users = options.max_users
    STATE.shard_s = options.shard_seconds
    STATE.closed = bool(options.closed_model)
    if options.order_request:
        STATE.order_rule = OrderRule(options.order_request, options.order_field)
    from peakready.load.locustcheck import plugin_problems

    problems = plugin_problems(list(environment.user_classes),
                               list((environment.available_shape_classes or {}).values()),
                               STATE.closed)
    if problems:  # the same line peakready's preflight prints
        files = [f for f in environment.parsed_locustfiles or []
                 if Path(f).name != "peakready_plugin.py"]
        sys.stderr.write(f"peakready: error: locustfile {', '.join(files) or '?'}: "
                         f"{problems[0]}\n")
        raise SystemExit(EXIT_BAD_INPUT)
    install_request_ids()
    if not STATE.closed:
        taskpacing.install(lambda: STATE.pacer)
        if getattr(options, "num_users", None):
            log.warning("--users is ignored in the open model (the profile sets the rate); "
                        "it sets the user count with --closed-model")
    if options.run_dir:
        STATE.run_dir = Path(options.run_dir)
    elif isinstance(runner, WorkerRunner):  # a spool of its own: it ships what it writes
        import tempfile

        STATE.run_dir = Path(tempfile.mkdtemp(prefix="peakready-spool-"))
    else:
        STATE.run_dir = runfolder.create(label="locust")
        STATE.owns_run_dir = True
        runfolder.update_run_json(STATE.run_dir, host=environment.host,
                                  traffic_profile=str(profile_path(options)))
        log.info("peakready run folder: %s", STATE.run_dir)
    if isinstance(runner, WorkerRunner):
        runner.register_message(MSG_ASSIGN, _on_assign)
        distributed.install_worker(runner, STATE, options)
    if isinstance(runner, MasterRunner):
        runner.register_message(MSG_LIVE, _on_live_rows)
        distributed.install_master(runner, STATE, options)
    if not isinstance(runner, MasterRunner):
        environment.events.request.add_listener(_on_request)


def _on_assign(msg, **_kw) -> None:
    STATE.index = int(msg.data["index"])
    STATE.count = int(msg.data["count"])
    STATE.t0 = float(msg.data["t0"])


def _on_live_rows(msg, **_kw) -> None:
    STATE.live.extend(msg.data["rows"])
    STATE.worker_cap[msg.data["worker"]] = {"cap_hit": msg.data["cap_hit"],
                                            "max_users": msg.data["max_users"]}


@events.test_start.add_listener
def _on_test_start(environment, **_kw) -> None:
    if STATE.profile is None:
        return
    runner = environment.runner
    STATE.done = False
    if isinstance(runner, MasterRunner):
        _assign_workers(runner)
        STATE.greenlets.append(gevent.spawn(_live_loop, environment))
        STATE.greenlets.append(gevent.spawn(STATE.coord.watch, STATE.profile.duration_s))
        return
    if isinstance(runner, LocalRunner):
        STATE.t0 = time.time()
    STATE.t0 = STATE.t0 or time.time()
    if STATE.run_dir is None:  # a worker whose master did not send the assignment
        log.error("no run folder (start the master with peakready.load.openmodel loaded "
                  "or give --run-dir): samples are not recorded")
        return
    STATE.worker = f"w{STATE.index}"
    STATE.forward = isinstance(runner, WorkerRunner)
    STATE.shards = ShardWriter(STATE.run_dir / runfolder.SAMPLES_DIR, STATE.worker)
    STATE.orders = OrderLog(STATE.run_dir / runfolder.ORDERS_DIR, STATE.worker)
    if not STATE.closed:
        from peakready.profiles import arrival_times

        STATE.pacer = Pacer(arrival_times(STATE.profile, STATE.index, STATE.count), STATE.t0,
                            grow=lambda n: _grow(runner, n), users=lambda: runner.user_count,
                            max_users=STATE.max_users)
        STATE.pacer.start()
    STATE.greenlets.append(gevent.spawn(_flush_loop))
    if isinstance(runner, WorkerRunner):
        distributed.start_shipping(runner, STATE)
    if isinstance(runner, LocalRunner):
        STATE.greenlets.append(gevent.spawn(_live_loop, environment))
    else:
        STATE.greenlets.append(gevent.spawn(_send_live_loop, runner))


def _assign_workers(runner: MasterRunner) -> None:
    """Index, count and a common t0, sent before the spawn messages (same connection)."""
    STATE.t0 = time.time() + 1.0  # time for the spawn messages to reach every worker
    STATE.coord.assign(STATE.t0, lambda client_id, i, n: runner.send_message(
        MSG_ASSIGN, {"index": i, "count": n, "t0": STATE.t0}, client_id=client_id))


def _grow(runner, n: int) -> int:
    """Add n users to the pool (classes by weight; fixed_count classes keep their count)."""
    classes = [c for c in runner.user_classes if not getattr(c, "fixed_count", 0)]
    if not classes:
        return 0
    host = runner.environment.host
    for cls in classes:  # a worker sets the host on its classes only when its spawning starts
        if host and not cls.host:
            cls.host = host
    picks = random.choices(classes, weights=[c.weight for c in classes], k=n)
    spawn: dict[str, int] = {}
    for cls in picks:
        spawn[cls.__name__] = spawn.get(cls.__name__, 0) + 1
    try:
        users = runner.spawn_users(spawn)
    except Exception:  # noqa: BLE001 - keep pacing; the shortfall shows as lag and in the log
        log.exception("could not add users to the pool")
        return 0
    for user in users:
        user._paced_spawn = True
    return len(users)


def _current_user():
    """The Locust user whose greenlet sends this request (Locust spawns each user's
    greenlet with the user as its first argument), or None."""
    args = getattr(gevent.getcurrent(), "args", None)
    return args[0] if args and isinstance(args[0], User) else None


def _user_id(user) -> str:
    uid = user.__dict__.get("_peakready_uid")
    if uid is None:
        STATE.user_seq += 1
        uid = user._peakready_uid = f"{STATE.worker}-u{STATE.user_seq}"
    return uid


def _on_request(request_type, name, response_time, response_length, exception=None,
                context=None, start_time=None, response=None, **_kw) -> None:
    shards = STATE.shards
    if shards is None:
        return
    ts = start_time if start_time is not None else time.time() - response_time / 1000
    if context and "intended_ts" in context:  # ArrivalUser.context()
        intended = context["intended_ts"] or ts
        user_id = context.get("user", "")
    else:
        user = _current_user()
        if user is None:
            intended, user_id = ts, ""
        else:
            intended = user.__dict__.pop(taskpacing.INTENDED, None) or ts
            user_id = _user_id(user)
    status = getattr(response, "status_code", 0) or 0
    ok = exception is None
    shards.add((ts, intended, name, request_type, int(status), ok, float(response_time),
                int(response_length or 0), "" if ok else str(exception), user_id,
                context.get("attack", "") if context else "",
                context.get("request_id", "") if context else ""))
    rule = STATE.order_rule
    if rule is not None and ok and name == rule.name and response is not None:
        order_id = rule.order_id(request_type, response)
        if order_id is not None:
            record_order(order_id, user_id)
    row = (ts + response_time / 1000, float(response_time), ok)
    if STATE.forward:
        STATE.outbox.append(row)
    else:
        STATE.live.add(*row)


def _flush_loop() -> None:
    while True:
        gevent.sleep(STATE.shard_s)
        _flush()


def _flush() -> None:
    if STATE.shards is not None:
        rows = len(STATE.shards.rows)
        try:
            path = STATE.shards.flush()
        except OSError:
            log.exception("could not write a sample shard")
            return
        if path is not None and STATE.shipper is not None:
            STATE.shipper.closed(path, rows)


def _send_live_loop(runner: WorkerRunner) -> None:
    while True:
        gevent.sleep(1.0)
        rows, STATE.outbox = STATE.outbox, []
        pacer = STATE.pacer
        runner.send_message(MSG_LIVE, {"worker": STATE.worker, "rows": rows,
                                       "cap_hit": bool(pacer and pacer.cap_hit),
                                       "max_users": _max_seen(runner)})


def _max_seen(runner) -> int:
    """Largest pool of this process so far: the pacer's count, or (closed model, no
    pacer) the user count sampled every second."""
    STATE.peak_users = max(STATE.peak_users, runner.user_count)
    return max(STATE.pacer.max_seen if STATE.pacer else 0, STATE.peak_users)


def _live_loop(environment) -> None:
    while not STATE.done:
        write_live(environment)
        gevent.sleep(1.0)


def write_live(environment) -> None:
    if STATE.run_dir is None or STATE.t0 is None:
        return
    now = time.time()
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        cap_hit = any(w["cap_hit"] for w in STATE.worker_cap.values())
        max_seen = sum(w["max_users"] for w in STATE.worker_cap.values())
        cap = STATE.max_users * max(len(STATE.worker_cap), 1)
    else:
        pacer = STATE.pacer
        cap_hit = bool(pacer and pacer.cap_hit)
        max_seen = _max_seen(runner)
        cap = STATE.max_users
    elapsed = now - STATE.t0
    status = {
        "ts": now, "elapsed_s": round(elapsed, 3),
        "target_rps": round(STATE.profile.rate_at(elapsed), 3) if STATE.profile else None,
        "load_model": load_model(),
        "users": runner.user_count, "user_cap": cap, "user_cap_hit": cap_hit,
        "max_users_seen": max(max_seen, runner.user_count),
        "done": STATE.done, "windows": STATE.live.snapshot(now, elapsed),
    }
    runfolder.write_json_atomic(STATE.run_dir / runfolder.LIVE_STATUS, status)


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw) -> None:
    _finish(environment)


@events.quitting.add_listener
def _on_quitting(environment, **_kw) -> None:
    _finish(environment)


def _finish(environment) -> None:
    if STATE.profile is None or STATE.done:
        return
    if STATE.coord is not None:  # master: gather the workers' last shards first
        STATE.coord.wait_end(STATE.receiver)
    if STATE.pacer is not None:
        STATE.pacer.stop()
    for greenlet in STATE.greenlets:
        greenlet.kill(block=False)
    STATE.greenlets.clear()
    _flush()
    if STATE.orders is not None:
        STATE.orders.close()
    if STATE.receiver is not None:
        STATE.receiver.save()
    if isinstance(environment.runner, WorkerRunner):
        rows, STATE.outbox = STATE.outbox, []
        pacer = STATE.pacer
        environment.runner.send_message(MSG_LIVE, {
            "worker": STATE.worker, "rows": rows, "cap_hit": bool(pacer and pacer.cap_hit),
            "max_users": _max_seen(environment.runner)})
    STATE.done = True
    if not isinstance(environment.runner, WorkerRunner):
        write_live(environment)
    if STATE.owns_run_dir:
        live = runfolder.read_run_json(STATE.run_dir)
        if live.get("status") == "running":
            runfolder.update_run_json(STATE.run_dir, status="completed", ended_at=time.time())


def record_order(order_id: str, user: str) -> None:
    """Called by scenarios for every order the storefront confirmed (and by the order
    rule, ``--order-request``); an order id seen twice in a process is recorded once."""
    if STATE.orders is not None and order_id not in STATE.orders_seen:
        STATE.orders_seen.add(order_id)
        STATE.orders.record(order_id, time.time(), user)


def new_request_id() -> str:
    """A request id unique across processes and runs: a random 88-bit process prefix and a
    counter (uuid4 per request costs a urandom call and an object on the hot path)."""
    return f"{_RID_PREFIX}{next(_RID_SEQ):010x}"


def _reseed_request_ids() -> None:
    global _RID_PREFIX, _RID_SEQ
    _RID_PREFIX = os.urandom(11).hex()  # 22 hex digits + 10 of counter: 32, as uuid4's hex
    _RID_SEQ = itertools.count(1)


_RID_PREFIX, _RID_SEQ = "", itertools.count(1)
_reseed_request_ids()
os.register_at_fork(after_in_child=_reseed_request_ids)  # locust --processes forks
# where each session's request() takes headers and context positionally (after url):
# a call that passes them positionally is left as it is (Locust's own helpers never do)
_POSITIONAL_LIMIT = {HttpSession: 2, FastHttpSession: 4}


def _with_request_id(request: Callable, positional_limit: int) -> Callable:
    def send(self, method, url, *args, **kwargs):
        if len(args) > positional_limit:
            return request(self, method, url, *args, **kwargs)
        headers = kwargs.get("headers")
        headers = dict(headers) if headers else {}
        rid = headers.setdefault(REQUEST_ID_HEADER, new_request_id())
        kwargs["headers"] = headers
        context = kwargs.get("context")
        kwargs["context"] = {**context, "request_id": rid} if context else {"request_id": rid}
        return request(self, method, url, *args, **kwargs)
    send._peakready_request_id = True
    return send


def install_request_ids() -> None:
    """Every request of Locust's HTTP clients (``HttpUser``'s and ``FastHttpUser``'s, so
    any locustfile's) carries a fresh ``X-Request-Id`` (the key the API-log pipeline is
    checked by), and its sample row the same ``request_id``; a caller's own header is kept.
    Idempotent; done once per Locust process when the plugin initialises."""
    for session, limit in _POSITIONAL_LIMIT.items():
        if not getattr(session.request, "_peakready_request_id", False):
            session.request = _with_request_id(session.request, limit)


class ArrivalUser(FastHttpUser):
    """A shopper driven by arrival tokens: one task = one scheduled request.

    Between tasks the user thinks (``think_time`` s, a callable or number) and then waits
    for the next arrival token, so the request rate follows the profile whatever the
    response time. Requests beyond the first in a task are not scheduled arrivals and
    get ``intended_ts = ts``.
    """

    abstract = True
    think_time: Any = 0.0
    _paced_spawn = False
    _peakready_self_paced = True  # taskpacing leaves it alone: it takes its own tokens

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        STATE.user_seq += 1
        self.user_id = f"{STATE.worker}-u{STATE.user_seq}"
        self._intended_ts: float | None = None

    def context(self) -> dict:
        intended, self._intended_ts = self._intended_ts, None
        return {"intended_ts": intended, "user": self.user_id}

    def _take_token(self, first: bool = False) -> None:
        pacer = STATE.pacer
        if pacer is None:  # no profile given: behave like a plain user
            return
        self._intended_ts = pacer.take(first=first)

    def run(self) -> None:
        self._state = LOCUST_STATE_WAITING  # a graceful stop may end a user waiting here
        self._take_token(first=self._paced_spawn)
        super().run()

    def wait_time(self) -> float:
        think = self.think_time() if callable(self.think_time) else float(self.think_time)
        if think > 0:
            gevent.sleep(think)
        self._take_token()
        return 0.0


class ArrivalRateShape(LoadTestShape):
    """Runs for the profile's duration; the pacer, not the shape, makes the rate.

    It asks Locust for a small initial pool (spawned at once, so Locust's dispatcher never
    trims the users the pacer adds later) and stops the test when the profile ends.
    """

    abstract = False
    use_common_options = True  # --users sets the pool with --closed-model (read below)

    def tick(self):
        profile = STATE.profile
        if profile is None:
            return None
        # the schedule runs from t0 (set at test start; a master sets it 1 s ahead)
        elapsed = time.time() - STATE.t0 if STATE.t0 is not None else self.get_run_time()
        if elapsed > profile.duration_s + 0.5:
            if STATE.coord is not None and not STATE.coord.end_done(STATE.receiver):
                return self.runner.shape_last_tick  # the workers ship their last shards
            return None
        if STATE.closed:
            return closed_pool(self.runner.environment.parsed_options, profile)
        initial = max(1, min(STATE.max_users, math.ceil(profile.rate_at(0) * 0.2)))
        workers = int(getattr(self.runner.environment.parsed_options, "expect_workers", 1) or 1)
        if isinstance(self.runner, MasterRunner):
            initial = max(initial, workers)
        return initial, float(initial)



def closed_pool(options, profile: Profile) -> tuple[int, float]:
    """``--closed-model``: a fixed pool for the profile's duration, ``--users`` (default:
    one user per request per second of the profile's peak, capped at ``--max-users``),
    all spawned at once."""
    users = getattr(options, "num_users", None) or max(1, math.ceil(profile.peak_rps))
    users = min(int(users), STATE.max_users * max(1, int(getattr(options, "expect_workers", 1)
                                                         or 1)))
    return users, float(users)
