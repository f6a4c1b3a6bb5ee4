"""Distributed load: 1, 2 and 4 workers, each on its own host (network namespace).

For each N: a minimal keep-alive HTTP responder (so the storefront is not the limit:
the test storefront, tests/load/shop.py, tops out near 300 req/s on this shared machine)
and ``peakready load
--external-workers`` in the master's namespace, N ``peakready worker`` processes in their
own namespaces (own folders; as root, else loopback processes, said so), an open-model
profile of ``--rate-per-worker`` x N requests per second for ``--seconds``. Measured over
the run window (from the master's "started" in workers.json to its "ended": Locust's
start-up imports are not counted) with psutil:

- aggregate requests (samples in the run folder, equal to the storefront's count),
- requests per worker CPU-second, and that relative to one worker (scaling efficiency:
  N workers with N cores give efficiency x N times one worker's rate),
- the master's CPU-seconds per 1,000 samples gathered (so its share of a core at 1,000
  samples/s), and the extrapolated samples/s at which the master would use a whole core.

Run as root: ``.venv/bin/python benchmarks/bench_distributed.py [--seconds 12]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "load"))

from loadkit import Shop, stop_shop, write_profile  # noqa: E402
from testhosts import hosts  # noqa: E402

from peakready import runfolder  # noqa: E402
from peakready.load.summary import read_samples  # noqa: E402

LOCUSTFILE = """
from locust import task
from peakready.load.openmodel import ArrivalUser


class Hit(ArrivalUser):
    think_time = 0.0

    @task
    def product(self):
        self.client.get("/api/products/SKU-00001", name="/api/products/[sku]")  # any path
"""


def serve(bind: str) -> None:
    """Answers every request with the same 200 at once; ``/_admin/stats`` counts them
    (the pre-flight ``/health`` check is one of them)."""
    from gevent.server import StreamServer

    body = b'{"ok": true}'
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)
    served = [0]

    def handle(sock, _addr):
        buf = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            n = buf.count(b"\r\n\r\n")
            if not n:
                continue
            if b"/_admin/stats" in buf:
                stats = json.dumps({"requests": served[0]}).encode()
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(stats)).encode()
                             + b"\r\nConnection: close\r\n\r\n" + stats)
                return
            served[0] += n
            sock.sendall(reply * n)
            buf = buf[buf.rfind(b"\r\n\r\n") + 4:]

    server = StreamServer((bind, 0), handle)
    server.init_socket()
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


def start_responder(bind: str, prefix: list[str]) -> Shop:
    proc = subprocess.Popen([*prefix, sys.executable, __file__, "--serve", bind],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"responder did not start: {line!r}")
    return Shop(f"http://{bind}:{int(line.split()[1])}", proc)


def _cpu(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return float("nan")


def _locust_master(cli: subprocess.Popen) -> psutil.Process | None:
    try:
        for child in psutil.Process(cli.pid).children(recursive=True):
            if "--master" in child.cmdline():
                return child
    except psutil.Error:
        return None
    return None


def run_once(n: int, rate: float, seconds: float, work: Path) -> dict:
    work.mkdir(parents=True)
    (work / "lf").mkdir()
    (work / "lf" / "bench.py").write_text(LOCUSTFILE)
    profile = write_profile(work / "p.csv", [(0, rate * n), (seconds, rate * n)])
    with hosts(n) as h:
        shop = start_responder(h.master_ip, h.prefix("master"))
        procs: list[subprocess.Popen] = []
        try:
            port = 5557 if h.isolated else 5600 + n
            cli = subprocess.Popen(
                [*h.prefix("master"), sys.executable, "-m", "peakready.cli", "load",
                 "--profile", str(profile), "--host", shop.url, "--workers", str(n),
                 "--external-workers", "--master-bind", f"{h.master_ip}:{port}",
                 "--locustfile", str(work / "lf" / "bench.py"), "--max-users", "500",
                 "--reports-dir", str(work / "reports")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work)
            procs.append(cli)
            for i in range(n):
                (work / f"w{i}").mkdir()
                procs.append(subprocess.Popen(
                    [*h.prefix(f"w{i}"), sys.executable, "-m", "peakready.cli", "worker",
                     "--master", f"{h.master_ip}:{port}", "--workdir", str(work / f"w{i}"),
                     "--name", f"bench-w{i}"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            workers = [psutil.Process(p.pid) for p in procs[1:]]
            start = end = None
            master = None
            run_dir = None
            while cli.poll() is None:
                time.sleep(0.2)
                run_dir = run_dir or next((work / "reports").glob("*/"), None)
                master = master or _locust_master(cli)
                status = runfolder.read_json(run_dir / runfolder.WORKERS_STATUS) if run_dir else None
                if status and status.get("started") and start is None and master:
                    start = (time.time(), _cpu(master), [_cpu(w) for w in workers])
                if status and status.get("ended") and end is None and master:
                    end = (time.time(), _cpu(master), [_cpu(w) for w in workers])
                elif start is not None and end is None and master:
                    last = (time.time(), _cpu(master), [_cpu(w) for w in workers])
            end = end or last
            _out, err = cli.communicate(timeout=120)
            served = h.get_json(shop.url + "/_admin/stats")["requests"] - 1  # /health
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            stop_shop(shop)
    if cli.returncode != 0:
        raise SystemExit(f"N={n}: load failed: {err.strip().splitlines()[-1:]}")
    frame = read_samples(run_dir)
    samples = len(frame)
    load = runfolder.read_run_json(run_dir).get("load") or {}
    lag = (frame["ts"] - frame["intended_ts"]).quantile(0.99) if samples else float("nan")
    worker_cpu = sum(b - a for a, b in zip(start[2], end[2], strict=True))
    master_cpu = end[1] - start[1]
    wall = end[0] - start[0]
    return {"workers": n, "hosts": h.reason, "target_rps": rate * n, "samples": samples,
            "served": served, "wall_s": round(wall, 1),
            "rate": round(samples / wall, 1),
            "req_per_worker_cpu_s": round(samples / worker_cpu, 1),
            "master_cpu_s": round(master_cpu, 2),
            "master_cpu_s_per_1000": round(master_cpu / samples * 1000, 4),
            "scheduled": round(rate * n * seconds), "user_cap_hit": load.get("user_cap_hit"),
            "p50_rt_ms": round(float(frame["rt_ms"].median()), 1) if samples else None,
            "p99_start_lag_s": round(float(lag), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rate-per-worker", type=float, default=150.0)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--serve", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        for n in (int(x) for x in args.workers.split(",")):
            rows.append(run_once(n, args.rate_per_worker, args.seconds, Path(tmp) / f"n{n}"))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["req_per_worker_cpu_s"]
    print("\n| workers | target rps | samples (= served) of scheduled | rate | "
          "req per worker CPU-s | efficiency vs 1 | master CPU-s per 1,000 samples | "
          "p50 rt ms | p99 start lag s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['target_rps']:g} | {r['samples']} (= {r['served']}) of "
              f"{r['scheduled']} | {r['rate']} | {r['req_per_worker_cpu_s']} | "
              f"{r['req_per_worker_cpu_s'] / base:.2f} | {r['master_cpu_s_per_1000']} | "
              f"{r['p50_rt_ms']} | {r['p99_start_lag_s']} |")
    first, last = rows[0], rows[-1]
    if last["samples"] > first["samples"]:
        marginal = ((last["master_cpu_s"] - first["master_cpu_s"])
                    / (last["samples"] - first["samples"]) * 1000)
        print(f"master, marginal: {marginal:.4f} CPU-s per 1,000 more samples "
              f"(N={first['workers']} -> N={last['workers']})")
    per_1000 = max(r["master_cpu_s_per_1000"] for r in rows)
    print(f"\nmaster: {per_1000:.3f} CPU-s per 1,000 samples (worst N) -> one core gathers "
          f"~{1000 / per_1000:,.0f} samples/s (extrapolated, linear); hosts: {rows[0]['hosts']}")


if __name__ == "__main__":
    main()
