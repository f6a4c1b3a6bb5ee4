"""The ALB-like balancer: targets and their health, routing, proxying, measurements.

ALB semantics kept (AWS names in brackets):
- health checks every ``health_interval_s`` on a fresh connection; ``healthy_threshold``
  consecutive passes make a target healthy, ``unhealthy_threshold`` failures unhealthy;
  a new target is ``initial`` until the first verdict (it fails while booting, as on AWS);
- round robin over healthy targets only; none healthy -> 503 [HTTPCode_ELB_503_Count];
- a target that cannot be connected to is skipped for the next one (nothing was sent, so
  the retry is safe) [TargetConnectionErrorCount]; a target that fails after the request
  was sent -> 502 for that request only [HTTPCode_ELB_502_Count];
- no response within ``idle_timeout_s`` -> 504 [HTTPCode_ELB_504_Count];
- deregistration: ``draining`` (no new requests; in-flight ones finish) for
  ``deregistration_delay_s``, then gone (AWS shows ``draining`` for the whole delay even
  when nothing is in flight);
- per target: requests, 2xx-5xx from targets, response times (every one, so percentiles
  are exact) [RequestCount, HTTPCode_Target_*, TargetResponseTime]; healthy/unhealthy
  host counts [HealthyHostCount, UnHealthyHostCount]; an access log line per request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from peakready.sandbox import http11

STATES = ("initial", "healthy", "unhealthy", "draining")
Timing = tuple[float, float]  # (sent to the target, monotonic s; target processing s)
MAX_KEPT_TIMES = 2_000_000  # response times kept between two takes (~50 MB)


@dataclass
class Settings:
    health_interval_s: float = 1.0
    health_timeout_s: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    idle_timeout_s: float = 30.0
    deregistration_delay_s: float = 2.0
    health_path: str = "/health"


@dataclass
class Counters:
    """What happened since the last ``take``."""

    requests: int = 0
    target_2xx: int = 0
    target_3xx: int = 0
    target_4xx: int = 0
    target_5xx: int = 0
    elb_502: int = 0
    elb_503: int = 0
    elb_504: int = 0
    elb_403: int = 0  # blocked by the Web ACL [HTTPCode_ELB_403_Count]
    target_connection_errors: int = 0
    response_times: list[float] = field(default_factory=list)

    def count_status(self, status: int) -> None:
        if status < 300:
            self.target_2xx += 1
        elif status < 400:
            self.target_3xx += 1
        elif status < 500:
            self.target_4xx += 1
        else:
            self.target_5xx += 1

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Target:
    id: str
    host: str
    port: int
    state: str = "initial"
    reason: str = "Elb.RegistrationInProgress"
    ok_streak: int = 0
    fail_streak: int = 0
    in_flight: int = 0
    registered_at: float = field(default_factory=time.time)
    drain_started: float | None = None
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    checker: asyncio.Task | None = None

    def describe(self) -> dict:
        return {"id": self.id, "host": self.host, "port": self.port, "state": self.state,
                "reason": self.reason, "in_flight": self.in_flight,
                "registered_at": self.registered_at}


class Balancer:
    def __init__(self, settings: Settings, name: str = "peakready-alb",
                 access_log: str | None = None, waf_log: str | None = None) -> None:
        from peakready.sandbox.balancer.waf import WafState

        self.s = settings
        self.waf = WafState(name, waf_log)  # no Web ACL until the control plane pushes one
        self.name = name
        self.targets: dict[str, Target] = {}
        self._healthy: list[Target] = []
        self._rr = 0
        self.lb = Counters()
        self.rejected_connections = 0
        self.new_connections = 0
        self.active_connections = 0
        self.transitions: list[dict] = []
        self._period_start = time.time()
        self._retired: dict[str, Counters] = {}  # stats of targets gone since the last take
        self._log_path = access_log
        self._log_buf: list[str] = []
        self.port = 0

    # --- registration and health --------------------------------------------------
    def register(self, target_id: str, host: str, port: int) -> dict:
        existing = self.targets.get(target_id)
        if existing is not None and existing.state != "draining":
            return existing.describe()
        if existing is not None:  # re-registered while draining: start over
            self._remove(existing)
        target = Target(target_id, host, port)
        self.targets[target_id] = target
        self._transition(target, "initial", "Elb.RegistrationInProgress", force=True)
        target.checker = asyncio.get_running_loop().create_task(self._check_loop(target))
        return target.describe()

    def deregister(self, target_id: str) -> dict | None:
        target = self.targets.get(target_id)
        if target is None:
            return None
        if target.state != "draining":
            target.drain_started = time.time()
            self._transition(target, "draining", "Target.DeregistrationInProgress")
            asyncio.get_running_loop().create_task(self._drain(target))
        return target.describe()

    async def _drain(self, target: Target) -> None:
        """AWS: a draining target with no request in flight completes deregistration at
        once, "however ... the status of the target is displayed as draining until the
        deregistration delay timeout expires", then it is gone (``unused``)."""
        await asyncio.sleep(self.s.deregistration_delay_s)
        if self.targets.get(target.id) is target:
            self._remove(target)

    def _remove(self, target: Target) -> None:
        self.targets.pop(target.id, None)
        if target.checker is not None:
            target.checker.cancel()
        self._close_idle(target)
        retired = self._retired.setdefault(target.id, Counters())
        _merge(retired, target.counters)
        target.counters = Counters()
        self.transitions.append({"ts": time.time(), "target": target.id, "from": target.state,
                                 "to": "unused", "reason": "Target.NotRegistered"})
        self._refresh_healthy()

    def _transition(self, target: Target, state: str, reason: str, force: bool = False) -> None:
        if target.state == state and not force:
            return
        self.transitions.append({"ts": time.time(), "target": target.id,
                                 "from": None if force else target.state, "to": state,
                                 "reason": reason})
        target.state, target.reason = state, reason
        if state != "healthy":
            self._close_idle(target)
        self._refresh_healthy()

    def _refresh_healthy(self) -> None:
        self._healthy = [t for t in self.targets.values() if t.state == "healthy"]

    async def _check_loop(self, target: Target) -> None:
        while target.state != "draining":
            started = time.monotonic()
            ok, why = await self._check(target)
            if target.state == "draining" or self.targets.get(target.id) is not target:
                return
            if ok:
                target.ok_streak += 1
                target.fail_streak = 0
                if target.state in ("initial", "unhealthy") and \
                        target.ok_streak >= self.s.healthy_threshold:
                    self._transition(target, "healthy", "")
            else:
                target.fail_streak += 1
                target.ok_streak = 0
                if target.state in ("initial", "healthy") and \
                        target.fail_streak >= self.s.unhealthy_threshold:
                    self._transition(target, "unhealthy", why)
                elif target.state == "unhealthy":
                    target.reason = why
            await asyncio.sleep(max(0.0, self.s.health_interval_s - (time.monotonic() - started)))

    async def _check(self, target: Target) -> tuple[bool, str]:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), self.s.health_timeout_s)
            writer.write(http11.render_request("GET", self.s.health_path, target.host,
                                               headers={"Connection": "close",
                                                        "User-Agent": "ELB-HealthChecker/2.0"}))
            resp = await asyncio.wait_for(http11.read_response(reader), self.s.health_timeout_s)
        except TimeoutError:
            return False, "Target.Timeout"
        except (OSError, http11.ProtocolError, asyncio.IncompleteReadError):
            return False, "Target.FailedHealthChecks"
        finally:
            if writer is not None:
                writer.close()
        if resp is None or resp.status != 200:
            return False, "Target.ResponseCodeMismatch"
        return True, ""

    def _close_idle(self, target: Target) -> None:
        idle, target.idle = target.idle, []
        for _, writer in idle:
            writer.close()

    # --- proxying -------------------------------------------------------------------
    def _pick(self, tried: set[str]) -> Target | None:
        healthy = self._healthy
        n = len(healthy)
        for _ in range(n):
            self._rr = (self._rr + 1) % n
            target = healthy[self._rr]
            if target.id not in tried:
                return target
        return None

    async def _connection(self, target: Target):
        while target.idle:
            reader, writer = target.idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await asyncio.wait_for(asyncio.open_connection(target.host, target.port),
                                      self.s.health_timeout_s)

    async def proxy(self, req: http11.Request, client: str
                    ) -> tuple[bytes, int, Target | None, int | None, Timing | None]:
        """Forward one request: (response bytes, status sent, target used, target's status,
        when it was sent to the target (monotonic) and the target processing time until its
        response was read: what the access log's target_processing_time and
        TargetResponseTime are; None when no target answered)."""
        self.lb.requests += 1
        tried: set[str] = set()
        while True:
            target = self._pick(tried)
            if target is None:
                if tried:
                    self.lb.elb_502 += 1
                    return _elb_error(502), 502, None, None, None
                self.lb.elb_503 += 1
                return _elb_error(503), 503, None, None, None
            tried.add(target.id)
            try:
                reader, writer = await self._connection(target)
                break
            except (OSError, TimeoutError):
                target.counters.target_connection_errors += 1
                self.lb.target_connection_errors += 1
        target.in_flight += 1
        target.counters.requests += 1
        sent = time.monotonic()
        try:
            writer.write(req.raw_head + f"X-Forwarded-For: {client}\r\n\r\n".encode() + req.body)
            async with asyncio.timeout(self.s.idle_timeout_s):  # no extra task, unlike wait_for
                resp = await http11.read_response(reader)
            if resp is None:
                raise ConnectionResetError("target closed the connection")
        except TimeoutError:
            writer.close()
            self.lb.elb_504 += 1
            return _elb_error(504), 504, target, None, None
        except (OSError, http11.ProtocolError, asyncio.IncompleteReadError):
            writer.close()
            self.lb.elb_502 += 1
            return _elb_error(502), 502, target, None, None
        finally:
            target.in_flight -= 1
        rt = time.monotonic() - sent
        if len(self.lb.response_times) < MAX_KEPT_TIMES:  # nobody taking stats: bounded
            target.counters.response_times.append(rt)
            self.lb.response_times.append(rt)
        target.counters.count_status(resp.status)
        self.lb.count_status(resp.status)
        if resp.headers.get("connection", "").lower() != "close" and target.state == "healthy" \
                and self.targets.get(target.id) is target:
            target.idle.append((reader, writer))
        else:
            writer.close()
        return resp.raw_head + b"\r\n" + resp.body, resp.status, target, resp.status, (sent, rt)

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("-", 0)
        client = peer[0]
        self.new_connections += 1
        self.active_connections += 1
        try:
            while True:
                try:
                    async with asyncio.timeout(self.s.idle_timeout_s):
                        req = await http11.read_request(reader)
                except TimeoutError:
                    break  # idle client connection: closed like an ALB does
                if req is None:
                    break
                t0, m0 = time.time(), time.monotonic()
                if self.waf.acl is not None and self.waf.inspect(req, client):
                    self.lb.requests += 1
                    self.lb.elb_403 += 1
                    body, status, target, target_status, timing = \
                        _waf_blocked(), 403, None, None, None
                else:
                    body, status, target, target_status, timing = \
                        await self.proxy(req, client)
                writer.write(body)
                await writer.drain()
                self._log(t0, _phases(m0, timing, time.monotonic()), peer, req, status,
                          target, target_status, len(body))
                if not req.keep_alive:
                    break
        except http11.ProtocolError:
            self.lb.requests += 1
            self.rejected_connections += 1
            try:
                writer.write(http11.json_response(400, {"error": "bad request"}, keep_alive=False))
            except Exception:  # noqa: BLE001
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.active_connections -= 1
            writer.close()

    # --- measurements -------------------------------------------------------------------
    def health_counts(self) -> tuple[int, int]:
        healthy = sum(1 for t in self.targets.values() if t.state == "healthy")
        # as on AWS, targets still in their initial checks count in neither
        unhealthy = sum(1 for t in self.targets.values() if t.state == "unhealthy")
        return healthy, unhealthy

    def take(self) -> dict:
        """Everything measured since the previous call, then start a new period."""
        now = time.time()
        healthy, unhealthy = self.health_counts()
        targets = {tid: c.as_dict() for tid, c in self._retired.items()}
        for target in self.targets.values():
            counters = target.counters.as_dict()
            if target.id in targets:
                merged = Counters(**targets[target.id])
                _merge(merged, target.counters)
                counters = merged.as_dict()
            counters.update(state=target.state, in_flight=target.in_flight)
            targets[target.id] = counters
            target.counters = Counters()
        out = {
            "load_balancer": self.name,
            "period_start": self._period_start,
            "period_end": now,
            "lb": {**self.lb.as_dict(), "rejected_connections": self.rejected_connections,
                   "new_connections": self.new_connections,
                   "active_connections": self.active_connections,
                   "healthy_host_count": healthy, "unhealthy_host_count": unhealthy},
            "targets": targets,
            "transitions": self.transitions,
            "waf": self.waf.take(),
        }
        self.lb = Counters()
        self.rejected_connections = 0
        self.new_connections = 0
        self._retired = {}
        self.transitions = []
        self._period_start = now
        return out

    def describe_targets(self) -> dict:
        return {tid: t.describe() for tid, t in self.targets.items()}

    # --- access log ------------------------------------------------------------------
    def _log(self, t0: float, times: str, peer, req: http11.Request, status: int,
             target: Target | None, target_status: int | None, sent: int) -> None:
        """One line in the ALB access log format: request_processing_time (WAF and picking a
        target), target_processing_time, response_processing_time (sending it back), each
        -1 where the request never reached a target."""
        if self._log_path is None:
            return
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0)) + f".{int(t0 % 1 * 1e6):06d}Z"
        tgt = f"{target.host}:{target.port}" if target else "-"
        agent = req.headers.get("user-agent", "-").replace('"', "'")
        self._log_buf.append(
            f'http {ts} {self.name} {peer[0]}:{peer[1]} {tgt} {times} '
            f'{status} {target_status or "-"} {len(req.body)} {sent} '
            f'"{req.method} http://{req.headers.get("host", "-")}{req.target} {req.version}" '
            f'"{agent}" {target.id if target else "-"}\n')

    def flush_log(self) -> None:
        if not self._log_buf or self._log_path is None:
            return
        buf, self._log_buf = self._log_buf, []
        with open(self._log_path, "a") as fh:
            fh.write("".join(buf))


def _merge(into: Counters, other: Counters) -> None:
    for key, value in other.__dict__.items():
        if key == "response_times":
            into.response_times.extend(value)
        else:
            setattr(into, key, getattr(into, key) + value)


def _phases(received: float, timing: Timing | None, done: float) -> str:
    """The access log's three times (s): request, target and response processing."""
    if timing is None:
        return "-1 -1 -1"
    sent, target_s = timing
    return f"{sent - received:.6f} {target_s:.6f} {max(done - sent - target_s, 0.0):.6f}"


def _waf_blocked() -> bytes:
    from peakready.sandbox.balancer.waf import forbidden

    return forbidden()


def _elb_error(status: int) -> bytes:
    body = f"<html><body><h1>{status} {http11.REASONS[status]}</h1></body></html>".encode()
    return http11.render_response(status, body, {"Server": "awselb/2.0"},
                                  content_type="text/html")
