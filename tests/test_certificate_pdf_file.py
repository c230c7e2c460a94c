"""A certificate's PDF on disk is served only if it is that certificate's.

Files are named by number; a number can come round again (a database restored from a backup, or
another process with its own instance folder, as the browser test with a real worker found), so a
file under the right name may carry another certificate's facts: another buyer's beneficiary."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from marketplace.certificates.models import Certificate
from marketplace.certificates.pdf import certificate_pdf_file, read_signed_record, write_certificate_pdf
from marketplace.certificates.service import certificate_facts, issue_certificate
from marketplace.extensions import db
from tests.factories import orders_with_ids


@pytest.fixture(autouse=True)
def _own_key(app, tmp_path):
    saved = app.config["CERT_SIGNING_KEY_FILE"], app.config["CERT_SIGNING_KEY"]
    app.config["CERT_SIGNING_KEY_FILE"], app.config["CERT_SIGNING_KEY"] = str(tmp_path / "signing_key.pem"), ""
    yield
    app.config["CERT_SIGNING_KEY_FILE"], app.config["CERT_SIGNING_KEY"] = saved


def issue(app, buyer, order_id: int, beneficiary: str) -> int:
    facts = certificate_facts(
        beneficiary=beneficiary, buyer=buyer, event_name=None, quantity_units=10_000, retirement_reason="测试",
        retired_at=datetime(2026, 11, 25, 8, 30, tzinfo=UTC),
        projects=[{"name": "测试项目", "village": "测试村", "township": "兰巨乡", "county": "龙泉市",
                   "batches": [{"serial_block": "CN-ZJ-LS-LQ-2025-0001", "vintage": "2025",
                                "ranges": [(1, 10_001)]}]}])
    with app.app_context():
        certificate = issue_certificate(db.session, order_id=order_id, facts=facts)
        db.session.commit()
        write_certificate_pdf(db.session, certificate)
        db.session.commit()
        return certificate.id


def test_a_file_of_another_certificate_under_the_same_name_is_redrawn(app, factory):
    orders_with_ids(app, [31, 32])
    buyer = factory.organisation("buyer")
    mine, other = issue(app, buyer, 31, "甲公司"), issue(app, buyer, 32, "乙公司")
    with app.app_context():
        mine_row, other_row = db.session.get(Certificate, mine), db.session.get(Certificate, other)
        path = certificate_pdf_file(db.session, mine_row)
        original = path.read_bytes()
        started = time.perf_counter()
        assert certificate_pdf_file(db.session, mine_row).read_bytes() == original  # kept, not redrawn
        print(f"check of the file on disk: {1000 * (time.perf_counter() - started):.1f} ms")

        other_pdf = certificate_pdf_file(db.session, other_row).read_bytes()
        path.write_bytes(other_pdf)  # the stale file under this certificate's name
        served = certificate_pdf_file(db.session, mine_row)
        record, pages, _problem = read_signed_record(served.read_bytes())
        text = "".join(pages)
        assert record["signature"] == mine_row.signature
        assert "甲公司" in text and "乙公司" not in text

        path.write_bytes(b"%PDF-1.4 not a certificate")
        assert read_signed_record(certificate_pdf_file(db.session, mine_row).read_bytes())[0]["signature"] \
            == mine_row.signature
