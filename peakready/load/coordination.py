"""Master <-> worker coordination of a distributed peakready run, over Locust's channel.

Runs inside Locust processes. What travels (all custom Locust messages):

- ``peakready_hello`` worker -> master at start-up: its name (``--worker-name``, default
  the host name: network namespaces share one host name, so tests name them).
- ``peakready_bundle_req`` / ``peakready_bundle``: what ``peakready worker`` fetches
  before it starts Locust (``peakready.load.remote``): the locustfile's folder, the
  resolved profile, the Locust options. Answered for any sender, connected or not.
- ``peakready_assign`` master -> worker at test start: index, count, t0.
- ``peakready_takeover`` master -> the remaining workers when a worker goes missing: the
  lost index's arrivals from a given offset, split among them; ``peakready_retire`` to a
  lost worker that comes back, so its share is not sent twice.
- ``peakready_end`` master -> workers when the profile is over: stop the users (in-flight
  requests get the drain time), flush, ship what is left, then ``peakready_done``. The
  master keeps the test alive until every assigned worker is done (or the end deadline
  passes) and only then lets Locust quit, so the last shards are gathered while the
  channel is still served.

The master writes ``workers.json`` (connected workers, assignments, takeovers) every
second; the engine waits on it for external workers and copies takeovers to run.json.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gevent

from peakready import runfolder

log = logging.getLogger("peakready.load")

MSG_HELLO = "peakready_hello"
MSG_BUNDLE_REQ = "peakready_bundle_req"
MSG_BUNDLE = "peakready_bundle"
MSG_TAKEOVER = "peakready_takeover"
MSG_RETIRE = "peakready_retire"
MSG_END = "peakready_end"
MSG_ASK = "peakready_ask"  # worker -> master after being cut off: resume or retire?
MSG_RESUME = "peakready_resume"
END_SHIP_S = 30.0  # after the drain time: how long the master waits for the last shards
TAKEOVER_DELAY_S = 0.5  # arrivals of a lost worker from this far after noticing are re-sent


class MasterCoordinator:
    """The master's view of its workers: names, assignments, takeovers, the end phase."""

    def __init__(self, runner: Any, run_dir: Path | None, bundle: dict | None,
                 drain_s: float) -> None:
        self.runner = runner
        self.run_dir = run_dir
        self.bundle = bundle
        self.drain_s = drain_s
        self.names: dict[str, str] = {}
        self.index_of: dict[str, int] = {}  # client_id -> worker index of this test
        self.count = 0
        self.t0: float | None = None
        self.lost: dict[str, float] = {}  # client_id -> when it was found missing
        self.takeovers: list[dict[str, Any]] = []
        # client_id -> arrival streams it sends for lost workers (see distributed.stream)
        self.streams: dict[str, list[dict[str, Any]]] = {}
        self.retired: set[str] = set()
        self.end_at: float | None = None
        self.ending: list[str] = []  # the workers told to end (and waited for)
        self.ended = False
        self.started = False

    # --- messages -------------------------------------------------------------------
    def on_hello(self, msg: Any, **_kw: Any) -> None:
        self.names[msg.node_id] = str(msg.data.get("name") or msg.node_id)
        self.save()

    def on_ask(self, msg: Any, **_kw: Any) -> None:
        """A worker that was cut off asks whether its share is still its own."""
        cid = msg.node_id
        if cid in self.lost:
            self._retire(cid)
        else:
            self.runner.send_message(MSG_RESUME, {}, client_id=cid)

    def _retire(self, cid: str) -> None:
        if cid in self.retired:
            self.runner.send_message(MSG_RETIRE, {}, client_id=cid)
            return
        self.retired.add(cid)  # back: its arrivals are someone else's now
        self.runner.send_message(MSG_RETIRE, {}, client_id=cid)
        log.warning("worker %s came back after its share was taken over: retired (no "
                    "double count)", self.worker_label(cid))
        for record in self.takeovers:
            if record["worker"] == self.worker_label(cid):
                record["returned_at"] = time.time()
        self.save()

    def on_bundle_req(self, msg: Any, **_kw: Any) -> None:
        data = self.bundle if self.bundle is not None else {
            "error": "the master was started without a worker bundle (peakready load/run "
                     "with --master-bind writes one)"}
        self.runner.send_message(MSG_BUNDLE, data, client_id=msg.node_id)

    # --- test start -------------------------------------------------------------------
    def assign(self, t0: float, send_assign) -> None:
        workers = sorted(w.id for w in self.runner.clients.all if w.state != "missing")
        self.t0, self.count, self.started = t0, len(workers), True
        self.index_of = {cid: i for i, cid in enumerate(workers)}
        for cid, i in self.index_of.items():
            send_assign(cid, i, len(workers))
        self.save()

    def worker_label(self, client_id: str) -> str:
        return f"w{self.index_of[client_id]}" if client_id in self.index_of else client_id

    # --- lost workers -----------------------------------------------------------------
    def watch(self, profile_duration_s: float) -> None:
        """Every half second: a worker Locust marked missing has its remaining arrivals
        handed to the workers still there; one that comes back is retired."""
        while not self.ended:
            gevent.sleep(0.5)
            try:
                self._check(profile_duration_s)
            except Exception:  # noqa: BLE001 - never let the watcher kill the master
                log.exception("worker watch failed")

    def _check(self, profile_duration_s: float) -> None:
        states = {w.id: w.state for w in self.runner.clients.all}
        for cid in list(self.index_of):
            state = states.get(cid, "missing")  # deleted after a minute missing
            if cid in self.lost:
                if state != "missing" and cid not in self.retired:
                    self._retire(cid)
                continue
            if state == "missing":
                self._take_over(cid, profile_duration_s)

    def _take_over(self, cid: str, profile_duration_s: float) -> None:
        """The lost worker's own arrivals, and those it had taken over from workers lost
        before it, from shortly after now, dealt round-robin to the workers still there."""
        now = time.time()
        self.lost[cid] = now
        alive = sorted(c for c in self.index_of if c not in self.lost)
        from_offset = now + TAKEOVER_DELAY_S - (self.t0 or now)
        record = {"worker": self.worker_label(cid), "name": self.names.get(cid, cid),
                  "missing_at": now, "from_offset_s": round(from_offset, 3),
                  "to": [self.worker_label(c) for c in alive]}
        self.takeovers.append(record)
        if not alive or from_offset >= profile_duration_s:
            record["to"] = []
            log.error("worker %s lost and no worker left to take its arrivals",
                      record["worker"])
            self.save()
            return
        own = {"index": self.index_of[cid], "count": self.count, "steps": []}
        for stream in [own, *self.streams.pop(cid, [])]:
            for rank, other in enumerate(alive):
                mine = {**stream, "steps": [*stream["steps"], [from_offset, rank, len(alive)]]}
                self.streams.setdefault(other, []).append(mine)
                self.runner.send_message(MSG_TAKEOVER, mine, client_id=other)
        log.warning("worker %s missing: its arrivals from t=%.1f s go to %s",
                    record["worker"], from_offset, ", ".join(record["to"]))
        self.save()

    # --- the end ----------------------------------------------------------------------
    def active(self) -> list[str]:
        """Assigned workers connected now (a lost one that came back too: it has shards)."""
        states = {w.id: w.state for w in self.runner.clients.all}
        return [self.worker_label(c) for c in self.index_of
                if states.get(c, "missing") != "missing"]

    def end_done(self, receiver) -> bool:
        """Non-blocking (the shape's tick): broadcast the end once, then True when every
        worker still there has shipped everything, or at the deadline."""
        if self.end_at is None:
            self.end_at = time.monotonic()
            self.ending = self.active()
            for cid in self.index_of:
                if self.worker_label(cid) in self.ending:
                    self.runner.send_message(MSG_END, {}, client_id=cid)
        done = receiver is None or receiver.all_done(self.ending)
        late = time.monotonic() - self.end_at > self.drain_s + END_SHIP_S
        if late and not done:
            log.error("gave up waiting for the last shards of %s",
                      ", ".join(w for w in self.ending if not receiver.all_done([w])))
        if done or late:
            self.ended = True
            self.save()
        return done or late

    def wait_end(self, receiver) -> None:
        """Blocking version, for Ctrl-C on the master (Locust's quitting event, fired
        while the message greenlet still runs)."""
        if not self.started or self.ended:
            return
        while not self.end_done(receiver):
            gevent.sleep(0.2)

    def status(self) -> dict[str, Any]:
        return {
            "connected": [{"client_id": w.id, "name": self.names.get(w.id, w.id),
                           "state": w.state} for w in self.runner.clients.all],
            "started": self.started, "count": self.count, "t0": self.t0,
            "assigned": {self.worker_label(c): {"client_id": c,
                                                "name": self.names.get(c, c)}
                         for c in self.index_of},
            "takeovers": self.takeovers, "ended": self.ended,
        }

    def save(self) -> None:
        if self.run_dir is not None:
            runfolder.write_json_atomic(self.run_dir / runfolder.WORKERS_STATUS, self.status())
