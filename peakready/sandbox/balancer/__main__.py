"""Balancer process: the listener (storefront URL) and a loopback admin API on another
port that the sandbox daemon (and through it the control plane) drives."""

from __future__ import annotations

import argparse
import asyncio
import json
import re

from peakready.errors import BadInput
from peakready.sandbox import http11, serve
from peakready.sandbox.balancer.core import Balancer, Settings

TARGET_PATH = re.compile(r"^/targets/([^/]+)$")


def admin_handler(lb: Balancer):
    async def handle(req: http11.Request) -> bytes:
        path, method = req.path, req.method
        try:
            if path == "/targets" and method == "GET":
                return http11.json_response(200, {"targets": lb.describe_targets()})
            if path == "/targets" and method == "POST":
                body = req.json() or {}
                return http11.json_response(
                    200, lb.register(str(body["id"]), body.get("host", "127.0.0.1"),
                                     int(body["port"])))
            if (m := TARGET_PATH.match(path)) and method == "DELETE":
                found = lb.deregister(m.group(1))
                if found is None:
                    return http11.json_response(404, {"error": f"no target {m.group(1)}"})
                return http11.json_response(200, found)
            if path == "/waf" and method == "PUT":
                return http11.json_response(200, lb.waf.configure(req.json() or {}))
            if path == "/waf" and method == "GET":
                return http11.json_response(200, lb.waf.status())
            if path == "/settings" and method == "PUT":  # target group attributes
                body = req.json() or {}
                if "deregistration_delay_s" in body:
                    delay = float(body["deregistration_delay_s"])
                    if not 0 <= delay <= 3600:
                        raise ValueError("deregistration_delay_s must be 0..3600")
                    lb.s.deregistration_delay_s = delay
                return http11.json_response(200, {"deregistration_delay_s":
                                                  lb.s.deregistration_delay_s})
            if path == "/stats/take" and method == "POST":
                return http11.json_response(200, lb.take())
            if path == "/status" and method == "GET":
                healthy, unhealthy = lb.health_counts()
                return http11.json_response(200, {
                    "name": lb.name, "port": lb.port, "targets": len(lb.targets),
                    "healthy": healthy, "unhealthy": unhealthy,
                    "active_connections": lb.active_connections})
            return http11.json_response(404, {"error": f"no admin route {method} {path}"})
        except (KeyError, ValueError, TypeError, BadInput) as exc:
            return http11.json_response(400, {"error": f"bad request: {exc}"})

    return handle


async def main(args: argparse.Namespace) -> None:
    timing = json.loads(args.timing)
    settings = Settings(**{k: v for k, v in timing.items() if k in Settings.__dataclass_fields__})
    lb = Balancer(settings, args.name, args.access_log, args.waf_log)
    sock = serve.listening_socket(args.fd, args.port)
    lb.port = sock.getsockname()[1]
    listener = await asyncio.start_server(lb.on_client, sock=sock, backlog=4096)
    admin = await asyncio.start_server(
        serve.connection_handler(admin_handler(lb)),
        sock=serve.listening_socket(args.admin_fd, args.admin_port))

    async def flush() -> None:
        while True:
            await asyncio.sleep(1.0)
            lb.flush_log()
            lb.waf.flush_log()

    flusher = asyncio.create_task(flush())

    async def shutdown() -> None:
        listener.close()
        admin.close()
        flusher.cancel()
        lb.flush_log()
        lb.waf.flush_log()

    await serve.run_until_stopped([shutdown])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="peakready-balancer")
    p.add_argument("--name", default="peakready-alb")
    p.add_argument("--fd", type=int)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--admin-fd", type=int)
    p.add_argument("--admin-port", type=int, default=0)
    p.add_argument("--timing", default="{}", help="JSON with Settings fields")
    p.add_argument("--access-log")
    p.add_argument("--waf-log", help="WAF log records (JSON lines) of blocked/counted requests")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
