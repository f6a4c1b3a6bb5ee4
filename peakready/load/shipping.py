"""Raw samples from distributed workers to the master's run folder, over Locust's channel.

No shared disk: each worker writes its shards and order log into its own spool folder and
ships every closed file to the master as custom Locust messages of at most ``CHUNK``
bytes. Back-pressure is an acknowledgement window: a worker has at most ``WINDOW`` chunks
unacknowledged, so zmq's queues (whose high-water mark makes a DEALER block and a ROUTER
drop) never fill and the worker's gevent loop never waits on a send; a chunk the master
has not acknowledged within ``ACK_TIMEOUT_S`` is sent again (writes are by offset, so a
repeat is harmless). The master writes each chunk at its offset (a few hundred KiB: well
under a millisecond, so its single message greenlet keeps serving heartbeats), renames a
shard to its final name when the last byte is there, and records in ``shipped.json`` what
each worker announced and what arrived. Workers announce a shard when they close it,
before shipping it, so a shard that never arrives is named by analysis.

Runs inside Locust processes (imports gevent); the engine never imports it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from gevent.event import Event
from gevent.lock import Semaphore

from peakready import runfolder

log = logging.getLogger("peakready.load")

MSG_ANNOUNCE = "peakready_shard"  # worker -> master: a shard closed {worker, file, rows, bytes}
MSG_CHUNK = "peakready_chunk"  # worker -> master {worker, file, off, data, size}
MSG_ACK = "peakready_chunk_ack"  # master -> worker {file, have}
MSG_DONE = "peakready_done"  # worker -> master: everything it wrote has arrived {worker}
CHUNK = 256 * 1024
WINDOW = 4
ACK_TIMEOUT_S = 10.0
# What a worker may name: its shards and its order log, nothing else in the run folder.
_FILE_RE = re.compile(r"^(samples/w\d+-\d{5}\.parquet|orders/w\d+\.jsonl)$")


class Shipper:
    """Worker side: ships closed shards and the order log's new complete lines.

    ``send(type, data)`` is the worker runner's ``send_message``. ``closed(path, rows)`` is
    called by the shard writer's flush; ``run()`` is the shipping greenlet.
    """

    def __init__(self, send: Callable[[str, dict], None], worker: str, spool: Path,
                 orders: Path | None = None) -> None:
        self.send = send
        self.worker = worker
        self.spool = Path(spool)
        self.orders = orders
        self.pending: deque[tuple[str, Path, int]] = deque()  # (file, path, rows)
        self.have: dict[str, int] = {}  # file -> bytes the master acknowledged
        self.orders_sent = 0
        self._ack = Event()
        self._wake = Event()
        self.shipped_files = 0
        self.busy = False
        self._lock = Semaphore()  # the greenlet's loop and the end may both drain

    def closed(self, path: Path, rows: int) -> None:
        name = f"{runfolder.SAMPLES_DIR}/{path.name}"
        self.send(MSG_ANNOUNCE, {"worker": self.worker, "file": name, "rows": rows,
                                 "bytes": path.stat().st_size})
        self.pending.append((name, path, rows))
        self._wake.set()

    def on_ack(self, msg: Any, **_kw: Any) -> None:
        name, have = msg.data["file"], int(msg.data["have"])
        self.have[name] = max(self.have.get(name, 0), have)
        self._ack.set()

    @property
    def idle(self) -> bool:
        return not self.pending and not self.busy and self._orders_backlog() == 0

    def run(self) -> None:
        while True:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            self.drain()

    def drain(self) -> None:
        """Ship everything pending now (the greenlet's loop, and the final call)."""
        with self._lock:
            self._drain()

    drain_all = drain

    def _drain(self) -> None:
        self.busy = True
        try:
            while self.pending:
                name, path, _rows = self.pending[0]
                data = path.read_bytes()
                self._ship(name, data, 0, len(data))
                self.pending.popleft()
                self.shipped_files += 1
                try:
                    path.unlink()  # arrived: the spool is only a buffer
                except OSError:
                    pass
            self._ship_orders()
        finally:
            self.busy = False

    def _orders_backlog(self) -> int:
        if self.orders is None or not self.orders.exists():
            return 0
        return self.orders.stat().st_size - self.orders_sent

    def _ship_orders(self) -> None:
        if self._orders_backlog() <= 0:
            return
        with self.orders.open("rb") as fh:
            fh.seek(self.orders_sent)
            tail = fh.read()
        end = tail.rfind(b"\n") + 1  # complete lines only
        if end <= 0:
            return
        name = f"{runfolder.ORDERS_DIR}/{self.orders.name}"
        self._ship(name, tail[:end], self.orders_sent, None)
        self.orders_sent += end

    def _ship(self, name: str, data: bytes, base: int, size: int | None) -> None:
        """Send ``data`` (which starts at file offset ``base``) in acknowledged chunks."""
        end = base + len(data)
        self.have[name] = max(self.have.get(name, 0), base)
        sent = self.have[name]
        last_progress = time.monotonic()
        while self.have[name] < end:
            while sent < end and sent - self.have[name] < WINDOW * CHUNK:
                piece = data[sent - base:sent - base + CHUNK]
                self.send(MSG_CHUNK, {"worker": self.worker, "file": name, "off": sent,
                                      "data": piece, "size": size})
                sent += len(piece)
            before = self.have[name]
            self._ack.clear()
            self._ack.wait(timeout=1.0)
            if self.have[name] > before:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > ACK_TIMEOUT_S:
                log.warning("no acknowledgement for %s in %.0f s: sending again from %d",
                            name, ACK_TIMEOUT_S, self.have[name])
                sent, last_progress = self.have[name], time.monotonic()
            sent = max(sent, self.have[name])


class Receiver:
    """Master side: writes chunks into the run folder and keeps ``shipped.json``."""

    def __init__(self, run_dir: Path, send: Callable[..., None]) -> None:
        self.run_dir = Path(run_dir)
        self.send = send  # the master runner's send_message(type, data, client_id=...)
        self.workers: dict[str, dict[str, Any]] = {}
        self._have: dict[str, int] = {}
        self._dirty = False
        self._saved_at = 0.0

    def worker(self, worker: str, client_id: str = "", name: str = "") -> dict[str, Any]:
        entry = self.workers.setdefault(worker, {"client_id": client_id, "name": name,
                                                 "files": {}, "done": False})
        if client_id:
            entry["client_id"] = client_id
        if name:
            entry["name"] = name
        return entry

    def on_announce(self, msg: Any, **_kw: Any) -> None:
        data = msg.data
        if not _FILE_RE.match(str(data.get("file", ""))):
            log.warning("ignored shard announcement %r from %s", data.get("file"), msg.node_id)
            return
        files = self.worker(str(data["worker"]), msg.node_id)["files"]
        entry = files.setdefault(data["file"], {"rows": 0, "bytes": 0, "received": False})
        entry.update(rows=int(data["rows"]), bytes=int(data["bytes"]))
        self._changed()

    def on_chunk(self, msg: Any, **_kw: Any) -> None:
        data = msg.data
        name, off, piece = str(data.get("file", "")), int(data["off"]), data["data"]
        if not _FILE_RE.match(name) or PurePosixPath(name).stem.split("-")[0] != data["worker"]:
            log.warning("ignored chunk of %r from %s", name, msg.node_id)
            return
        have = self._have.get(name)
        if have is None:
            have = self._have[name] = self._existing(name, data["size"])
        if off <= have < off + len(piece):  # in order (a repeat or a gap is only acknowledged)
            path = self._partial(name, data["size"])
            with path.open("r+b" if path.exists() else "wb") as fh:
                fh.seek(off)
                fh.write(piece)
            have = self._have[name] = off + len(piece)
            entry = self.worker(str(data["worker"]), msg.node_id)["files"].setdefault(
                name, {"rows": None, "bytes": 0, "received": False})
            entry["bytes"] = max(int(entry.get("bytes") or 0), have)
            if data["size"] is None:  # the order log: complete lines, appended
                entry["received"] = True
            elif have >= int(data["size"]):
                os.replace(path, self.run_dir / name)
                entry["received"] = True
            self._changed()
        self.send(MSG_ACK, {"file": name, "have": have}, client_id=msg.node_id)

    def on_done(self, msg: Any, **_kw: Any) -> None:
        self.worker(str(msg.data["worker"]), msg.node_id)["done"] = True
        self.save()

    def all_done(self, workers: list[str]) -> bool:
        return all(self.workers.get(w, {}).get("done") for w in workers)

    def save(self, every_s: float = 0.0) -> None:
        now = time.monotonic()
        if not self._dirty or now - self._saved_at < every_s:
            return
        self._dirty, self._saved_at = False, now
        runfolder.write_json_atomic(self.run_dir / runfolder.SHIPPED,
                                    {"workers": self.workers})

    def _changed(self) -> None:
        self._dirty = True

    def _partial(self, name: str, size: int | None) -> Path:
        final = self.run_dir / name
        final.parent.mkdir(parents=True, exist_ok=True)
        return final if size is None else final.with_name(f".{final.name}.part")

    def _existing(self, name: str, size: int | None) -> int:
        path = self._partial(name, size)
        return path.stat().st_size if path.exists() else 0
