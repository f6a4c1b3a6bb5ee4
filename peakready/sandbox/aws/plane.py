"""The sandbox's AWS control plane: a moto endpoint whose API calls move real processes.

It is an addon of the sandbox daemon (``start``/``status``/``stop``,
``manages_web_tier``): it serves moto in-process on 127.0.0.1, creates the seed
architecture's resources, launches the web tier through its Auto Scaling group, and
runs two loops: ``reconcile`` (AWS state <-> processes, every quarter second) and
``period`` (publish metrics, evaluate alarms, execute target tracking, every
``timing.metric_period_s`` on the period boundary).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.server import ThreadedMotoServer
from moto.sns.models import sns_backends

from peakready.sandbox.aws import (
    alarms,
    bootstrap,
    extensions,
    names,
    notification,
    processes,
    publish,
    refusals,  # noqa: F401 - registers the refused actions' patches before attach()
    scaling,
    snsdelivery,
    waf,
)
from peakready.sandbox.aws import search as search_aws
from peakready.sandbox.aws.alarms import AlarmHistory
from peakready.sandbox.aws.datatier import DataTier
from peakready.sandbox.aws.logpipe import LogPipe
from peakready.sandbox.aws.metricstore import MetricStore
from peakready.sandbox.aws.paging import PagerHandle
from peakready.sandbox.aws.scaling import ActivityLog
from peakready.sandbox.aws.webtier import WebTier
from peakready.sandbox.timing import Timing

log = logging.getLogger(__name__)
RECONCILE_EVERY_S = 0.25
RETENTION_S = 3 * 3600  # CloudWatch keeps high-resolution datapoints for 3 hours


class ControlPlane:
    manages_web_tier = True

    def __init__(self, stack: Any, timing: Timing, state_dir: Any = None,
                 desired: int = names.ASG_DESIRED):
        self.stack = stack
        self.timing = timing
        self.state_dir = state_dir
        self.desired = max(1, min(names.ASG_MAX, int(desired)))  # MinSize follows below 2
        self.store = MetricStore()
        self.history = AlarmHistory()
        self.activities = ActivityLog()
        self.data = DataTier(stack, timing)
        self.web: WebTier | None = None
        self.waf: waf.WafSync | None = None
        self.logpipe: LogPipe | None = None
        self.pager = PagerHandle(stack) if stack is not None else None
        self.endpoint_url = ""
        self._server: ThreadedMotoServer | None = None
        self._stop = threading.Event()
        self._booted = threading.Event()
        self._boot_error: Exception | None = None
        self._threads: list[threading.Thread] = []
        self._alarm_high = f"TargetTracking-{names.ASG}-AlarmHigh-{uuid.uuid4()}"
        self._alarm_low = f"TargetTracking-{names.ASG}-AlarmLow-{uuid.uuid4()}"
        self._last_scale = {"out": 0.0, "in": 0.0, "out_to": 0}
        self._tick_cpu_s: list[float] = []
        self._prev: dict[str, dict] = {"db": {}, "cache": {}}
        self._cpu_s = {"reconcile": 0.0, "period": 0.0}
        self._started_at = time.time()
        self.target_value = names.TARGET_REQUESTS_PER_TARGET_PER_S * timing.metric_period_s

    @staticmethod
    def now() -> float:
        return time.time()

    # ---- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        extensions.attach(self)
        search_aws.install()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        snsdelivery.attach(self.endpoint_url, self.timing)
        if self.pager is not None:
            self.pager.start()  # its interpreter starts while the resources are created
        t = self.timing
        self.logpipe = LogPipe(self, t.firehose_interval_scale, t.metric_period_s)
        self.logpipe.start(wait=False)  # every instance ships its API log there
        self.stack.sf = replace(self.stack.sf, api_logs={
            **self.logpipe.storefront_settings(), **self.stack.sf.api_logs})
        self.resources = bootstrap.create_web(self.endpoint_url, t.metric_period_s,
                                              desired=self.desired)
        self.web = WebTier(self.stack, t, self.activities, self.resources.target_group_arn)
        self.web.reconcile()  # instances boot while the rest is created
        self._started_at = time.time()
        self._spawn(self._reconcile_loop)
        self._spawn(self._finish_boot)

    def _spawn(self, target) -> None:
        thread = threading.Thread(target=target, name=target.__name__, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _finish_boot(self) -> None:
        try:
            topic = None
            if self.pager is not None:
                topic = self.pager.subscribe(self.endpoint_url)
            bootstrap.create_data_and_alarms(self.endpoint_url, self.timing.metric_period_s,
                                             self.resources, topic)
            search_aws.create_domain(self.endpoint_url, self.stack)
            self._create_tracking_alarms()
            # the shop's Web ACL, on the balancer before the first instance is in service
            waf.create_default(self.endpoint_url, self.resources.load_balancer_arn)
            self.waf = waf.WafSync(self.stack, self.resources.load_balancer_arn)
            self.waf.poll()
            if self.pager is not None:
                self.pager.wait_confirmed()
        except Exception as exc:  # reported by ready(), which the daemon polls
            log.exception("control plane bootstrap failed")
            self._boot_error = exc
            return
        self._spawn(self._period_loop)
        self._booted.set()

    def ready(self) -> bool:
        """True once every resource exists and the group's instances are in service."""
        if self._boot_error is not None:
            raise RuntimeError(f"control plane bootstrap failed: {self._boot_error}")
        return (self._booted.is_set() and len(self.web.in_service()) >= self.desired
                and self.logpipe.ready())

    def wait_ready(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while not self.ready():
            if time.time() > deadline:
                raise RuntimeError(f"web tier not in service after {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.web:
            self.web.stop()
        self.data.stop()
        if self.logpipe:
            self.logpipe.stop()
        if self.pager is not None:
            self.pager.stop()
        if self._server:
            self._server.stop()
        snsdelivery.detach()
        extensions.detach(self)

    def status(self) -> dict:
        cpu = self._tick_cpu_s[-20:]
        with extensions.LOCK:
            states = {a.name: a.state_value for a in self._cw().alarms.values()}
            suspended = sorted(processes.names_of(self.web.group().suspended_processes)
                               if self.web else [])
        return {
            "api_logs": self.logpipe.status() if self.logpipe else None,
            "aws": {"endpoint_url": self.endpoint_url, "region": names.REGION,
                    "access_key_id": names.ACCESS_KEY_ID,
                    "secret_access_key": names.SECRET_ACCESS_KEY,
                    "account_id": names.ACCOUNT_ID},
            "control_plane": {
                "alarms": states,
                "web_tier": self.web.counts() if self.web else {},
                "suspended_processes": suspended,
                "waf": self.waf.status if self.waf else {},
                "paging": self.pager.status() if self.pager else {},
                "target_tracking": {"metric": "ALBRequestCountPerTarget",
                                    "target_value_per_period": self.target_value,
                                    "period_s": self.timing.metric_period_s},
                "period_cpu_ms_avg": round(1000 * sum(cpu) / len(cpu), 2) if cpu else None,
                # CPU of the two loops as a share of one core since start (API calls excluded)
                "loops_cpu_percent": {k: round(100 * v / max(time.time() - self._started_at,
                                                              1e-9), 3)
                                      for k, v in self._cpu_s.items()},
            },
        }

    # ---- moto helpers -----------------------------------------------------------
    @staticmethod
    def _cw():
        return cloudwatch_backends[names.ACCOUNT_ID][names.REGION]

    def alarms_created(self, alarm_names: list[str]) -> None:
        """New alarms start in INSUFFICIENT_DATA, as on AWS (moto says OK)."""
        for name in alarm_names:
            alarm = self._cw().alarms.get(name)
            if alarm is not None and not alarm.history:
                alarm.state_value = "INSUFFICIENT_DATA"
                alarm.state_reason = "Unchecked: Initial alarm creation"

    def _create_tracking_alarms(self) -> None:
        """The two alarms AWS creates for a target-tracking policy."""
        cw = bootstrap.client("cloudwatch", self.endpoint_url)
        metric = {"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCountPerTarget",
                  "Dimensions": [{"Name": "TargetGroup",
                                  "Value": self.resources.target_group_dim}],
                  "Statistic": "Sum", "Period": self.timing.metric_period_s,
                  "AlarmActions": [self.resources.policy_arn]}
        cw.put_metric_alarm(
            AlarmName=self._alarm_high, ComparisonOperator="GreaterThanThreshold",
            Threshold=self.target_value, EvaluationPeriods=self.timing.scale_out_datapoints,
            DatapointsToAlarm=self.timing.scale_out_datapoints,
            AlarmDescription=f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "
                             f"{self.resources.policy_arn}.", **metric)
        cw.put_metric_alarm(
            AlarmName=self._alarm_low, ComparisonOperator="LessThanThreshold",
            Threshold=0.9 * self.target_value, EvaluationPeriods=self.timing.scale_in_datapoints,
            DatapointsToAlarm=self.timing.scale_in_datapoints,
            AlarmDescription=f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "
                             f"{self.resources.policy_arn}.", **metric)

    # ---- loops ------------------------------------------------------------------
    def _reconcile_loop(self) -> None:
        while not self._stop.wait(RECONCILE_EVERY_S):
            cpu0 = time.thread_time()
            try:
                self.web.reconcile()
                self.data.sync_db_roles()
                self.data.sync_cache_roles()
                if self.waf is not None:
                    self.waf.poll()
            except Exception:  # keep reconciling; a failing pass is logged, not fatal
                log.exception("reconcile pass failed")
            self._cpu_s["reconcile"] += time.thread_time() - cpu0

    def _period_loop(self) -> None:
        period = self.timing.metric_period_s
        self.stack.lb_take_stats()  # start the first period clean
        while True:
            boundary = (math.floor(time.time() / period) + 1) * period
            if self._stop.wait(max(0.0, boundary - time.time())):
                return
            cpu0 = time.thread_time()
            try:
                self.period_tick(boundary)
            except Exception:
                log.exception("period tick failed")
            self._tick_cpu_s.append(time.thread_time() - cpu0)
            self._cpu_s["period"] += self._tick_cpu_s[-1]
            del self._tick_cpu_s[:-100]

    def period_tick(self, boundary: float) -> None:
        """Publish the period that just ended, evaluate alarms, run target tracking."""
        period = self.timing.metric_period_s
        ts = boundary - period
        lb = self.stack.lb_take_stats()
        datums = publish.alb_datums(lb, self.resources.load_balancer_dim,
                                    self.resources.target_group_dim)
        # one failing source (a database mid-failover) must not lose the others
        datums += publish.asg_datums(_safe(self.web.counts, {}))
        datums += publish.ec2_datums(_safe(self.stack.instances, []))
        db = _nodes(_safe(self.stack.db_stats, {}))
        cache = _nodes(_safe(self.stack.cache_stats, {}))
        datums += publish.rds_datums(db, self._prev["db"], period)
        datums += publish.cache_datums(cache, self._prev["cache"])
        datums += waf.datums(lb.get("waf"))
        search = _safe(self.stack.search_stats, {}) if getattr(self.stack, "search", None) else {}
        datums += search_aws.es_datums(search, self._prev.get("search"), period)
        self._prev = {"db": {n["name"]: n for n in db}, "cache": {n["name"]: n for n in cache},
                      "search": search or None}
        for namespace, datum in datums:
            self.store.put(namespace, datum, ts)
        if int(boundary // period) % 720 == 0:  # hourly at the default period
            self.store.prune(boundary - RETENTION_S)
        with extensions.LOCK:
            self._sync_target_value()
        self.evaluate_alarms(boundary)
        self.track_target(boundary, publish.healthy_hosts(lb)[0])

    def evaluate_alarms(self, now: float) -> list[tuple[str, str, str]]:
        """Decide every metric alarm on its datapoints; record the transitions."""
        with extensions.LOCK:
            specs = [(a, alarms.spec_from_moto(a), a.state_value)
                     for a in self._cw().alarms.values() if a.rule is None]
        changes = []
        for alarm, spec, seen in specs:
            try:
                state, reason, data = alarms.decide(spec, alarms.window(spec, self.store, now),
                                                    seen)
            except (ValueError, KeyError, StopIteration) as exc:
                log.warning("alarm %s not evaluated: %s", spec.name, exc)
                continue
            with extensions.LOCK:
                if alarm.state_value != seen or state == seen:
                    # unchanged, or set_alarm_state came in meanwhile: that state holds
                    # until the next evaluation
                    continue
                alarm.update_state(reason, json.dumps(data), state)
                self.history.record(spec.name, seen, state, reason, data)
            changes.append((spec.name, seen, state))
            self._notify(alarm, seen, state, reason)
        return changes

    def alarm_state_set(self, name: str, old: str, reason: str, reason_data: str | None) -> None:
        """SetAlarmState: a StateUpdate in the history with the caller's reason, and the
        new state's actions when the state changed (AWS); the next evaluation puts the
        alarm back to what its datapoints say."""
        alarm = self._cw().alarms[name]
        if alarm.state_value == old:
            return
        data = json.loads(reason_data) if reason_data else None
        self.history.record(name, old, alarm.state_value, reason, data)
        self._notify(alarm, old, alarm.state_value, reason)

    def _notify(self, alarm, old: str, new: str, reason: str) -> None:
        """Alarm actions that are SNS topics receive AWS's alarm notification
        (``notification``); moto hands it to the topic's subscriptions (an SQS queue at
        once, HTTP(S) ones such as the pager after the lock is released, with a timeout:
        ``snsdelivery``). The ``Action`` history item records the outcome."""
        actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
                   "INSUFFICIENT_DATA": alarm.insufficient_data_actions}.get(new) or []
        if not alarm.actions_enabled:
            return
        sns = sns_backends[names.ACCOUNT_ID][names.REGION]
        when = datetime.now(UTC)
        for arn in actions:
            if not arn.startswith("arn:aws:sns:"):
                continue  # Auto Scaling policies are executed by track_target
            body = notification.message(alarm, old, new, reason, when, names.ACCOUNT_ID,
                                        names.REGION)
            try:
                with extensions.LOCK, snsdelivery.collecting() as jobs:
                    sns.publish(message=body, arn=arn,
                                subject=notification.subject(new, alarm.name, names.REGION))
            except Exception as exc:  # noqa: BLE001 - a missing topic fails the action only
                self.history.record_action(alarm.name, f"Failed to execute action {arn}: {exc}",
                                           arn, body, when, ok=False, error=str(exc))
                continue
            self._record_delivery(alarm.name, arn, body, when, jobs)

    def _record_delivery(self, name: str, arn: str, body: str, when: datetime,
                         jobs: list) -> None:
        """The Action item once every HTTP(S) delivery of the publish has ended: a
        subscriber that never answered is a failed action, naming endpoint and error."""
        def done(outcomes: list) -> None:
            failed = [o for o in outcomes if not o.ok]
            if not failed:
                self.history.record_action(name, f"Successfully executed action {arn}", arn,
                                           body, when, ok=True)
                return
            first = failed[0]
            error = (f"delivery to {first.endpoint} failed after {first.attempts} attempts: "
                     f"{first.error}")
            self.history.record_action(name, f"Failed to execute action {arn}: {error}", arn,
                                       body, when, ok=False, error=error)

        if jobs:
            snsdelivery.deliver_all(jobs, done)
        else:
            done([])

    def _sync_target_value(self) -> None:
        """A put_scaling_policy with a new TargetValue moves both alarms' thresholds,
        as AWS re-creates them."""
        backend = autoscaling_backends[names.ACCOUNT_ID][names.REGION]
        policy = backend.policies.get(names.SCALING_POLICY)
        config = getattr(policy, "target_tracking_configuration", None)
        value = getattr(config, "TargetValue", None)
        if value is None or float(value) == self.target_value:
            return
        self.target_value = float(value)
        cw = self._cw()
        for name, factor in ((self._alarm_high, 1.0), (self._alarm_low, 0.9)):
            if name in cw.alarms:
                cw.alarms[name].threshold = factor * self.target_value
        log.info("target tracking: target value now %.1f per target per period",
                 self.target_value)

    def track_target(self, now: float, healthy: int) -> int | None:
        """Execute the target-tracking policy while one of its alarms is in ALARM."""
        cw = self._cw()
        with extensions.LOCK:
            high, low = cw.alarms.get(self._alarm_high), cw.alarms.get(self._alarm_low)
            group = self.web.group()
            desired, lo, hi = group.desired_capacity, group.min_size, group.max_size
            suspended = processes.names_of(group.suspended_processes)
        if not processes.may_execute_policies(suspended):
            return None  # AlarmNotification suspended: the alarms change state, nothing acts
        direction = "out" if high and high.state_value == "ALARM" else (
            "in" if low and low.state_value == "ALARM" else None)
        if direction is None:
            return None
        alarm = high if direction == "out" else low
        points = [v for _, v in alarms.window(alarms.spec_from_moto(alarm), self.store, now)
                  if v is not None]
        if not points:
            return None
        metric = points[-1]
        t = self.timing
        if direction == "out":
            new = scaling.scale_out_to(metric, self.target_value, healthy, desired, hi)
            cooling = now - self._last_scale["out"] < t.scale_out_cooldown_s
            if new <= desired or (cooling and new <= self._last_scale["out_to"]):
                return None
        else:
            new = scaling.scale_in_to(metric, self.target_value, healthy, desired, lo)
            recent = now - max(self._last_scale["out"], self._last_scale["in"])
            if new >= desired or recent < t.scale_in_cooldown_s or self.web.warming(now):
                return None
        self._last_scale[direction] = now
        if direction == "out":
            self._last_scale["out_to"] = new
        with extensions.LOCK:
            self.web.trigger = scaling.policy_trigger(datetime.now(UTC), alarm.name, desired, new)
            group.set_desired_capacity(new)
        self.web.reconcile()
        log.info("target tracking: desired %s -> %s (metric %.1f, target %.1f)",
                 desired, new, metric, self.target_value)
        return new


def _safe(source, default):
    try:
        return source()
    except Exception as exc:  # noqa: BLE001 - logged; the period is published without it
        log.warning("metric source %s failed: %s", getattr(source, "__name__", source), exc)
        return default


def _nodes(stats) -> list[dict]:
    """db_stats()/cache_stats() as a list of per-node dicts with a "name"."""
    if isinstance(stats, dict):
        nodes = stats.get("nodes", stats)
        if isinstance(nodes, dict):
            return [dict(v, name=k) for k, v in nodes.items() if isinstance(v, dict)]
        return list(nodes)
    return list(stats or [])
