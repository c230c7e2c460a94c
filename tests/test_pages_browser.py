"""Every page of every role, on a desktop and on a phone, in a real (headless) browser.

The pages are enumerated from the application's URL map: every GET route without arguments is visited by
the public and by each role (a route that answers 403 or sends the visitor to sign in is not that role's
page), and every route with arguments by the concrete URLs of the demo data listed in ``concrete_urls``.
A new page is therefore either visited or reported ("no concrete URL for …"), never silently left out.

Each page, at 1366×900 and 390×844, must: not scroll sideways (wide tables scroll inside their own
container), log no console error (a CSP violation is one), lose no request, and have no serious or
critical axe-core violation, and every table must have a caption. axe-core comes from npm (node_modules/axe-core) and is evaluated through the
DevTools protocol, which the page's CSP does not govern, so the page keeps its real policy.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from marketplace.accounts import service as accounts
from marketplace.accounts.models import Organisation, User
from marketplace.certificates.models import Certificate
from marketplace.core.i18n import local_time
from marketplace.demo import service as demo
from marketplace.demo.people import DEMO_PASSWORD
from marketplace.extensions import db
from marketplace.footprint.models import Event
from marketplace.neutrality.models import Declaration, NeutralityPlan
from marketplace.orders.models import Order
from marketplace.registry.models import Project
from marketplace.settlement.models import Distribution, Payout
from tests.conftest import free_port

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LOGINS = {"bureau": "bureau@lishui.example", "seller": "guanpuyang@lishui.example",
          "buyer": "summit@lishui.example", "evaluator": "evaluator@lishui.example",
          "operator": "operator@lishui.example"}
TIMEOUT_MS = 15_000

#: GET routes that are not pages a person reads (files, JSON, redirects), with why.
NOT_PAGES = {
    "static": "files",
    "public.health": "JSON health check",
    "orders.status": "JSON status poll of the order page",
    "events.event_report_pdf": "PDF download",
    "events.activity_template": "XLSX download",
    "certificates.download_pdf": "PDF download",
    "registry_bureau.document": "uploaded PDF download",
    "registry_sellers.document": "uploaded PDF download",
    "dashboards.bureau_export": "CSV/XLSX download",
    "dashboards.buyer_export": "CSV/XLSX download",
    "dashboards.seller_export": "CSV/XLSX download",
    "neutrality.declaration_pdf": "PDF download",
    "neutrality.organiser_evidence": "uploaded PDF download (a reduction's evidence)",
    "neutrality.evaluator_evidence": "uploaded PDF download (a reduction's evidence)",
    "neutrality.public_evidence": "uploaded PDF download (a reduction's evidence)",
    "certificates.public_pdf": "PDF download",
    "settlement_bureau.batch_xlsx": "XLSX download",
    "registry_parcels.export_geojson": "GeoJSON download",
    "registry_parcels.export_shapefile": "Shapefile (zip) download",
    "settlement_buyers.fapiao_pdf": "PDF download",
    "settlement_buyers.payment_notice": "PDF download",
    "settlement_buyers.receipt": "PDF download",
    "settlement_sellers.distribution_pdf": "PDF download",
    "settlement_sellers.distribution_xlsx": "XLSX download",
}


def _is_page(endpoint: str) -> bool:
    return endpoint not in NOT_PAGES and not endpoint.startswith(("api", "api-docs"))


def concrete_urls(session) -> dict[str, dict[str, list[str]]]:
    """For each route with arguments: who visits it (public or a role) and at which URLs, from the demo."""
    summit = session.scalar(sa.select(Organisation).where(Organisation.name == "第十届“智汇丽水”人才科技峰会组委会"))
    seller = session.scalar(sa.select(User).where(User.email == LOGINS["seller"])).organisation
    project = session.scalar(sa.select(Project).where(Project.seller_organisation_id == seller.id).order_by(Project.id))
    event = session.scalar(sa.select(Event).where(Event.organisation_id == summit.id))
    order = session.scalar(sa.select(Order).where(Order.buyer_organisation_id == summit.id))
    certificate = session.scalar(sa.select(Certificate).where(Certificate.order_id == order.id))
    # The summit's plan (third-party evaluation): its organiser's, its evaluator's and the public pages.
    neutral = session.scalar(sa.select(NeutralityPlan).where(NeutralityPlan.evaluation == "third_party"))
    declared = session.scalars(sa.select(Declaration.number).order_by(Declaration.number)).all()
    payout = session.scalar(sa.select(Payout).where(Payout.seller_organisation_id == seller.id))
    distribution = session.scalar(sa.select(Distribution).where(Distribution.organisation_id == seller.id))
    colleague = session.scalar(sa.select(User).where(User.email.not_in(LOGINS.values())).order_by(User.id))
    # A reset link for someone who is not one of the visitors (a GET does not use it up).
    _user, reset_token = accounts.request_password_reset(session, colleague.email, minutes=120)
    session.commit()
    # the statement of the month the order was placed in (STATEMENT_PERIOD month): its first day
    month = local_time(order.created_at, "%Y-%m") + "-01"
    return {
        "registry.project": {"public": [f"/registry/projects/{project.id}"]},
        "certificates.verify": {"public": [f"/verify/{certificate.number}"]},
        "registry_bureau.project": {"bureau": [f"/bureau/projects/{project.id}"]},
        "orders_bureau.order_detail": {"bureau": [f"/bureau/orders/{order.id}"]},
        "accounts_bureau.organisation": {"bureau": [f"/bureau/organisations/{seller.id}",
                                                    f"/bureau/organisations/{summit.id}"]},
        "registry_sellers.project": {"seller": [f"/sellers/projects/{project.id}"]},
        "events.event": {"buyer": [f"/buyers/events/{event.id}"]},
        "events.event_report": {"buyer": [f"/buyers/events/{event.id}/report"]},
        "orders.detail": {"buyer": [f"/buyers/orders/{order.id}"]},
        "orders.pay": {"buyer": [f"/buyers/orders/{order.id}/pay"]},  # completed: leads to the order page
        "accounts_bureau.user": {"bureau": [f"/bureau/users/{colleague.id}"]},
        "auth.reset_password": {"public": [f"/password/reset/{reset_token}"]},
        "events.edit_event": {"buyer": [f"/buyers/events/{event.id}/edit"]},  # neutralised: leads to the event
        "registry_sellers.edit_project": {"seller": [f"/sellers/projects/{project.id}/edit"]},
        "settlement_bureau.batch": {"bureau": [f"/bureau/money/batches/{payout.batch_id}"],
                                    "operator": [f"/bureau/money/batches/{payout.batch_id}"]},
        "settlement_bureau.statement": {who: [f"/bureau/money/statements/{seller.id}/{month}"]
                                        for who in ("bureau", "operator")},
        "settlement_buyers.documents": {"buyer": [f"/buyers/orders/{order.id}/documents"]},
        "settlement_sellers.statement": {"seller": [f"/sellers/money/statements/{month}"]},
        "settlement_sellers.distribution": {"seller": [f"/sellers/money/distributions/{distribution.id}"]},
        "settlement_public.village": {"public": [f"/villages/{project.village_id}"]},
        "neutrality.plan": {"buyer": [f"/buyers/events/{neutral.event_id}/neutrality"]},
        "neutrality.evaluate": {"evaluator": [f"/evaluators/plans/{neutral.id}"]},
        "neutrality.public_event": {"public": [f"/neutrality/events/{neutral.event_id}"]},
        "neutrality.declaration": {"public": [f"/neutrality/declarations/{number}" for number in declared]},
    }


def plan(app) -> tuple[dict[str, list[str]], dict[str, list[str]], list[str]]:
    """(URLs every visitor tries, URLs each visitor must be able to open, routes nobody visits)."""
    with app.app_context():
        concrete = concrete_urls(db.session)
    try_all, must, unvisited = [], {"public": [], "bureau": [], "seller": [], "buyer": [], "evaluator": [],
                                    "operator": []}, []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or not _is_page(rule.endpoint):
            continue
        if not rule.arguments:
            try_all.append(rule.rule)
        elif rule.endpoint in concrete:
            for who, urls in concrete[rule.endpoint].items():
                must[who] += urls
        else:
            unvisited.append(f"{rule.endpoint} ({rule.rule}): no concrete URL in concrete_urls()")
    return {who: list(try_all) for who in must}, must, unvisited


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
    """The demo story, served on a free port. Returns (app, base_url)."""
    port = free_port()
    app = make_app(SERVER_NAME=f"127.0.0.1:{port}", PREFERRED_URL_SCHEME="http")
    with app.app_context():
        demo.seed_demo(db.session)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, f"http://127.0.0.1:{port}"
    server.shutdown()


OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return null;
  // The outermost elements that stick out, to say where to look.
  const out = [...document.querySelectorAll('body *')].filter(el => {
    const r = el.getBoundingClientRect();
    if (r.right <= width + 1) return false;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX === 'auto' || s.overflowX === 'scroll' || s.overflowX === 'hidden') return false;
    }
    return true;
  }).slice(0, 4).map(el => `${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''}`
                             + ` (${Math.round(el.getBoundingClientRect().right)} px)`);
  return {scrollWidth: document.documentElement.scrollWidth, width, out};
}"""

AXE_JS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`);
}"""


class Visitor:
    """One browser context per visitor and width, reused for all its pages; records what went wrong."""

    def __init__(self, browser, base: str, who: str, viewport: dict, axe_source: str):
        self.context = browser.new_context(locale="zh-CN", viewport=viewport)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.base, self.who, self.axe_source = base, who, axe_source
        self.label = f"{who} @ {viewport['width']}px"
        self.errors: list[str] = []
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        # ERR_ABORTED is the browser giving up a request (the favicon) because the test moved on; a missing
        # file is an HTTP error below, a blocked one a console error.
        self.page.on("requestfailed", lambda req: "ERR_ABORTED" not in (req.failure or "")
                     and self.errors.append(f"request failed: {req.url} {req.failure}"))
        self.page.on("response", lambda res: res.status >= 400 and res.request.resource_type != "document"
                     and self.errors.append(f"HTTP {res.status}: {res.url}"))
        if who != "public":
            self.page.goto(f"{base}/login")
            self.page.get_by_label("电子邮箱").fill(LOGINS[who])
            self.page.get_by_label("密码").fill(DEMO_PASSWORD)
            self.page.get_by_label("密码").press("Enter")
            self.page.wait_for_url(lambda url: "/login" not in url)

    def check(self, path: str, *, required: bool) -> list[str] | None:
        """Problems of one page (None: not this visitor's page)."""
        if not required:
            # Ask first without rendering (the context's cookies, no browser work): most routes are
            # another role's, and a page load per refusal would double the run time.
            probe = self.context.request.get(self.base + path, max_redirects=0)
            if probe.status in (401, 403, 404, 405) or "/login" in probe.headers.get("location", ""):
                return None
        self.errors = []
        response = self.page.goto(self.base + path, wait_until="load")
        status = response.status if response else 0
        landed = self.page.url
        if status in (401, 403, 404, 405) or ("/login" in landed and not path.startswith("/login")):
            return [f"answered {status} at {landed}"] if required else None
        problems = [] if status == 200 else [f"answered {status}"]
        if "text/html" not in (response.headers.get("content-type", "") if response else ""):
            return [*problems, "not an HTML page: add its endpoint to NOT_PAGES"]
        overflow = self.page.evaluate(OVERFLOW_JS)
        if overflow:
            problems.append(f"scrolls sideways: {overflow['scrollWidth']} px in {overflow['width']} px; "
                            f"widest: {', '.join(overflow['out'])}")
        uncaptioned = self.page.evaluate(
            "() => [...document.querySelectorAll('table')].filter(t => !t.caption || !t.caption.textContent.trim()).length")
        if uncaptioned:
            problems.append(f"{uncaptioned} table(s) without a <caption>")
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(self.axe_source)
        problems += [f"axe: {v}" for v in self.page.evaluate(AXE_JS)]
        return problems + self.errors

    def close(self):
        self.context.close()


def test_every_page_of_every_role_fits_a_phone_and_passes_axe(browser, demo_site):
    app, base = demo_site
    try_all, must, unvisited = plan(app)
    axe_source = AXE.read_text(encoding="utf-8")
    report, visited, started = list(unvisited), 0, time.monotonic()
    for who in ("public", "bureau", "seller", "buyer", "evaluator"):
        for viewport in VIEWPORTS.values():
            visitor = Visitor(browser, base, who, viewport, axe_source)
            try:
                for path, required in [(p, False) for p in try_all[who]] + [(p, True) for p in must[who]]:
                    problems = visitor.check(path, required=required)
                    if problems is None:
                        continue
                    visited += 1
                    report += [f"{visitor.label} {path}: {problem}" for problem in problems]
            finally:
                visitor.close()
    print(f"{visited} page visits in {time.monotonic() - started:.0f} s")  # noqa: T201 — shown with -s
    assert visited >= 40, f"only {visited} page visits"
    assert not report, "\n" + "\n".join(report)
