"""Entry point of one storefront instance process."""

from __future__ import annotations

import argparse
import asyncio
import json

from peakready.sandbox import serve
from peakready.sandbox.storefront.app import Storefront
from peakready.sandbox.storefront.config import from_dict


def _nodes(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        host, _, port = item.rpartition(":")
        out.append((host, int(port)))
    return out


async def main(args: argparse.Namespace) -> None:
    app = Storefront(args.instance_id, from_dict(json.loads(args.config)), _nodes(args.db),
                     _nodes(args.redis), args.boot_delay, args.launched_at, args.search)
    sock = serve.listening_socket(args.fd, args.port)
    server = await asyncio.start_server(serve.connection_handler(app.handle), sock=sock,
                                        backlog=1024)

    async def sample() -> None:
        while True:
            app.pool.sample()
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())

    async def shutdown() -> None:
        server.close()
        sampler.cancel()
        await app.close()

    await serve.run_until_stopped([shutdown])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="peakready-storefront")
    p.add_argument("--instance-id", required=True)
    p.add_argument("--fd", type=int, help="inherited listening socket")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--db", required=True, help="host:port,host:port of the PostgreSQL nodes")
    p.add_argument("--redis", required=True, help="host:port,host:port of the Redis nodes")
    p.add_argument("--search", default="", help="URL of the search domain endpoint")
    p.add_argument("--boot-delay", type=float, default=0.0)
    p.add_argument("--launched-at", type=float, default=None)
    p.add_argument("--config", default="{}", help="storefront config JSON")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
