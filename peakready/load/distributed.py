"""Wires shipping and coordination into a Locust master or worker (called by openmodel).

Kept apart from ``openmodel`` so the per-request path there stays as it is: everything
here runs at start-up, once per shard, or once per control message.
"""

from __future__ import annotations

import json
import logging
import socket
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
    name = options.worker_name or socket.gethostname()
    runner.send_message(co.MSG_HELLO, {"name": name})
    runner.register_message(co.MSG_END, lambda msg, **_kw: gevent.spawn(_end, runner, state))
    runner.register_message(co.MSG_TAKEOVER, lambda msg, **_kw: _take_over(state, msg.data))
    runner.register_message(co.MSG_RETIRE, lambda msg, **_kw: _retire(state))
    if not state.closed:
        _keep_paced_pool(runner)


def start_shipping(runner: Any, state: Any) -> None:
    """At test start, once the worker knows its index (its files' names)."""
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


def _take_over(state: Any, data: dict[str, Any]) -> None:
    if state.pacer is None or state.profile is None or state.ended:
        return
    from peakready.profiles import arrival_times

    lost = arrival_times(state.profile, int(data["lost_index"]), int(data["count"]))
    start, rank, ranks = float(data["from_offset"]), int(data["rank"]), int(data["ranks"])
    mine = [t for t in lost if t >= start][rank::ranks]
    state.pacer.add_stream(mine)
    log.warning("took over %d arrivals of worker w%s from t=%.1f s", len(mine),
                data["lost_index"], start)


def _retire(state: Any) -> None:
    """Back after being marked missing: the others send this worker's arrivals now."""
    if state.pacer is not None:
        state.pacer.stop()
    log.warning("retired by the master: this worker's arrivals were taken over")


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
