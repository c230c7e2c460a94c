"""Run localstripe (the Stripe emulator) on 127.0.0.1 only, in memory, and register our webhook.

localstripe's own launcher listens on every interface and pickles its state to a shared file in
/tmp; this one binds to loopback and keeps nothing on disk, so several instances never collide.

Usage: python tools/stripe_emulator.py --port 8420 [--webhook-url URL --webhook-secret SECRET]
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    args = parser.parse_args()

    resources.store.dump_to_disk = lambda: None  # in memory only
    logging.basicConfig(level=logging.WARNING)

    app = server.app
    if args.webhook_url:
        async def register(_app):
            import aiohttp

            async def later():
                await asyncio.sleep(0.3)
                async with aiohttp.ClientSession() as session:
                    await session.post(f"http://{args.host}:{args.port}/_config/webhooks/tanhui",
                                       data={"url": args.webhook_url, "secret": args.webhook_secret or ""})
            asyncio.get_event_loop().create_task(later())
        app.on_startup.append(register)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
