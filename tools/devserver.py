"""`make run`: the web server, a Celery worker, beat and the Stripe emulator, all on 127.0.0.1.

Ctrl-C (or SIGTERM) stops them all. Each process's output is prefixed with its name.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def stream(name: str, proc: subprocess.Popen) -> None:
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.write(f"[{name:<6}] {line.decode(errors='replace')}")
        sys.stdout.flush()


def wait_http(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
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
    args = parser.parse_args()

    base = f"http://127.0.0.1:{args.port}"
    stripe = f"http://127.0.0.1:{args.stripe_port}"
    env = {
        **os.environ,
        "TANHUI_ENV": os.environ.get("TANHUI_ENV", "development"),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", stripe),
        "STRIPE_JS_URL": os.environ.get("STRIPE_JS_URL", f"{stripe}/js.stripe.com/v3/"),
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", base),
        "PYTHONUNBUFFERED": "1",
    }
    webhook_secret = env.get("STRIPE_WEBHOOK_SECRET", "whsec_tanhui_local")
    commands = {
        "stripe": [sys.executable, str(ROOT / "tools/stripe_emulator.py"), "--port", str(args.stripe_port),
                   "--webhook-url", f"{base}/webhooks/stripe", "--webhook-secret", webhook_secret],
        "web": [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{args.port}", "--workers", "2", "--threads", "4",
                "--access-logfile", "-", "marketplace.wsgi:app"],
        "worker": [str(BIN / "celery"), "-A", "workers.celery_app", "worker", "--loglevel=INFO",
                   "--concurrency=2"],
        "beat": [str(BIN / "celery"), "-A", "workers.celery_app", "beat", "--loglevel=INFO"],
    }
    procs: dict[str, subprocess.Popen] = {}
    for name, cmd in commands.items():
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,  # noqa: S603
                                       stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=stream, args=(name, procs[name]), daemon=True).start()

    def stop(*_args):
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        if wait_http(f"{base}/healthz"):
            from marketplace.demo.service import DEMO_PASSWORD, demo_logins

            print("\n  Tanhui 碳汇 is running:", base)
            print(f"  Stripe emulator: {stripe}   (test card 4242 4242 4242 4242)")
            print(f"  Demo logins (password {DEMO_PASSWORD}):")
            for kind, email, name in demo_logins():
                print(f"    {kind:<7} {email:<28} {name}")
            print("  Ctrl-C stops everything.\n", flush=True)
        while all(proc.poll() is None for proc in procs.values()):
            time.sleep(0.5)
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
