"""`make run`: once the web server answers, print where it is and the demo logins.

Started in the background beside `honcho start` (which runs the Procfile); it exits after printing, when
the process that started it is gone (Ctrl-C stopped honcho), or after --wait seconds.

Usage: python tools/demo_banner.py --port 5000 --stripe-port 8420
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request

from marketplace.demo.service import DEMO_PASSWORD, demo_logins


def wait_http(url: str, seconds: float) -> bool:
    parent = os.getppid()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and os.getppid() == parent:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 — loopback only
                return True
        except Exception:  # noqa: BLE001
            time.sleep(0.3)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--stripe-port", type=int, default=8420)
    parser.add_argument("--wait", type=float, default=60)
    args = parser.parse_args()

    base = f"http://127.0.0.1:{args.port}"
    if not wait_http(f"{base}/healthz", args.wait):
        return 1
    print("\n  Tanhui 碳汇 is running:", base)
    print(f"  Stripe emulator: http://127.0.0.1:{args.stripe_port}   (test card 4242 4242 4242 4242)")
    print(f"  Demo logins (password {DEMO_PASSWORD}):")
    for kind, email, name in demo_logins():
        print(f"    {kind:<7} {email:<28} {name}")
    print("  The bureau login sets up two-step sign-in (any authenticator app) on its first sign-in;")
    print("  TWO_STEP_REQUIRED_ROLES= make run skips that.")
    print("  Ctrl-C stops everything.\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
