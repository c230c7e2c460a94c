"""Screenshots of each role's home page on a desktop (1366×900) and a phone (390×844), for the README.

Usage: python tools/screenshots.py [BASE_URL] [OUT_DIR]   (defaults: http://127.0.0.1:5000 docs/screenshots)
Run it against a site seeded with `marketplace seed-demo` (e.g. `make run`). Needs Chromium at /usr/bin/chromium.
The pictures are the visible screen (not the whole page), in 256 colours, so they stay small.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "tanhui-demo-2026"  # noqa: S105 — the demo's published password
HOMES = [("public", None, "/"), ("bureau", "bureau@lishui.example", "/bureau/"),
         ("seller", "guanpuyang@lishui.example", "/sellers/"), ("buyer", "summit@lishui.example", "/buyers/")]
WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def small_png(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main(base: str = "http://127.0.0.1:5000", out_dir: str = "docs/screenshots") -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for role, email, path in HOMES:
            for name, viewport in WIDTHS.items():
                context = browser.new_context(locale="zh-CN", viewport=viewport)
                page = context.new_page()
                if email:
                    page.goto(f"{base}/login")
                    page.get_by_label("电子邮箱").fill(email)
                    page.get_by_label("密码").fill(PASSWORD)
                    page.get_by_label("密码").press("Enter")
                    page.wait_for_url(lambda url: "/login" not in url)
                page.goto(base + path, wait_until="load")
                target = out / f"{role}-home-{name}.png"
                target.write_bytes(small_png(page.screenshot()))
                print(target, target.stat().st_size, "bytes")
                context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
