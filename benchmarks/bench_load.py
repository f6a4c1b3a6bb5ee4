"""Load path benchmark: peakready's open model + sample capture vs a bare Locust user.

Both drive the same fast local HTTP server (a raw gevent responder pinned to CPU 0), each
as one Locust process pinned to CPU 1, with the same concurrency (20 users), in one run:
1. bare: ``FastHttpUser``, ``wait_time = constant(0)``, plain ``locust -f`` (no plugin,
   no listeners): Locust's ceiling.
2. peakready: ``ArrivalUser`` (plugin + pacer + parquet shards + live.json) at a target
   rate twice what the bare run achieved, user cap 20, so the load path is the bottleneck.
3. the same pair for a plain ``HttpUser`` file (requests-based client): bare with
   ``constant(0)`` vs the team's file as written (``wait_time = between(1, 2)``, no
   peakready import) run by peakready as an open model (think time -> arrival tokens).
4. shape fidelity: the ArrivalUser path on a ramp/hold/decay profile within capacity;
   per-second request *start* rate against the profile's expected arrivals in that second.

Run: ``.venv/bin/python benchmarks/bench_load.py [--seconds 15] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peakready import runfolder  # noqa: E402
from peakready.load import LoadSettings, start_load  # noqa: E402
from peakready.load.summary import read_samples  # noqa: E402
from peakready.profiles import load_profile  # noqa: E402

USERS = 20
BARE = """
from locust import FastHttpUser, constant, task

class Bare(FastHttpUser):
    wait_time = constant(0)

    @task
    def hit(self):
        self.client.get("/health")
"""
PACED = """
from locust import task
from peakready.load.openmodel import ArrivalRateShape, ArrivalUser  # noqa: F401

class Paced(ArrivalUser):
    think_time = 0.0

    @task
    def hit(self):
        self.client.get("/health")
"""
BARE_HTTP = """
from locust import HttpUser, constant, task

class BareHttp(HttpUser):
    wait_time = constant(0)

    @task
    def hit(self):
        self.client.get("/health")
"""
PLAIN_HTTP = """
from locust import HttpUser, between, task

class TeamFile(HttpUser):
    wait_time = between(1, 2)

    @task
    def hit(self):
        self.client.get("/health")
"""


def serve(port_file: str) -> None:
    """A keep-alive HTTP responder that does as little as possible per request."""
    from gevent.server import StreamServer

    body = b'{"ok": true}'
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)

    def handle(sock, _addr):
        buf = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:  # the load generator hung up at the end of a run
                return
            if not data:
                return
            buf += data
            n = buf.count(b"\r\n\r\n")
            if n:
                sock.sendall(reply * n)
                buf = buf[buf.rfind(b"\r\n\r\n") + 4:]

    server = StreamServer(("127.0.0.1", 0), handle)
    server.init_socket()
    Path(port_file).write_text(str(server.server_port))
    server.serve_forever()


def pin(pid: int, cpu: int) -> None:
    if psutil.cpu_count() and psutil.cpu_count() > cpu:
        psutil.Process(pid).cpu_affinity([cpu])


class CpuWatch:
    """Samples a process's CPU seconds twice a second while it runs (a thread)."""

    def __init__(self, pid: int) -> None:
        self.samples: list[tuple[float, float]] = []
        self.proc = psutil.Process(pid)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                t = self.proc.cpu_times()
            except psutil.Error:
                return
            self.samples.append((time.time(), t.user + t.system))
            time.sleep(0.5)

    def cpu_at(self, ts: float) -> float:
        wall, cpu = zip(*self.samples, strict=True)
        return float(np.interp(ts, wall, cpu))


def steady(history_csv: Path, watch: CpuWatch) -> tuple[float, float]:
    """(req/s, req per CPU-second) between 4 s after the first request and the last second,
    from Locust's own per-second history: startup and shutdown are left out."""
    hist = pd.read_csv(history_csv)
    agg = hist[(hist["Name"] == "Aggregated") & (hist["Total Request Count"] > 0)]
    start = agg[agg["Timestamp"] >= agg["Timestamp"].iloc[0] + 4].iloc[0]
    end = agg.iloc[-2]
    requests = end["Total Request Count"] - start["Total Request Count"]
    wall = end["Timestamp"] - start["Timestamp"]
    cpu = watch.cpu_at(end["Timestamp"]) - watch.cpu_at(start["Timestamp"])
    return requests / wall, requests / cpu


def run_bare(host: str, locustfile: Path, seconds: int, out: Path) -> tuple[float, float]:
    prefix = out / f"bare-{locustfile.stem}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", host,
         "--users", str(USERS), "--spawn-rate", str(USERS), "--run-time", f"{seconds}s",
         "--only-summary", "--csv", str(prefix), "--csv-full-history",
         "--exit-code-on-error", "0"],
        cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pin(proc.pid, 1)
    watch = CpuWatch(proc.pid)
    proc.wait()
    return steady(Path(f"{prefix}_stats_history.csv"), watch)


def run_paced(host: str, locustfile: Path, rows: list[tuple[float, float]], out: Path,
              label: str) -> tuple[Path, CpuWatch]:
    profile = out / f"{label}.csv"
    profile.write_text("t_s,rps\n" + "".join(f"{t},{r}\n" for t, r in rows))
    run_dir = runfolder.create(out / "reports", label=label)
    handle = start_load(LoadSettings(host=host, profile=profile, locustfile=locustfile,
                                     max_users=USERS, drain_s=2), run_dir)
    pin(handle.main.pid, 1)
    watch = CpuWatch(handle.main.pid)
    handle.wait(timeout=rows[-1][0] + 120)
    return run_dir, watch


def fidelity(run_dir: Path) -> tuple[float, float]:
    """1 - sum|achieved - expected| / sum expected over 1-s bins, and the worst bin (%)."""
    samples = read_samples(run_dir)
    profile = load_profile(run_dir / "profile.csv")
    t0 = samples["intended_ts"].min()
    seconds = int(profile.duration_s)
    achieved = (((samples["ts"] - t0) // 1).astype(int).value_counts()
                .reindex(range(seconds), fill_value=0))
    expected = pd.Series([profile.arrivals_until(s + 1) - profile.arrivals_until(s)
                          for s in range(seconds)])
    err = (achieved.to_numpy() - expected.to_numpy())
    worst = (abs(err) / expected.clip(lower=1)).max() * 100
    return 1 - abs(err).sum() / expected.sum(), float(worst)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        out = Path(tmp)
        (out / "bare.py").write_text(BARE)
        (out / "paced.py").write_text(PACED)
        (out / "bare_http.py").write_text(BARE_HTTP)
        (out / "plain_http.py").write_text(PLAIN_HTTP)
        port_file = out / "port"
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
        try:
            pin(server.pid, 0)
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.05)
            host = f"http://127.0.0.1:{port_file.read_text()}"
            ratios, cpu_ratios, http_ratios = [], [], []
            pairs = [("ArrivalUser file", "bare.py", "paced.py"),
                     ("plain HttpUser file, open model", "bare_http.py", "plain_http.py")]
            for rnd in range(args.rounds):
                for label, bare_file, paced_file in pairs:
                    bare, bare_eff = run_bare(host, out / bare_file, args.seconds, out)
                    target = round(bare * 2)
                    paced_dir, watch = run_paced(host, out / paced_file,
                                                 [(0, target), (args.seconds, target)], out,
                                                 f"max{rnd}-{Path(paced_file).stem}")
                    paced, paced_eff = steady(
                        paced_dir / "locust" / "stats_stats_history.csv", watch)
                    if paced_file == "paced.py":
                        ratios.append(paced / bare)
                        cpu_ratios.append(paced_eff / bare_eff)
                    else:
                        http_ratios.append(paced_eff / bare_eff)
                    print(f"round {rnd + 1}, {label}: bare Locust {bare:.0f} req/s "
                          f"({bare_eff:.0f} per CPU-s), peakready {paced:.0f} req/s "
                          f"({paced_eff:.0f} per CPU-s); ratio {paced / bare:.3f} "
                          f"(per CPU-s {paced_eff / bare_eff:.3f})")
            peak = round(min(bare * 0.5, 1000))
            ramp = [(0, peak * 0.1), (10, peak), (20, peak), (30, peak * 0.2)]
            fid, worst = fidelity(run_paced(host, out / "paced.py", ramp, out, "shape")[0])
            print(f"ratio (peakready / bare), median of {len(ratios)}: "
                  f"{statistics.median(ratios):.3f}  (goal >= 0.85); per CPU-second: "
                  f"{statistics.median(cpu_ratios):.3f}  (goal >= 0.95)")
            print(f"plain HttpUser file open model / bare HttpUser, per CPU-second, median: "
                  f"{statistics.median(http_ratios):.3f}  (goal >= 0.95)")
            print(f"shape fidelity, ramp {ramp[0][1]:.0f}->{peak}->{ramp[-1][1]:.0f} rps over 30 s:"
                  f" {fid * 100:.2f} % of arrivals in their 1-s bin; worst 1-s bin off by "
                  f"{worst:.1f} %")
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
