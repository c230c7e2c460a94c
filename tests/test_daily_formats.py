"""What a person reads is said one way everywhere: Beijing (platform) time in pages, e-mails, PDFs and
exports; one serial-range format; message contexts where one English word has two Chinese meanings;
the footprint report PDF readable (axis ticks, whole words); radio errors tied to the radios."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import sqlalchemy as sa
from pypdf import PdfReader

from marketplace.accounts.models import User
from marketplace.certificates import notifications
from marketplace.certificates.models import Certificate
from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.footprint.models import Event
from marketplace.orders.models import Order
from marketplace.registry.models import ProjectTransition
from tests.conftest import CsrfClient

SUMMIT = "第十届“智汇丽水”人才科技峰会"
#: 09:28 UTC is 17:28 in Beijing.
MOMENT = datetime(2026, 12, 1, 9, 28, 5, tzinfo=UTC)


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_project_history_is_in_beijing_time_without_utc(app, factory, login):
    project = factory.project()
    with app.app_context():
        db.session.execute(sa.update(ProjectTransition).where(ProjectTransition.project_id == project.id)
                           .values(created_at=MOMENT))
        db.session.commit()
    html = login(project.seller.email).get(f"/sellers/projects/{project.id}").get_data(as_text=True)
    assert "2026-12-01 17:28" in html
    assert "09:28" not in html and " UTC" not in html


def test_the_certificate_email_says_beijing_time(app):
    with app.app_context():
        demo.seed_demo(db.session)
        order = db.session.scalar(sa.select(Order).where(Order.beneficiary == SUMMIT))
        db.session.execute(sa.update(Order).where(Order.id == order.id).values(notified_at=None, completed_at=MOMENT))
        db.session.commit()
        mail = Path(app.instance_path) / "mail"
        before = set(mail.glob("*.eml")) if mail.exists() else set()
        assert notifications.certificate_ready(db.session, order.id) == 1
        (written,) = set(mail.glob("*.eml")) - before
    message = message_from_bytes(written.read_bytes(), policy=default_policy)
    body = message.get_content()
    assert "2026-12-01 17:28" in body and "UTC+08:00" in body and "09:28" not in body
    assert message["Date"].endswith("+0800")


def test_the_certificate_pdf_prints_the_platform_zone(make_app):
    from marketplace.certificates import pdf

    with make_app().app_context():
        assert pdf._local("2026-12-01T09:39:00+00:00") == "2026-12-01 17:39 (UTC+08:00)"
    with make_app(BABEL_DEFAULT_TIMEZONE="Asia/Tokyo").app_context():
        assert pdf._local("2026-12-01T09:39:00+00:00") == "2026-12-01 18:39 (UTC+09:00)"


def test_the_certificate_pdf_prints_serials_in_the_one_format(app, login):
    from marketplace.certificates.pdf import render_pages

    with app.app_context():
        demo.seed_demo(db.session)
        certificate = db.session.scalar(sa.select(Certificate).join(Order).where(Order.beneficiary == SUMMIT))
        import json

        facts = json.loads(certificate.facts_json)
        text = _pdf_text(render_pages(facts, certificate.signature, "http://localhost/verify/x"))
        number = certificate.number
        first = facts["projects"][0]["batches"][0]
        start, end = first["ranges"][0]
    expected = f"{first['serial_block']}-{start:012d}…{end - 1:012d}"
    assert expected in text.replace("\n", "")
    page = login("summit@lishui.example", demo.DEMO_PASSWORD).get(f"/verify/{number}").get_data(as_text=True)
    assert expected in page
    assert f"{start:,} – " not in page


def test_the_footprint_report_pdf_has_axis_ticks_whole_words_and_its_time(app, login):
    with app.app_context():
        demo.seed_demo(db.session)
        event_id = db.session.scalar(sa.select(Event.id).where(Event.name == SUMMIT))
    client = login("summit@lishui.example", demo.DEMO_PASSWORD)
    response = client.get(f"/buyers/events/{event_id}/report.pdf")
    assert response.status_code == 200
    text = _pdf_text(response.data)
    lines = text.splitlines()
    assert "passenger-km" in lines, "the unit is broken across lines"
    assert {"0", "20", "40", "60", "80"} <= set(lines), "the value axis has tick labels in tonnes"
    assert "UTC+08:00" in text


def test_exports_give_order_times_in_beijing_time(app, login):
    with app.app_context():
        demo.seed_demo(db.session)
        order = db.session.scalar(sa.select(Order).where(Order.beneficiary == SUMMIT))
        db.session.execute(sa.update(Order).where(Order.id == order.id).values(created_at=MOMENT))
        db.session.commit()
        order_id = order.id
    client = login("summit@lishui.example", demo.DEMO_PASSWORD)
    rows = list(csv.reader(io.StringIO(client.get("/buyers/dashboard/export/orders.csv").get_data(as_text=True)
                                       .lstrip("\ufeff"))))
    (row,) = [r for r in rows if r and r[0] == f"#{order_id}"]
    assert row[-1] == "2026-12-01 17:28"
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(client.get("/buyers/dashboard/export/orders.xlsx").data))
    values = [[c.value for c in r] for r in book.active.iter_rows()]
    assert ["2026-12-01 17:28"] == [r[-1] for r in values if r[0] == f"#{order_id}"]


def test_the_retirement_registry_date_column_is_not_the_factor_status(app, client):
    with app.app_context():
        demo.seed_demo(db.session)
    html = client.get("/registry/retirements").get_data(as_text=True)
    assert "注销日期" in html and "已停用" not in html


def test_a_radio_group_error_is_tied_to_the_radios(app, factory, login):
    buyer = factory.user("buyer")
    factory.listing()
    client = login(buyer.email)
    form = CsrfClient(client)
    html = form.post_form("/buyers/orders/new", {"quantity": "1", "payment_method": "nonsense",
                                                  "beneficiary": "x", "retirement_reason": "y"}).get_data(as_text=True)
    assert 'id="payment_method-error"' in html
    assert html.count('aria-describedby="payment_method-error"') >= 3  # the group and each radio
    with app.app_context():
        assert db.session.get(User, buyer.id) is not None


def test_quantities_read_one_way_with_chinese_punctuation(app, login):
    with app.app_context():
        demo.seed_demo(db.session)
        event_id = db.session.scalar(sa.select(Event.id).where(Event.name == SUMMIT))
        order_id = db.session.scalar(sa.select(Order.id).where(Order.beneficiary == SUMMIT))
        number = db.session.scalar(sa.select(Certificate.number).where(Certificate.order_id == order_id))
    client = login("summit@lishui.example", demo.DEMO_PASSWORD)
    event_page = client.get(f"/buyers/events/{event_id}").get_data(as_text=True)
    assert f"订单 {order_id}</a>：175.4020 t，" in event_page and ": 175.4020 t," not in event_page
    verify_page = client.get(f"/verify/{number}").get_data(as_text=True)
    assert "<strong>175.4020</strong> tCO2e" in verify_page and "(175.4020)" not in verify_page
    dashboard = client.get("/buyers/dashboard").get_data(as_text=True)
    assert "175.4020 t" in dashboard and "175.402 t" not in dashboard


# --- non-text contrast (WCAG 2.2, 1.4.11): the focus ring, input borders and chart colours ------------

ROOT = Path(__file__).resolve().parent.parent


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_focus_ring_input_borders_and_chart_colours_reach_three_to_one():
    import re

    css = (ROOT / "static/css/site.css").read_text(encoding="utf-8")
    page_bg = re.search(r"--bg:\s*(#[0-9a-fA-F]{6})", css).group(1)
    ring = re.search(r":focus-visible\s*\{\s*outline:\s*\d+px solid (#[0-9a-fA-F]{6})", css).group(1)
    border = re.search(r"--input-border:\s*(#[0-9a-fA-F]{6})", css).group(1)
    assert "#9fb0a7" not in css  # the old 2.27:1 border colour is gone everywhere
    charts = (ROOT / "static/js/dashboard-charts.js").read_text(encoding="utf-8")
    colours = re.findall(r"#[0-9a-fA-F]{6}", re.search(r"COLOURS = \[([^\]]*)\]", charts).group(1))
    assert len(colours) >= 4
    for colour in [ring, border, *colours]:
        for background in ("#ffffff", page_bg):
            assert _contrast(colour, background) >= 3, f"{colour} on {background}: {_contrast(colour, background):.2f}:1"
