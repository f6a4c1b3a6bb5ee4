"""Wires shipping and coordination into a Locust master or worker (called by openmodel).

Kept apart from ``openmodel`` so the per-request path there stays as it is: everything
here runs at start-up, once per shard, or once per control message.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import gevent

from peakready.load import coordination as co
from peakready.load.shipping import MSG_ACK, MSG_ANNOUNCE, MSG_CHUNK, MSG_DONE, Receiver, Shipper

log = logging.getLogger("peakready.load")
BUNDLE_MAX_BYTES = 64 * 1024 * 1024


def install_master(runner: Any, state: Any, options: Any) -> None:
    bundle = read_bundle(Path(options.worker_bundle), Path(options.traffic_profile),
                         runner.environment.host) if options.worker_bundle else None
    state.coord = co.MasterCoordinator(runner, state.run_dir, bundle, options.drain_seconds)
    runner.register_message(co.MSG_HELLO, state.coord.on_hello)
    runner.register_message(co.MSG_BUNDLE_REQ, state.coord.on_bundle_req)
    runner.register_message(co.MSG_ASK, state.coord.on_ask)
    if state.run_dir is not None:
        state.receiver = Receiver(state.run_dir, runner.send_message)
        runner.register_message(MSG_ANNOUNCE, state.receiver.on_announce)
        runner.register_message(MSG_CHUNK, state.receiver.on_chunk)
        runner.register_message(MSG_DONE, state.receiver.on_done)
    state.coord.save()
    gevent.spawn(_status_loop, state)


def _status_loop(state: Any) -> None:
    while True:
        gevent.sleep(1.0)
        state.coord.save()
        for label, info in state.coord.status()["assigned"].items():
            if state.receiver is not None:
                state.receiver.worker(label, info["client_id"], info["name"])
                state.receiver._dirty = True
        if state.receiver is not None:
            state.receiver.save()


def read_bundle(spec_path: Path, profile: Path, host: str | None) -> dict[str, Any]:
    """What a remote worker needs, read once at start-up: the files under the bundle's
    root (the locustfile's folder), the resolved profile and the Locust options."""
    spec = json.loads(spec_path.read_text())
    root = Path(spec["root"])
    files = {rel: (root / rel).read_bytes() for rel in spec["files"]}
    return {"locustfile": spec["locustfile"], "files": files,
            "profile": profile.read_bytes(), "args": spec["args"],
            "user_classes": spec["user_classes"], "env": spec["env"], "host": host or ""}


def install_worker(runner: Any, state: Any, options: Any) -> None:
    name = state.worker_name = options.worker_name or socket.gethostname()
    runner.send_message(co.MSG_HELLO, {"name": name})
    # pyarrow's first use takes seconds on a busy machine: at init, not in the spawn
    # handler (the import itself is in the plugin file, before the worker connects)
    import pyarrow as pa

    pa.array([0.0])
    runner.register_message(co.MSG_END, lambda msg, **_kw: gevent.spawn(_end, runner, state))
    runner.register_message(co.MSG_TAKEOVER, lambda msg, **_kw: _take_over(state, msg.data))
    runner.register_message(co.MSG_RETIRE, lambda msg, **_kw: _retire(state))
    runner.register_message(co.MSG_RESUME, lambda msg, **_kw: _resume(state))
    runner.environment.events.heartbeat_received.add_listener(CONTACT.heard)
    if not state.closed:
        _keep_paced_pool(runner)


class Contact:
    """When this worker last heard its master. Cut off for longer than ``GAP_S`` (Locust
    calls a worker missing after about 4 s without a heartbeat) the pacer holds its tokens;
    on the next heartbeat the worker asks the master: resume (its share is still its own:
    the held arrivals go out late, the lag recorded) or retire (taken over: dropped), so a
    worker that comes back never sends its share twice."""

    GAP_S = 3.0

    def __init__(self) -> None:
        self.last = time.time()
        self.ask: Any = None  # sends MSG_ASK
        self.pacer: Any = None

    def cut_off(self) -> bool:
        return time.time() - self.last > self.GAP_S

    def heard(self, timestamp: float | None = None, **_kw: Any) -> None:
        now = timestamp or time.time()
        gap, self.last = now - self.last, now
        pacer = self.pacer
        if pacer is not None and (gap > self.GAP_S or pacer.paused) and self.ask is not None:
            pacer.paused = True
            self.ask()


CONTACT = Contact()


def start_shipping(runner: Any, state: Any) -> None:
    """At test start, once the worker knows its index (its files' names)."""
    CONTACT.heard()
    runner.send_message(co.MSG_HELLO, {"name": state.worker_name})  # in case the first was lost
    if state.pacer is not None:
        state.pacer.hold = CONTACT.cut_off
        CONTACT.pacer = state.pacer
        CONTACT.ask = lambda: runner.send_message(co.MSG_ASK, {"worker": state.worker})
    if state.shipper is None:
        state.shipper = Shipper(runner.send_message, state.worker, state.run_dir,
                                state.orders.path if state.orders else None)
        runner.register_message(MSG_ACK, state.shipper.on_ack)
    state.greenlets.append(gevent.spawn(state.shipper.run))


def _end(runner: Any, state: Any) -> None:
    """The profile is over: stop arrivals, let requests in flight finish (the drain time,
    Locust's stop_timeout), flush, ship everything, say done."""
    if state.ended:
        return
    state.ended = True
    if state.pacer is not None:
        state.pacer.stop()
    try:
        runner.stop_users(dict(runner.user_classes_count))
    except Exception:  # noqa: BLE001 - the samples matter more than a clean stop
        log.exception("could not stop the users")
    from peakready.load import openmodel

    openmodel._flush()
    if state.orders is not None:
        state.orders.close()
    if state.shipper is not None:
        state.shipper.drain_all()
    runner.send_message(MSG_DONE, {"worker": state.worker})


def stream(profile: Any, index: int, count: int, steps: list[list[float]]) -> Iterator[float]:
    """A lost worker's arrivals as one survivor sends them, lazily (a long profile has
    millions): each step (from, rank, ranks) keeps the arrivals from ``from`` on and every
    ``ranks``-th of them from ``rank``; a chain, when the survivor that took them over was
    itself lost later."""
    from peakready.profiles import arrival_times

    offsets: Iterator[float] = arrival_times(profile, index, count, from_s=steps[0][0])
    for start, rank, ranks in steps:
        offsets = islice((t for t in offsets if t >= start), int(rank), None, int(ranks))
    return offsets


def _take_over(state: Any, data: dict[str, Any]) -> None:
    if state.pacer is None or state.profile is None or state.ended:
        return
    state.pacer.add_stream(stream(state.profile, int(data["index"]), int(data["count"]),
                                  data["steps"]))
    log.warning("took over arrivals of worker w%s from t=%.1f s", data["index"],
                data["steps"][-1][0])


def _retire(state: Any) -> None:
    """Back after being marked missing: the others send this worker's arrivals now."""
    if state.pacer is not None:
        state.pacer.stop()
        state.pacer.paused = False
    log.warning("retired by the master: this worker's arrivals were taken over")


def _resume(state: Any) -> None:
    if state.pacer is not None and state.pacer.paused:
        state.pacer.paused = False
        log.warning("cut off from the master for a while; it says resume: held arrivals "
                    "go out late (their lag is recorded)")


def _keep_paced_pool(runner: Any) -> None:
    """Locust re-dispatches users when a worker goes missing, comes back or is removed;
    its counts know only the initial pool, and a worker told a smaller count would stop
    the users the pacer added. In the open model the pool only grows."""
    start_worker = runner.start_worker

    def start_at_least(user_classes_count: dict[str, int], **kwargs: Any) -> None:
        current = runner.user_classes_count
        wanted = {k: max(v, current.get(k, 0)) for k, v in user_classes_count.items()}
        return start_worker(wanted, **kwargs)

    runner.start_worker = start_at_least
