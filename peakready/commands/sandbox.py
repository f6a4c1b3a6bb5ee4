"""``peakready sandbox up | down | status [--json] | env``: the local stack on its own."""

from __future__ import annotations

import argparse
import json
import sys
import time

from peakready.sandbox import shellenv

DEFAULT_LB_PORT = 8080


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sandbox", help="start/stop/inspect the local sandbox (storefront, ALB, PostgreSQL, "
        "Redis, AWS endpoint on 127.0.0.1)")
    parser.add_argument("action", choices=["up", "down", "status", "env"],
                        help="env: the exports a shell needs to point chaos/boto3/aws at the "
                        "sandbox (eval \"$(peakready sandbox env)\")")
    parser.add_argument("--state-dir", help="state folder (default: $PEAKREADY_SANDBOX_DIR, "
                        "else .peakready/sandbox)")
    parser.add_argument("--instances", type=int, default=2,
                        help="storefront instances when no control plane manages the web "
                        "tier (default 2)")
    parser.add_argument("--port", type=int, default=DEFAULT_LB_PORT,
                        help="storefront (balancer) port; a free one if taken (default 8080)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from peakready import sandbox

    if args.action == "up":
        t0 = time.monotonic()
        st = sandbox.start(args.state_dir, instances=args.instances, lb_port=args.port)
        took = time.monotonic() - t0
        if args.json:
            print(json.dumps(st, indent=2))
        elif st.get("already_running"):
            print(f"sandbox already running (pid {st.get('pid')})")
            print(render(st))
        else:
            print(f"sandbox ready in {took:.1f} s")
            print(render(st))
        return 0
    if args.action == "down":
        stopped = sandbox.stop(args.state_dir)
        print("sandbox stopped" if stopped else "no sandbox running")
        return 0
    st = sandbox.status(args.state_dir)
    if args.action == "env":
        if st.get("state") != "running":
            print(f"no sandbox running in {st.get('state_dir')}: start one with "
                  f"`peakready sandbox up`", file=sys.stderr)
            return 1
        print(shellenv.render(st))
        return 0
    print(json.dumps(st, indent=2) if args.json else render(st))
    return 0 if st.get("state") == "running" else 1


def render(st: dict) -> str:
    """Human-readable status: where everything is."""
    if st.get("state") != "running":
        extra = f": {st['error']}" if st.get("error") else ""
        return f"sandbox {st.get('state', 'stopped')} ({st.get('state_dir')}){extra}"
    lines = [f"storefront  {st['storefront_url']}"]
    if st.get("note"):
        lines.append(f"note        {st['note']}")
    aws = st.get("aws")
    if aws:
        lines.append(f"aws         {aws.get('endpoint_url')} ({aws.get('region')})")
    lines.append(f"state       {st['state_dir']} (daemon pid {st['pid']})")
    lines.append("")
    lines.append(f"{'KIND':<13}{'NAME':<26}{'ROLE':<9}{'HEALTH':<11}{'PID':>8}{'PORT':>7}  BUSY")
    for c in st.get("components", []):
        busy = f"{100 * c['busy']:.0f}%" if c.get("kind") == "storefront" else ""
        lines.append(f"{c['kind']:<13}{c['name']:<26}{c.get('role', ''):<9}"
                     f"{c.get('health', ''):<11}{c.get('pid') or '-':>8}{c.get('port') or '-':>7}"
                     f"  {busy}")
    return "\n".join(lines)
