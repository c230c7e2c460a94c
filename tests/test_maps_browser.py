"""The maps in a real (headless) browser, on the demo data: the public registry (counties shaded, projects as
points that open the project), a project's parcels, and the bureau dashboard's retired tonnes by county.
Each map draws with no console error (CSP violations included) and shows exactly the figures of the table
beside it; nothing is fetched from another host."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from marketplace.extensions import db
from tests.conftest import free_port

pytestmark = [pytest.mark.browser]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001
            from tests.conftest import service_missing

            service_missing("Chromium", str(exc))
        yield instance
        instance.close()


@pytest.fixture
def demo_site(make_app):
    """The demo data behind a live server on a free port. Returns (app, base_url)."""
    from marketplace.demo import service as demo

    port = free_port()
    app = make_app(SERVER_NAME=f"127.0.0.1:{port}", PREFERRED_URL_SCHEME="http")
    with app.app_context():
        demo.seed_demo(db.session)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console_errors, page.foreign_requests = [], []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))
    page.on("request", lambda request: "127.0.0.1" not in request.url and not request.url.startswith("data:")
            and page.foreign_requests.append(request.url))
    yield page
    context.close()


def drawn_and_table(page, map_id: str, table_selector: str) -> tuple[dict, dict]:
    """What the map drew (name → exact figure) and what its table says (name → figure), as Decimals."""
    page.wait_for_selector(f"#{map_id}[data-drawn]")
    drawn = json.loads(page.get_attribute(f"#{map_id}", "data-drawn"))
    rows = page.evaluate("""(selector) => [...document.querySelectorAll(selector + ' tbody tr')]
        .map(tr => [tr.querySelector('[data-name]').innerText.trim(), tr.querySelector('[data-value]').innerText.trim()])""",
                         table_selector)
    table = {name: Decimal(value.replace(",", "")) for name, value in rows}
    return {name: Decimal(value) for name, value in drawn.items()}, table


def test_maps_draw_offline_without_console_errors_and_say_what_their_tables_say(demo_site, page):
    from marketplace.registry.models import Project

    app, base = demo_site
    with app.app_context():
        guanpuyang = db.session.scalar(sa.select(Project).where(Project.name == "官埔垟村森林经营碳汇项目"))

    # The public registry: nine counties shaded, the table the same; the projects are points.
    page.goto(f"{base}/registry/")
    drawn, table = drawn_and_table(page, "registry-map", "table[data-table=registry-map]")
    assert len(table) == 9 and drawn == table
    assert table["龙泉市"] > 0
    # A click on Guanpuyang's point opens its page.
    point = page.evaluate("""(name) => {
        const el = document.getElementById('registry-map');
        const chart = echarts.getInstanceByDom(el);
        const scatter = chart.getOption().series.find(s => s.type === 'scatter');
        const item = scatter.data.find(d => d.name === name);
        const xy = chart.convertToPixel({geoIndex: 0}, item.value.slice(0, 2));
        const box = el.getBoundingClientRect();
        return [box.left + xy[0], box.top + xy[1]];
    }""", guanpuyang.name)
    page.mouse.click(point[0], point[1])
    page.wait_for_url(f"**/registry/projects/{guanpuyang.id}")

    # The project page: its parcels, each with its measured area, as in the table.
    drawn, table = drawn_and_table(page, "project-parcels", "table[data-table=parcels]")
    assert len(table) == 16 and drawn == table

    # The bureau dashboard: retired tonnes by county.
    page.goto(f"{base}/login")
    page.get_by_label("电子邮箱").fill("bureau@lishui.example")
    from marketplace.demo.people import DEMO_PASSWORD

    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{base}/bureau/dashboard")
    drawn, table = drawn_and_table(page, "retired-map", "table[data-table=retired-map]")
    assert len(table) == 9 and drawn == table
    assert table["龙泉市"] >= Decimal("175.402")

    # At 390 px the maps still draw, above their tables.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/registry/")
    page.wait_for_selector("#registry-map[data-drawn]")
    # (The page itself is wider than 390 px because of the older tables below; the map section is not.)
    overflowing = page.evaluate("""() => [...document.querySelectorAll('.chart-layout, .chart-layout > *')]
        .filter(el => el.getBoundingClientRect().right > 391).map(el => el.className)""")
    assert overflowing == []

    assert page.console_errors == []
    assert page.foreign_requests == []
