"""The sandbox balancer's CPU per proxied request with and without the default Web ACL,
and what the Web ACL adds to the sandbox's start.

One real sandbox (default timing). CPU is the balancer process's own (utime + stime from
/proc), over the same shopper request mix sent through its listener, alternating runs
with the Web ACL associated and after ``disassociate_web_acl`` (the control plane then
takes it off the balancer), so machine noise hits both alike. The start: the sandbox's
``ready_s``, and the two WAF steps of the boot timed on their own (the control plane's
create + associate calls; the balancer compiling the ACL and its detection engine).

    .venv/bin/python benchmarks/bench_waf_balancer.py [--requests 2000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))
from journeys import load_catalog  # noqa: E402

from peakready import sandbox  # noqa: E402
from peakready.waf import corpus, defaults  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def admin(port: int, method: str, path: str, body: dict | None = None) -> tuple[dict, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"})
    data = json.loads(conn.getresponse().read() or b"{}")
    conn.close()
    return data, time.perf_counter() - t0


def paths(n: int) -> list[tuple[str, str, bytes | None]]:
    cat = load_catalog()
    out = []
    for i in range(n):
        k = i % 4
        if k == 0:
            out.append(("GET", f"/api/search?q={quote(cat.search_terms[i % len(cat.search_terms)])}",
                        None))
        elif k == 1:
            out.append(("GET", f"/api/products?category={cat.categories[i % len(cat.categories)]}",
                        None))
        elif k == 2:
            out.append(("GET", f"/api/products/{cat.skus[i % len(cat.skus)]}", None))
        else:
            out.append(("POST", "/api/cart/items", b'{"sku": "SKU-00012", "qty": 1}'))
    return out


def send(port: int, work: list, threads: int = 4) -> int:
    """Every request of ``work`` through the balancer (keep-alive, ``threads`` clients);
    returns how many were answered."""
    done = [0] * threads

    def client(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i, (method, path, body) in enumerate(work[t::threads]):
            headers = {"User-Agent": corpus.BROWSER_UA, "Content-Type": "application/json",
                       "X-Forwarded-For": f"198.18.{t}.{i % 250 + 1}"}
            try:
                conn.request(method, path, body, headers)
                conn.getresponse().read()
                done[t] += 1
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()

    pool = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return sum(done)


def wait_waf(port: int, on: bool, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if bool(admin(port, "GET", "/waf")[0].get("web_acl")) == on:
            return
        time.sleep(0.05)
    raise SystemExit(f"the balancer's Web ACL did not turn {'on' if on else 'off'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="peakready-bench-waf-"))
    t0 = time.perf_counter()
    with sandbox.running(state) as status:
        start_wall = time.perf_counter() - t0
        lb = next(c for c in status["components"] if c["kind"] == "loadbalancer")
        aws = status["aws"]
        kw = {"endpoint_url": aws["endpoint_url"], "region_name": aws["region"],
              "aws_access_key_id": aws["access_key_id"],
              "aws_secret_access_key": aws["secret_access_key"]}
        wafv2, elbv2 = boto3.client("wafv2", **kw), boto3.client("elbv2", **kw)
        lb_arn = elbv2.describe_load_balancers(Names=["peakready-alb"])[
            "LoadBalancers"][0]["LoadBalancerArn"]
        acl_arn = wafv2.get_web_acl_for_resource(ResourceArn=lb_arn)["WebACL"]["ARN"]
        work = paths(args.requests)
        send(lb["port"], work[:400])  # warm both sides (connections, caches)
        cpu: dict[str, list[float]] = {"with": [], "without": []}
        on = True  # the default Web ACL is associated at boot
        for _ in range(args.rounds):
            for mode in ("with", "without"):
                # moto appends on every associate (AWS replaces): only toggle
                if mode == "with" and not on:
                    wafv2.associate_web_acl(WebACLArn=acl_arn, ResourceArn=lb_arn)
                elif mode == "without" and on:
                    wafv2.disassociate_web_acl(ResourceArn=lb_arn)
                on = mode == "with"
                wait_waf(lb["admin_port"], mode == "with")
                c0 = proc_cpu_s(lb["pid"])
                answered = send(lb["port"], work)
                cpu[mode].append((proc_cpu_s(lb["pid"]) - c0) / answered * 1000)
        waf_status = admin(lb["admin_port"], "GET", "/waf")[0]

        # the WAF steps of the boot, on their own: control-plane calls, balancer compile
        acl = defaults.default_acl()
        acl["Name"] = "bench-web-acl"
        c0 = time.perf_counter()
        created = wafv2.create_web_acl(Scope="REGIONAL", **acl)["Summary"]
        wafv2.associate_web_acl(WebACLArn=created["ARN"], ResourceArn=lb_arn)
        api_s = time.perf_counter() - c0
        _, compile_s = admin(lb["admin_port"], "PUT", "/waf", {"web_acl": acl})
    with_ms, without_ms = min(cpu["with"]), min(cpu["without"])
    print(f"sandbox start: {start_wall:.1f} s wall (ready_s {status.get('ready_s')}); WAF steps "
          f"of it: create+associate {api_s * 1000:.0f} ms, balancer compile {compile_s * 1000:.0f}"
          f" ms (engine {waf_status.get('engine')})")
    print(f"balancer CPU per proxied request (min of {args.rounds} x {args.requests}): with the "
          f"default Web ACL {with_ms:.3f} ms, without {without_ms:.3f} ms, ratio "
          f"{with_ms / without_ms:.2f}, WAF adds {with_ms - without_ms:.3f} ms; all rounds "
          f"with {[round(x, 3) for x in cpu['with']]} without "
          f"{[round(x, 3) for x in cpu['without']]}; WAF thread CPU per evaluated request "
          f"{waf_status.get('cpu_ms_per_request')} ms")


if __name__ == "__main__":
    main()
