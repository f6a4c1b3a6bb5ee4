"""Distributed load: 1, 2 and 4 workers, each on its own host (network namespace).

For each N: the test storefront (tests/load/shop.py) and ``peakready load
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

from loadkit import start_shop, stop_shop, write_profile  # noqa: E402
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
        self.client.get("/api/products/SKU-00001", name="/api/products/[sku]")
"""


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
        shop = start_shop(h.master_ip, h.prefix("master"))
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
            served = h.get_json(shop.url + "/_admin/stats")["requests"]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            stop_shop(shop)
    if cli.returncode != 0:
        raise SystemExit(f"N={n}: load failed: {err.strip().splitlines()[-1:]}")
    samples = len(read_samples(run_dir))
    worker_cpu = sum(b - a for a, b in zip(start[2], end[2], strict=True))
    master_cpu = end[1] - start[1]
    wall = end[0] - start[0]
    return {"workers": n, "hosts": h.reason, "target_rps": rate * n, "samples": samples,
            "served": served, "wall_s": round(wall, 1),
            "rate": round(samples / wall, 1),
            "req_per_worker_cpu_s": round(samples / worker_cpu, 1),
            "master_cpu_s": round(master_cpu, 2),
            "master_cpu_s_per_1000": round(master_cpu / samples * 1000, 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rate-per-worker", type=float, default=150.0)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        for n in (int(x) for x in args.workers.split(",")):
            rows.append(run_once(n, args.rate_per_worker, args.seconds, Path(tmp) / f"n{n}"))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["req_per_worker_cpu_s"]
    print("\n| workers | target rps | samples (= served) | rate | req per worker CPU-s | "
          "efficiency vs 1 | master CPU-s per 1,000 samples |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['target_rps']:g} | {r['samples']} (= {r['served']}) | "
              f"{r['rate']} | {r['req_per_worker_cpu_s']} | "
              f"{r['req_per_worker_cpu_s'] / base:.2f} | {r['master_cpu_s_per_1000']} |")
    per_1000 = max(r["master_cpu_s_per_1000"] for r in rows)
    print(f"\nmaster: {per_1000:.3f} CPU-s per 1,000 samples (worst N) -> one core gathers "
          f"~{1000 / per_1000:,.0f} samples/s (extrapolated, linear); hosts: {rows[0]['hosts']}")


if __name__ == "__main__":
    main()
