"""``peakready worker --master HOST:PORT``: a Locust worker on any machine.

It asks the master for the bundle (``peakready_bundle_req``, a custom message on Locust's
own zmq channel: plain pyzmq and msgpack here, Locust's wire format, so this process
never imports Locust and gevent), unpacks it into its working folder and then *becomes*
the Locust worker (``exec``: one process, the PID a supervisor or a test sees is the
worker's, signals reach Locust directly). The worker writes its shards into
``WORKDIR/spool`` and ships them to the master; nothing is shared but the network.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from peakready.errors import BadInput
from peakready.load.bundle import unpack
from peakready.load.settings import PLUGIN_FILE

MSG_BUNDLE_REQ = "peakready_bundle_req"  # peakready.load.coordination (Locust side) answers
MSG_BUNDLE = "peakready_bundle"
RETRY_S = 2.0


def parse_master(text: str) -> tuple[str, int]:
    host, sep, port = (text or "").strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--master must be HOST:PORT (e.g. 10.0.0.1:5557), got {text!r}")
    return host, int(port)


def fetch_bundle(host: str, port: int, name: str, wait_s: float) -> dict[str, Any]:
    """Ask until the master answers (it may start after us) or ``wait_s`` passes."""
    import msgpack
    import zmq

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    identity = f"peakready-fetch-{name}-{uuid.uuid4().hex[:8]}"
    sock.setsockopt(zmq.IDENTITY, identity.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{host}:{port}")
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            request = (MSG_BUNDLE_REQ, {"name": name}, identity)
            sock.send(msgpack.dumps(request))
            if sock.poll(timeout=int(RETRY_S * 1000)):
                kind, data, _node = msgpack.loads(sock.recv(), raw=False,
                                                  strict_map_key=False)
                if kind != MSG_BUNDLE:
                    continue
                if data.get("error"):
                    raise BadInput(f"master {host}:{port}: {data['error']}")
                return data
    finally:
        sock.close()
    raise BadInput(f"master {host}:{port} did not answer within {wait_s:g} s (is "
                   "`peakready load/run` with --master-bind running there?)")


def worker_command(data: dict[str, Any], locustfile: Path, workdir: Path, host: str,
                   port: int, name: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", f"{PLUGIN_FILE},{locustfile}",
            "--worker", "--master-host", host, "--master-port", str(port),
            "--traffic-profile", str(workdir / "profile.csv"),
            "--run-dir", str(workdir / "spool"), "--worker-name", name,
            "--logfile", str(workdir / "locust-worker.log"),
            *data["args"], *data["user_classes"]]


def run_worker(master: str, workdir: Path | str, name: str = "", wait_s: float = 120.0,
               exec_: bool = True) -> list[str]:
    """Fetch, unpack, then exec Locust (``exec_=False`` returns the command instead)."""
    host, port = parse_master(master)
    if not (wait_s > 0):
        raise BadInput(f"--wait must be a positive number of seconds, got {wait_s!r}")
    import socket

    name = name or socket.gethostname()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    data = fetch_bundle(host, port, name, wait_s)
    locustfile = unpack(data, workdir)
    cmd = worker_command(data, locustfile, workdir, host, port, name)
    if not exec_:
        return cmd
    env = {**os.environ, **data.get("env", {}), "PYTHONUNBUFFERED": "1"}
    os.chdir(workdir)  # a locust.conf elsewhere does not mix in
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)
    raise AssertionError("unreachable")
