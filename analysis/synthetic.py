"""Generate run folders with known answers (tests, benchmark, notebook demo).

Not a stand-in for a real run: it writes exactly the files docs/run-folder.md specifies,
with the shapes declared in ``peakready.runfolder_schema`` (the ones the real writers use),
from a seeded model whose truth is known (the p95 of a phase, the end of a planted outage,
a +30% latency shift), so analysis can be checked against that truth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from peakready import runfolder
from peakready import runfolder_schema as schema
from peakready.sandbox.aws import names

T0 = 1_764_000_000.0

# endpoint -> (weight, median ms, lognormal sigma)
ENDPOINTS: dict[str, tuple[float, float, float]] = {
    "GET /": (0.20, 20.0, 0.35),
    "GET /api/products": (0.25, 30.0, 0.35),
    "GET /api/products/[sku]": (0.25, 25.0, 0.35),
    "GET /api/search": (0.12, 60.0, 0.45),
    "POST /api/cart/items": (0.10, 40.0, 0.35),
    "POST /api/checkout": (0.08, 120.0, 0.40),
}

DEFAULT_PROFILE = [(0, 20), (30, 20), (60, 80), (150, 80), (160, 20), (210, 20)]
DEFAULT_PHASES = [
    {"name": "warm-up", "start_s": 0, "end_s": 30},
    {"name": "ramp", "start_s": 30, "end_s": 60},
    {"name": "peak", "start_s": 60, "end_s": 150},
    {"name": "recovery", "start_s": 150, "end_s": 210},
]


@dataclass
class Fault:
    name: str
    kind: str  # instance | db | cache
    start_s: float
    end_s: float
    outage: bool = True  # every request fails (503) between start and end
    detect_s: float | None = 4.0  # an alarm goes to ALARM this long after start
    launch_s: float | None = None  # instance faults: the replacement launches (else end_s)


@dataclass
class Scaling:
    """A scale-out: the chain load rise -> alarm -> desired -> in service -> healthy."""

    alarm_s: float
    desired_s: float
    in_service_s: float
    healthy_s: float
    to_n: int = 3


@dataclass
class Spec:
    seed: int = 0
    t0: float = T0
    profile: list[tuple[float, float]] = field(default_factory=lambda: list(DEFAULT_PROFILE))
    endpoints: dict[str, tuple[float, float, float]] = field(
        default_factory=lambda: dict(ENDPOINTS))
    latency_factor: float = 1.0
    slow: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, x)
    lag: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, ms late)
    faults: list[Fault] = field(default_factory=list)
    scaling: list[Scaling] = field(default_factory=list)
    phases: list[dict[str, Any]] | None = field(default_factory=lambda: list(DEFAULT_PHASES))
    checks: dict[str, Any] | None = None
    status: str = "completed"
    plan_name: str = "synthetic"
    instances: int = 2
    users: int = 300
    lost_orders: int = 0
    session_loss_users: int = 0
    logins: int = 0  # user-0 .. user-(logins-1) log in (POST /api/login, 200) in the first second
    error_rate: float = 0.0  # background failure probability
    shard_rows: int = 200_000
    verify: bool = True
    metrics: bool = True


def offered_rps(profile: list[tuple[float, float]], t: np.ndarray) -> np.ndarray:
    points = np.asarray(profile, dtype=float)
    return np.interp(t, points[:, 0], points[:, 1])


def make_samples(spec: Spec, seconds: np.ndarray | None = None,
                 rng: np.random.Generator | None = None,
                 lost_users: np.ndarray | None = None) -> pd.DataFrame:
    """Poisson arrivals following the profile; lognormal latency per endpoint.

    ``seconds`` (a slice of the run's seconds), ``rng`` and ``lost_users`` let
    ``sample_chunks`` generate a run too large for memory piece by piece; by default the
    whole run is one piece drawn from ``Spec.seed``."""
    rng = rng or np.random.default_rng(spec.seed)
    duration = float(max(p[0] for p in spec.profile))
    if seconds is None:
        seconds = np.arange(int(np.ceil(duration)))
    counts = rng.poisson(offered_rps(spec.profile, seconds + 0.5))
    n = int(counts.sum())
    intended = np.repeat(seconds, counts) + rng.random(n)
    names = list(spec.endpoints)
    weights = np.array([v[0] for v in spec.endpoints.values()])
    ep = rng.choice(len(names), size=n, p=weights / weights.sum())
    med = np.array([v[1] for v in spec.endpoints.values()])[ep]
    sig = np.array([v[2] for v in spec.endpoints.values()])[ep]
    rt = med * np.exp(sig * rng.standard_normal(n)) * spec.latency_factor
    lag = np.zeros(n)
    for start, end, factor in spec.slow:
        rt = np.where((intended >= start) & (intended < end), rt * factor, rt)
    for start, end, ms in spec.lag:
        lag = np.where((intended >= start) & (intended < end), ms / 1000.0, lag)
    status = np.full(n, 200, dtype=np.int64)
    error_code = np.zeros(n, dtype=np.int8)  # 0 ok, 1 http 503, 2 session lost
    if spec.error_rate:
        bad = rng.random(n) < spec.error_rate
        status[bad], error_code[bad] = 500, 1
    for fault in spec.faults:
        if fault.outage:
            hit = (intended + lag >= fault.start_s) & (intended + lag < fault.end_s)
            status[hit], error_code[hit], rt[hit] = 503, 1, 3.0
    user = rng.integers(0, spec.users, size=n)
    cache = [f for f in spec.faults if f.kind == "cache"]
    if spec.session_loss_users and cache:
        fault = cache[0]
        if lost_users is None:
            lost_users = rng.choice(spec.users, size=spec.session_loss_users, replace=False)
        hit = np.isin(user, lost_users) & (intended >= fault.start_s) & (
            intended < fault.end_s + 2.0) & (error_code == 0)
        status[hit], error_code[hit] = 401, 2
    methods = sorted({k.split(" ", 1)[0] for k in names})
    routes = sorted({k.split(" ", 1)[1] for k in names})
    method_code = np.array([methods.index(k.split(" ", 1)[0]) for k in names], dtype=np.int8)
    route_code = np.array([routes.index(k.split(" ", 1)[1]) for k in names], dtype=np.int16)
    errors = ["", "HTTPError('503 Server Error: Service Unavailable')",
              "session lost: 401 Unauthorized"]
    frame = pd.DataFrame({
        "ts": spec.t0 + intended + lag,
        "intended_ts": spec.t0 + intended,
        "name": pd.Categorical.from_codes(route_code[ep], categories=routes),
        "method": pd.Categorical.from_codes(method_code[ep], categories=methods),
        "status": status,
        "ok": error_code == 0,
        "rt_ms": rt,
        "bytes": np.where(error_code == 0, 2048, 64).astype(np.int64),
        "error": pd.Categorical.from_codes(error_code, categories=errors),
        "user": pd.Categorical.from_codes(user, categories=[f"user-{i}" for i in
                                                            range(spec.users)]),
        "attack": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[""]),
        "request_id": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[""]),
        "worker": pd.Categorical.from_codes(user % 2, categories=["w0", "w1"]),
    })[schema.SAMPLE_COLUMNS]
    if spec.logins and (len(seconds) == 0 or seconds[0] == 0):
        frame = pd.concat([frame, _logins(spec)], ignore_index=True)
        for col in schema.SAMPLE_CATEGORICAL:
            frame[col] = frame[col].astype(str).astype("category")
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


CHUNK_ROWS = 4_000_000


def sample_chunks(spec: Spec) -> Iterator[pd.DataFrame]:
    """The run's samples in time order, at most about ``CHUNK_ROWS`` at a time, so a
    100M-sample run is written with bounded memory. A run that fits one chunk is exactly
    ``make_samples(spec)``; larger ones draw each chunk from its own seeded generator."""
    duration = float(max(p[0] for p in spec.profile))
    seconds = np.arange(int(np.ceil(duration)))
    expected = offered_rps(spec.profile, seconds + 0.5)
    if expected.sum() <= CHUNK_ROWS:
        yield make_samples(spec)
        return
    lost = np.random.default_rng([spec.seed, 1]).choice(
        spec.users, size=spec.session_loss_users, replace=False)
    edges = np.searchsorted(np.cumsum(expected), np.arange(CHUNK_ROWS, expected.sum(),
                                                           CHUNK_ROWS))
    for i, part in enumerate(np.split(seconds, np.unique(edges))):
        if len(part):
            yield make_samples(spec, part, np.random.default_rng([spec.seed, 2, i]), lost)


def _logins(spec: Spec) -> pd.DataFrame:
    ts = spec.t0 + 0.1 + np.arange(spec.logins) * (0.8 / spec.logins)
    return pd.DataFrame({
        "ts": ts, "intended_ts": ts, "name": "/api/login", "method": "POST", "status": 200,
        "ok": True, "rt_ms": 30.0, "bytes": 256, "error": "", "attack": "", "request_id": "",
        "user": [f"user-{i}" for i in range(spec.logins)],
        "worker": [f"w{i % 2}" for i in range(spec.logins)]})


def make_events(spec: Spec) -> pd.DataFrame:
    rows: list[tuple[float, str, str, str, dict[str, Any]]] = []
    for i, fault in enumerate(spec.faults):
        journal = f"chaos/{fault.name}.journal.json"
        detail = {"experiment": f"experiments/{fault.name}.json", "status": "completed",
                  "deviated": False, "journal": journal}  # as collect: one detail, both rows
        rows.append((fault.start_s - 0.3, "chaos", "fault_start", fault.name, detail))
        rows.append((fault.end_s + 1.0, "chaos", "fault_end", fault.name, detail))
        if fault.kind == "instance":
            rows.append((fault.start_s, "autoscaling", "instance_terminate", f"i-{i:04x}dead",
                         {"cause": "chaos"}))
            rows.append((fault.start_s, "autoscaling", "scaling_activity", names.ASG,
                         {"activity_id": f"repl-{i}", "cause": "an instance was taken out of "
                          "service in response to an EC2 health check indicating it has been "
                          "terminated", "description": "", "status": "Successful",
                          "start": spec.t0 + fault.start_s, "end": None}))
            rows.append((fault.launch_s if fault.launch_s is not None else fault.end_s,
                         "autoscaling", "instance_launch", f"i-{i:04x}new",
                         {"cause": "replacing unhealthy"}))
        elif fault.kind in ("db", "cache"):
            resource = names.DB_CLUSTER if fault.kind == "db" else names.CACHE_GROUP
            rows.append((fault.start_s, "rds" if fault.kind == "db" else "elasticache",
                         f"{fault.kind}_failover_start", resource, {"message": "failover started"}))
            rows.append((fault.end_s, "rds" if fault.kind == "db" else "elasticache",
                         f"{fault.kind}_failover_end", resource, {"message": "failover completed"}))
        if fault.detect_s is not None:
            rows.append((fault.start_s + fault.detect_s, "cloudwatch", "alarm_state",
                         names.ALARM_5XX, {"from": "OK", "to": "ALARM", "reason": "5xx"}))
            rows.append((fault.end_s + 5.0, "cloudwatch", "alarm_state", names.ALARM_5XX,
                         {"from": "ALARM", "to": "OK", "reason": "recovered"}))
    for k, sc in enumerate(spec.scaling):
        rows.append((sc.alarm_s, "cloudwatch", "alarm_state", "peakready-web-scale-out",
                     {"from": "OK", "to": "ALARM", "reason": "RequestCountPerTarget high"}))
        rows.append((sc.desired_s, "autoscaling", "scaling_activity", names.ASG,
                     {"activity_id": f"act-{k}", "cause": "a monitor alarm "
                      "peakready-web-scale-out in state ALARM triggered policy target-tracking "
                      f"changing the desired capacity from {spec.instances} to {sc.to_n}",
                      "description": f"Launching a new EC2 instance, desired {sc.to_n}",
                      "status": "Successful", "start": spec.t0 + sc.desired_s,
                      "end": spec.t0 + sc.in_service_s}))
        rows.append((sc.in_service_s, "autoscaling", "instance_launch", f"i-scale{k}",
                     {"cause": "scale out"}))
    frame = pd.DataFrame(rows, columns=schema.EVENT_COLUMNS)
    frame["ts"] = frame["ts"].astype(float) + spec.t0
    frame["detail"] = frame["detail"].map(json.dumps)
    return frame.sort_values("ts").reset_index(drop=True)


def request_counts(spec: Spec, samples: pd.DataFrame, period: int = 5) -> np.ndarray:
    """Requests per metric period (the ALB's RequestCount), chunks add up."""
    n = len(np.arange(0, float(max(p[0] for p in spec.profile)), period))
    return np.bincount(((samples["ts"] - spec.t0) // period).clip(0, n - 1).astype(int),
                       minlength=n).astype(float)


def make_metrics(spec: Spec, samples: pd.DataFrame | np.ndarray, period: int = 5
                 ) -> pd.DataFrame:
    """``samples``: the run's samples, or their ``request_counts`` already added up."""
    duration = float(max(p[0] for p in spec.profile))
    starts = np.arange(0, duration, period, dtype=float)

    def capacity(kind: str) -> np.ndarray:
        attr = {"desired": "desired_s", "in_service": "in_service_s", "healthy": "healthy_s"}[kind]
        n = np.full(len(starts), float(spec.instances))
        for sc in spec.scaling:
            n = np.where(starts + period > getattr(sc, attr), float(sc.to_n), n)
        if kind != "desired":
            for f in spec.faults:
                if f.kind == "instance":
                    n = n - ((starts + period > f.start_s) & (starts < f.end_s))
        return n

    asg = f"AutoScalingGroupName={names.ASG}"
    tg = f"LoadBalancer=app/{names.ALB},TargetGroup=targetgroup/{names.TARGET_GROUP}"
    counts = samples if isinstance(samples, np.ndarray) else request_counts(spec, samples,
                                                                              period)
    parts = [("AWS/AutoScaling", "GroupDesiredCapacity", asg, "Maximum", capacity("desired")),
             ("AWS/AutoScaling", "GroupInServiceInstances", asg, "Maximum",
              capacity("in_service")),
             ("AWS/ApplicationELB", "HealthyHostCount", tg, "Minimum", capacity("healthy")),
             ("AWS/ApplicationELB", "RequestCount", tg, "Sum", counts)]
    frames = [pd.DataFrame({"ts": spec.t0 + starts, "source": "cloudwatch", "namespace": ns,
                            "metric": metric, "dimensions": dims, "stat": stat,
                            "period_s": period, "value": values})
              for ns, metric, dims, stat, values in parts]
    return pd.concat(frames, ignore_index=True)[schema.METRIC_COLUMNS]


def plan_for(spec: Spec) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "name": spec.plan_name,
        "target": {"kind": "sandbox", "alarms": [names.ALARM_5XX, "peakready-web-scale-out"]},
        "load": {"profile": "synthetic", "duration_s": max(p[0] for p in spec.profile)},
        "faults": [{"name": f.name, "experiment": f"experiments/{f.name}.json", "at_s": f.start_s}
                   for f in spec.faults],
    }
    if spec.phases is not None:
        plan["phases"] = spec.phases
    if spec.checks is not None:
        plan["checks"] = spec.checks
    return plan


def write_run(run_dir: Path | str, spec: Spec | None = None) -> Path:
    """Write a complete run folder for ``spec`` and return its path."""
    spec = spec or Spec()
    run_dir = Path(run_dir)
    for sub in (runfolder.SAMPLES_DIR, runfolder.ORDERS_DIR, runfolder.CHAOS_DIR):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    shards, counts, orders = 0, None, _Orders(run_dir, spec)
    for samples in sample_chunks(spec):
        shards = write_shards(run_dir / runfolder.SAMPLES_DIR, samples, spec.shard_rows, shards)
        part = request_counts(spec, samples)
        counts = part if counts is None else counts + part
        orders.add(samples)
    orders.close()
    duration = float(max(p[0] for p in spec.profile))
    runfolder.write_run_json(run_dir, {
        "run_id": run_dir.name, "label": "synthetic", "status": spec.status,
        "started_at": spec.t0 - 5.0, "ended_at": spec.t0 + duration + 5.0,
        "load_started_at": spec.t0, "versions": {"synthetic": "1"}})
    (run_dir / runfolder.PLAN_YAML).write_text(yaml.safe_dump(plan_for(spec), sort_keys=False))
    (run_dir / "settings.json").write_text(json.dumps(
        {"profile_points": {"t_s": [float(p[0]) for p in spec.profile],
                            "rps": [float(p[1]) for p in spec.profile]},
         "duration_s": duration, "workers": 2, "speed": 1.0}))
    events = make_events(spec)
    if len(events):
        events.to_parquet(run_dir / runfolder.EVENTS, index=False)
    if spec.metrics:
        make_metrics(spec, counts).to_parquet(run_dir / runfolder.METRICS, index=False)
    for fault in spec.faults:
        (run_dir / runfolder.CHAOS_DIR / f"{fault.name}.journal.json").write_text(json.dumps(
            _journal(spec, fault), indent=1))
    return run_dir


def write_shards(samples_dir: Path, samples: pd.DataFrame, shard_rows: int,
                 first: int = 0) -> int:
    """Shards ``w0-<first>...``; returns the next free shard number."""
    i = first
    for start in range(0, max(len(samples), 1), shard_rows):
        chunk = samples.iloc[start:start + shard_rows]
        pq.write_table(pa.Table.from_pandas(chunk, schema=schema.SAMPLE_SCHEMA,
                                            preserve_index=False),
                       samples_dir / f"w0-{i:05d}.parquet")
        i += 1
    return i


class _Orders:
    """orders/w0.jsonl and integrity/orders.parquet, appended chunk by chunk: every
    successful checkout is a confirmed order; the first ``lost_orders`` are not found."""

    def __init__(self, run_dir: Path, spec: Spec) -> None:
        self.spec, self.n = spec, 0
        self.fh = (run_dir / runfolder.ORDERS_DIR / "w0.jsonl").open("w")
        self.writer: pq.ParquetWriter | None = None
        self.path = run_dir / runfolder.INTEGRITY_DIR / "orders.parquet"
        self.checked_ts = spec.t0 + max(p[0] for p in spec.profile) + 2.0

    def add(self, samples: pd.DataFrame) -> None:
        placed = samples.loc[(samples["name"] == "/api/checkout") & samples["ok"]]
        ids = [f"ord-{self.spec.seed}-{i}" for i in range(self.n, self.n + len(placed))]
        ts = placed["ts"].to_numpy()
        # json.dumps' own layout, without its per-row cost (millions of orders)
        self.fh.writelines(
            f'{{"order_id": "{o}", "ts": {float(t)!r}, "user": "{u}", "worker": "{w}"}}\n'
            for o, t, u, w in zip(ids, ts, placed["user"].astype(str),
                                  placed["worker"].astype(str), strict=True))
        if self.spec.verify:
            found = np.arange(self.n, self.n + len(placed)) >= self.spec.lost_orders
            table = pa.Table.from_pandas(pd.DataFrame({
                "order_id": ids, "confirmed_ts": ts, "found": found,
                "status": np.where(found, 200, 404), "checked_ts": self.checked_ts})[
                schema.INTEGRITY_COLUMNS], preserve_index=False)
            if self.writer is None:
                self.path.parent.mkdir(exist_ok=True)
                self.writer = pq.ParquetWriter(self.path, table.schema)
            self.writer.write_table(table)
        self.n += len(placed)

    def close(self) -> None:
        self.fh.close()
        if self.writer is not None:
            self.writer.close()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _journal(spec: Spec, fault: Fault) -> dict[str, Any]:
    start, end = spec.t0 + fault.start_s - 0.3, spec.t0 + fault.start_s + 0.2
    return {"chaoslib-version": "1.44.0", "platform": "synthetic",
            "experiment": {"title": fault.name}, "start": _iso(start),
            "end": _iso(spec.t0 + fault.end_s + 1.0), "duration": fault.end_s - fault.start_s,
            "status": "completed", "deviated": False,
            "steady_states": {"before": {"steady_state_met": True, "probes": []},
                              "after": {"steady_state_met": True, "probes": []}, "during": []},
            "run": [{"activity": {"name": fault.name, "type": "action", "provider": {}},
                     "start": _iso(start), "end": _iso(end), "status": "succeeded",
                     "output": None}],
            "rollbacks": []}
