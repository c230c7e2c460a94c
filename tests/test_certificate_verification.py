"""Offline verification proves that what a reader sees is what was signed (every page drawn again from the
signed record and compared exactly; no incremental update, extra page, annotation or attachment), and that
the certificate's time lies in its key's validity window; retiring a key records when."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import FreeText
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from marketplace.certificates import signing
from marketplace.certificates.models import Certificate, SigningKey
from marketplace.certificates.pdf import attach_signed_record, certificate_pdf_bytes, render_pages, verify_pdf
from marketplace.certificates.service import verify_certificate_record
from marketplace.certificates.signing import canonical_json, published_keys, retire_key
from marketplace.extensions import db
from tests.test_certificates import _orders, issue, signing_key_file  # noqa: F401 — fixtures


@pytest.fixture
def genuine(app, factory):
    cert = issue(app, factory.organisation("buyer"))
    with app.app_context():
        row = db.session.get(Certificate, cert.id)
        cert.facts, cert.signature = json.loads(row.facts_json), row.signature
        cert.keys = published_keys(db.session)
    cert.bytes = cert.pdf.read_bytes()
    return cert


def _verify(app, tmp_path, data: bytes, keys) -> tuple[bool, str]:
    path = tmp_path / "suspect.pdf"
    path.write_bytes(data)
    with app.test_request_context("/?lang=en"):
        ok, reason = verify_pdf(path, keys)
    return ok, str(reason)


def test_the_genuine_certificate_verifies(app, tmp_path, genuine):
    ok, reason = _verify(app, tmp_path, genuine.bytes, genuine.keys)
    assert ok, reason
    assert "every page shows exactly the signed record" in reason


def test_the_audits_edited_page_with_the_genuine_record_attached_fails(app, tmp_path, genuine):
    """The page shows the signed number, beneficiary and quantity somewhere — and a sum, another
    beneficiary prefix and event around them. The old substring check called it VALID."""
    facts = genuine.facts
    shown = {**facts, "quantity_tonnes": f"{facts['quantity_tonnes']} + 9,824.5980 = 10,000.0000",
             "beneficiary": "浙江某某控股集团 " + facts["beneficiary"], "event": "2026 年度全集团碳中和"}
    with app.app_context():
        page = render_pages(shown, genuine.signature, f"http://127.0.0.1:5000/verify/{facts['number']}")
    forged = attach_signed_record(page, {"algorithm": "Ed25519", "facts": facts, "signature": genuine.signature})
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(forged)).pages).replace(" ", "").replace("\n", "")
    assert facts["number"] in text and facts["quantity_tonnes"] in text  # what fooled the old check
    ok, reason = _verify(app, tmp_path, forged, genuine.keys)
    assert not ok and "page 1 differs" in reason


def test_a_page_whose_address_and_qr_code_point_elsewhere_fails(app, tmp_path, genuine):
    with app.app_context():
        page = render_pages(genuine.facts, genuine.signature, f"https://tanhui-verify.example/verify/{genuine.number}")
    forged = attach_signed_record(page, {"algorithm": "Ed25519", "facts": genuine.facts,
                                         "signature": genuine.signature})
    ok, reason = _verify(app, tmp_path, forged, genuine.keys)
    assert not ok and "verification address" in reason


def test_an_incremental_update_is_refused(app, tmp_path, genuine):
    writer = PdfWriter(io.BytesIO(genuine.bytes), incremental=True)
    writer.add_metadata({"/Subject": "edited"})
    out = io.BytesIO()
    writer.write(out)
    assert out.getvalue().startswith(genuine.bytes[:100]) and len(out.getvalue()) > len(genuine.bytes)
    ok, reason = _verify(app, tmp_path, out.getvalue(), genuine.keys)
    assert not ok and "incremental update" in reason


def test_an_extra_page_is_refused(app, tmp_path, genuine):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(genuine.bytes)))
    writer.add_blank_page()
    out = io.BytesIO()
    writer.write(out)
    ok, reason = _verify(app, tmp_path, out.getvalue(), genuine.keys)
    assert not ok and "2 pages, 1 signed" in reason


def test_an_annotation_over_the_page_is_refused(app, tmp_path, genuine):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(genuine.bytes)))
    writer.add_annotation(page_number=0, annotation=FreeText(text="10,000.0000 tCO2e", rect=(50, 550, 400, 600)))
    out = io.BytesIO()
    writer.write(out)
    ok, reason = _verify(app, tmp_path, out.getvalue(), genuine.keys)
    assert not ok and "/Annots" in reason


def test_a_second_attachment_or_a_script_is_refused(app, tmp_path, genuine):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(genuine.bytes)))
    writer.add_attachment("readme.txt", b"the real quantity is 10,000 t")
    out = io.BytesIO()
    writer.write(out)
    assert not _verify(app, tmp_path, out.getvalue(), genuine.keys)[0]
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(genuine.bytes)))
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert('valid');")})
    out = io.BytesIO()
    writer.write(out)
    ok, reason = _verify(app, tmp_path, out.getvalue(), genuine.keys)
    assert not ok and "/OpenAction" in reason


def _signed_at(app, facts: dict, issued_at: datetime, signing_key_file) -> bytes:  # noqa: F811
    """The same facts signed again with the installation's own (now retired) key, claiming another time."""
    private = signing._parse_private_key(signing_key_file.read_bytes(), "test")
    dated = {**facts, "issued_at": issued_at.isoformat()}
    signature = base64.b64encode(private.sign(canonical_json(dated).encode())).decode()
    with app.app_context():
        return certificate_pdf_bytes(canonical_json(dated), signature,
                                     f"{app.config['PUBLIC_BASE_URL']}/verify/{facts['number']}")


def test_a_certificate_claiming_a_time_outside_its_keys_window_fails(app, tmp_path, genuine, signing_key_file):  # noqa: F811
    with app.app_context():
        retired = retire_key(db.session, genuine.key_id)
        db.session.commit()
        retired_at = retired.retired_at
        keys = published_keys(db.session)
    # Issued before the retirement: still valid.
    assert _verify(app, tmp_path, genuine.bytes, keys)[0]
    # A key that leaked and was retired signs a certificate dated after it: refused.
    later = _signed_at(app, genuine.facts, (retired_at + timedelta(minutes=1)).replace(microsecond=0),
                       signing_key_file)
    ok, reason = _verify(app, tmp_path, later, keys)
    assert not ok and "outside the validity of its key" in reason
    # …or one backdated to before the key existed.
    earlier = _signed_at(app, genuine.facts, datetime(2020, 1, 1, tzinfo=UTC), signing_key_file)
    ok, reason = _verify(app, tmp_path, earlier, keys)
    assert not ok and "outside the validity of its key" in reason


def test_the_online_verdict_applies_the_window_too(app, genuine):
    with app.app_context():
        db.session.execute(db.update(SigningKey).where(SigningKey.key_id == genuine.key_id)
                           .values(retired_at=datetime(2020, 1, 1, tzinfo=UTC)))
        db.session.commit()
        verdict = verify_certificate_record(db.session, genuine.number)
    assert verdict["found"] and not verdict["valid"] and not verdict["signature_valid"]


def test_retiring_a_key_records_when_and_a_retired_key_signs_nothing(app, runner, factory, genuine):
    before = datetime.now(UTC)
    result = runner.invoke(args=["certificates", "retire-key", genuine.key_id])
    assert result.exit_code == 0 and f"retired key {genuine.key_id} at" in result.output, result.output
    with app.app_context():
        row = db.session.scalar(db.select(SigningKey).where(SigningKey.key_id == genuine.key_id))
        assert row.retired_at is not None and row.retired_at >= before.replace(microsecond=0) - timedelta(seconds=1)
    assert runner.invoke(args=["certificates", "retire-key", genuine.key_id]).exit_code == 2
    with pytest.raises(signing.RetiredKeyConfigured):
        issue(app, factory.organisation("buyer"), order_id=2, pdf=False)
    # Rotation moves on to a new key, which signs.
    assert runner.invoke(args=["certificates", "rotate-key"]).exit_code == 0
    assert issue(app, factory.organisation("buyer"), order_id=2, pdf=False).key_id != genuine.key_id


def test_the_command_prints_the_signed_facts_and_uses_the_published_windows(app, runner, client, genuine, tmp_path):
    result = runner.invoke(args=["certificates", "verify", str(genuine.pdf)])
    assert result.exit_code == 0, result.output
    for shown in (genuine.facts["number"], genuine.facts["beneficiary"], genuine.facts["quantity_tonnes"],
                  genuine.facts["buyer"]["credit_code"], genuine.facts["issued_at"], "[1000, 1755020)"):
        assert shown in result.output, shown
    with app.app_context():
        retire_key(db.session, genuine.key_id)
        db.session.execute(db.update(SigningKey).values(retired_at=datetime(2020, 1, 1, tzinfo=UTC)))
        db.session.commit()
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(client.get("/api/v1/public/keys").get_data(as_text=True))
    result = runner.invoke(args=["certificates", "verify", str(genuine.pdf), "--keys", str(keys_file)])
    assert result.exit_code == 1 and "有效期" in result.output  # the command speaks the default language
