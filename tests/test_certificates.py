"""Certificates: signed facts, numbers, PDFs, offline and online verification, revocation, access."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from marketplace.accounts.models import User
from marketplace.certificates import pdf as certificate_pdf
from marketplace.certificates import signing
from marketplace.certificates.models import Certificate, CertificateCounter, SigningKey
from marketplace.certificates.pdf import (
    attach_signed_record,
    certificate_pdf_file,
    render_pages,
    verify_pdf,
    write_certificate_pdf,
)
from marketplace.certificates.service import (
    InvalidFacts,
    certificate_facts,
    issue_certificate,
    next_certificate_number,
    revoke_certificate,
    verify_certificate_record,
)
from marketplace.certificates.signing import (
    active_signing_key,
    canonical_json,
    public_keys,
    rotate_signing_key,
    sign_facts,
    verify_signature,
)
from marketplace.extensions import db
from marketplace.stats.aggregates import local_day
from tests.conftest import CsrfClient


@pytest.fixture(autouse=True)
def _orders(app):
    """The orders these tests attach payments or certificates to."""
    from tests.factories import orders_with_ids

    orders_with_ids(app, [1, 2, 5, 7, 41, 42, 99])

BENEFICIARY = "第十届“智汇丽水”人才科技峰会"
UNITS = 1_754_020  # 175.4020 t


@pytest.fixture(autouse=True)
def signing_key_file(app, tmp_path):
    """Each test signs with its own key file (rotation must not leak into other tests)."""
    saved = app.config["CERT_SIGNING_KEY_FILE"], app.config["CERT_SIGNING_KEY"]
    path = tmp_path / "keys" / "signing_key.pem"
    app.config["CERT_SIGNING_KEY_FILE"], app.config["CERT_SIGNING_KEY"] = str(path), ""
    yield path
    app.config["CERT_SIGNING_KEY_FILE"], app.config["CERT_SIGNING_KEY"] = saved


def facts_for(buyer, *, units: int = UNITS, ranges=None, beneficiary: str = BENEFICIARY) -> dict:
    return certificate_facts(
        beneficiary=beneficiary, buyer=buyer, event_name="第十届“智汇丽水”人才科技峰会", quantity_units=units,
        retirement_reason="峰会碳中和 Summit carbon neutrality", retired_at=datetime(2026, 11, 25, 8, 30, tzinfo=UTC),
        projects=[{"name": "官埔垟村造林碳汇项目", "village": "官埔垟村", "township": "兰巨乡", "county": "龙泉市",
                   "batches": [{"serial_block": "CN-ZJ-LS-LQ-2025-0001", "vintage": "2025",
                                "ranges": ranges or [(1000, 1000 + units)]}]}])


def issue(app, buyer, order_id: int = 1, *, pdf: bool = True, **kwargs) -> SimpleNamespace:
    """Issue (and draw) a certificate in its own transaction; a snapshot for HTTP tests."""
    with app.app_context():
        certificate = issue_certificate(db.session, order_id=order_id, facts=facts_for(buyer, **kwargs))
        db.session.commit()
        path = write_certificate_pdf(db.session, certificate) if pdf else None
        db.session.commit()
        return SimpleNamespace(id=certificate.id, number=certificate.number, key_id=certificate.key_id, pdf=path)


# --- signing ---------------------------------------------------------------------------------------

def test_canonical_json_is_sorted_compact_utf8_and_refuses_floats():
    assert canonical_json({"b": [2, {"z": None, "a": "碳"}], "a": "175.4020"}) == \
        '{"a":"175.4020","b":[2,{"a":"碳","z":null}]}'
    with pytest.raises(TypeError):
        canonical_json({"quantity": 175.402})


def test_a_signature_verifies_and_breaks_when_any_fact_changes(session):
    payload, signature = sign_facts(session, {"number": "TH-2026-000001", "quantity_tonnes": "175.4020"})
    key = active_signing_key(session)
    pem = public_keys(session)[key.key_id]
    assert json.loads(payload)["key_id"] == key.key_id
    assert verify_signature(payload, signature, pem)
    assert not verify_signature(payload.replace("175.4020", "975.4020"), signature, pem)
    assert not verify_signature(payload, base64.b64encode(b"\0" * 64).decode(), pem)
    assert not verify_signature(payload, "not base64!", pem)


def test_the_key_file_is_created_once_private_and_registered(session, signing_key_file):
    first = active_signing_key(session)
    assert stat.S_IMODE(signing_key_file.stat().st_mode) == 0o600
    assert active_signing_key(session).key_id == first.key_id
    raw = first.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert first.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert session.scalar(sa.select(sa.func.count()).select_from(SigningKey)) == 1
    assert not [p for p in signing_key_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_key_from_the_environment_signs_and_is_not_rotated_by_the_command(app, session, signing_key_file):
    from marketplace.core.errors import Conflict

    private = Ed25519PrivateKey.generate()
    app.config["CERT_SIGNING_KEY"] = signing.private_key_pem(private).decode().replace("\n", "\\n")
    assert active_signing_key(session).key_id == signing.key_id_for(private.public_key())
    assert not signing_key_file.exists()
    with pytest.raises(Conflict):
        rotate_signing_key(session)


# --- numbers and issuing ---------------------------------------------------------------------------

def test_numbers_count_up_per_year(session):
    assert [next_certificate_number(session, 2026) for _ in range(3)] == [
        "TH-2026-000001", "TH-2026-000002", "TH-2026-000003"]
    assert next_certificate_number(session, 2027) == "TH-2027-000001"


def test_issuing_signs_the_facts_and_is_idempotent_per_order(session, factory):
    buyer = factory.organisation("buyer")
    certificate = issue_certificate(session, order_id=41, facts=facts_for(buyer))
    again = issue_certificate(session, order_id=41, facts=facts_for(buyer))
    other = issue_certificate(session, order_id=42, facts=facts_for(buyer, units=5))
    session.commit()
    year = local_day(certificate.issued_at).year  # the platform's year (Asia/Shanghai), as numbers use
    assert again.id == certificate.id
    assert (certificate.number, other.number) == (f"TH-{year}-000001", f"TH-{year}-000002")
    assert session.get(CertificateCounter, year).last_number == 2
    assert certificate.buyer_organisation_id == buyer.id and certificate.quantity_units == UNITS
    facts = json.loads(certificate.facts_json)
    assert facts["quantity_tonnes"] == "175.4020" and facts["number"] == certificate.number
    assert facts["key_id"] == certificate.key_id and facts["format"] == "tanhui.certificate/1"
    assert facts["projects"][0]["batches"][0]["ranges"] == [[1000, 1000 + UNITS]]
    assert certificate.facts_json == canonical_json(facts)
    verdict = verify_certificate_record(session, certificate.number)
    assert verdict["valid"] and verdict["signature_valid"] and not verdict["revoked"]


@pytest.mark.parametrize("breakage, message", [
    (lambda f: f.update(quantity_tonnes="175.4021"), "serial ranges count"),
    (lambda f: f.update(quantity_tonnes="175.402"), "exactly 4 places"),
    (lambda f: f.update(extra="x"), "unknown"),
    (lambda f: f.update(number="TH-2026-999999"), "set by issue_certificate"),
    (lambda f: f.update(beneficiary=" "), "beneficiary"),
    (lambda f: f.update(retired_at="2026-11-25T08:30:00"), "offset"),
    (lambda f: f["buyer"].update(credit_code="91330000000000000X"), "names no organisation"),
    (lambda f: f["projects"][0]["batches"][0].update(ranges=[[10, 5]]), "start < end"),
    (lambda f: f["projects"][0]["batches"][0].update(ranges=[[0, 2.5]]), "integers"),
])
def test_malformed_facts_are_refused_and_nothing_is_saved(session, factory, breakage, message):
    facts = facts_for(factory.organisation("buyer"))
    breakage(facts)
    with pytest.raises(InvalidFacts, match=message):
        issue_certificate(session, order_id=7, facts=facts)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(CertificateCounter)) == 0


# --- online verification ---------------------------------------------------------------------------

def test_an_unknown_number_is_not_valid(session):
    for number in ("TH-2026-000404", "nonsense", ""):
        verdict = verify_certificate_record(session, number)
        assert not verdict["found"] and not verdict["valid"] and verdict["reason"]


def test_a_tampered_stored_record_fails_verification(app, factory):
    cert = issue(app, factory.organisation("buyer"), pdf=False)
    with app.app_context():
        row = db.session.get(Certificate, cert.id)
        row.facts_json = row.facts_json.replace('"175.4020"', '"975.4020"')
        db.session.commit()
        verdict = verify_certificate_record(db.session, cert.number)
        assert not verdict["valid"] and not verdict["signature_valid"]
        assert "signature does not match" in verdict["reason"] or "签名与内容不符" in verdict["reason"]


def test_a_certificate_naming_a_foreign_key_fails(app, session, factory):
    cert = issue(app, factory.organisation("buyer"), pdf=False)
    foreign = Ed25519PrivateKey.generate()
    row = session.get(Certificate, cert.id)
    facts = {**json.loads(row.facts_json), "key_id": signing.key_id_for(foreign.public_key())}
    row.facts_json = canonical_json(facts)
    row.signature = base64.b64encode(foreign.sign(row.facts_json.encode())).decode()
    verdict_keys = public_keys(session)
    from marketplace.certificates.service import check_signed_facts

    ok, reason = check_signed_facts(facts, row.signature, verdict_keys)
    assert not ok and facts["key_id"] in reason


def test_rotation_keeps_old_certificates_valid(app, factory, signing_key_file):
    buyer = factory.organisation("buyer")
    before = issue(app, buyer, order_id=1)
    old_file = signing_key_file.read_bytes()
    with app.app_context():
        old, new = (row.key_id for row in rotate_signing_key(db.session))
        db.session.commit()
    assert signing_key_file.read_bytes() != old_file
    assert stat.S_IMODE(signing_key_file.stat().st_mode) == 0o600
    after = issue(app, buyer, order_id=2)
    assert old == before.key_id and after.key_id == new != before.key_id
    with app.app_context():
        keys = public_keys(db.session)
        assert set(keys) == {before.key_id, after.key_id}
        assert db.session.scalar(sa.select(SigningKey).where(SigningKey.key_id == before.key_id)).retired_at
        for cert in (before, after):
            assert verify_certificate_record(db.session, cert.number)["valid"]
            assert verify_pdf(cert.pdf, keys)[0]


# --- the PDF ---------------------------------------------------------------------------------------

def test_the_pdf_renders_in_chinese_and_english_with_the_facts(app, factory, tmp_path):
    cert = issue(app, factory.organisation("buyer"))
    assert cert.pdf.name == f"{cert.number}.pdf" and cert.pdf.parent.name == "certificates"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(cert.pdf), str(tmp_path / "page")],
                   check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 1000
    text = subprocess.run(["pdftotext", str(cert.pdf), "-"], check=True, capture_output=True, text=True).stdout
    for expected in ("碳中和证书", "Carbon Neutrality Certificate", BENEFICIARY, "175.4020", cert.number,
                     cert.key_id, f"/verify/{cert.number}", "官埔垟村", "CN-ZJ-LS-LQ-2025-0001 · 2025",
                     "CN-ZJ-LS-LQ-2025-0001-000000001000…000001755019 (1,754,020)"):
        assert expected in text or expected in text.replace("\n", ""), expected  # a long serial range may wrap
    assert not [p for p in cert.pdf.parent.iterdir() if p.name.endswith(".tmp")]


def test_the_qr_code_points_at_the_verify_page(app, factory):
    import segno

    cert = issue(app, factory.organisation("buyer"), pdf=False)
    with app.app_context():
        url = certificate_pdf.verify_url_for(cert.number)
    assert url == f"{app.config['PUBLIC_BASE_URL']}/verify/{cert.number}"
    # The code drawn on the page encodes exactly that address.
    assert certificate_pdf.QrCode(url, 100).qr.matrix == segno.make(url, error="m").matrix


def test_a_genuine_pdf_verifies_offline(app, factory):
    cert = issue(app, factory.organisation("buyer"))
    with app.app_context():
        ok, reason = verify_pdf(cert.pdf, public_keys(db.session))
    assert ok, reason
    assert cert.number in reason


def test_tampered_pdfs_fail_offline_verification_with_a_reason(app, factory, tmp_path):
    buyer = factory.organisation("buyer")
    cert = issue(app, buyer)
    genuine = cert.pdf.read_bytes()
    with app.app_context():
        keys = public_keys(db.session)
        record = json.loads(db.session.get(Certificate, cert.id).facts_json)
        signature = db.session.get(Certificate, cert.id).signature

    def check(data: bytes) -> str:
        path = tmp_path / "suspect.pdf"
        path.write_bytes(data)
        with app.app_context():
            ok, reason = verify_pdf(path, keys)
        assert not ok
        return str(reason)

    # A signed field edited in the file's bytes (same length, so the PDF still parses).
    assert b'"quantity_tonnes":"175.4020"' in genuine
    reason = check(genuine.replace(b'"quantity_tonnes":"175.4020"', b'"quantity_tonnes":"975.4020"'))
    assert "signature" in reason or "签名" in reason
    # A cut-off download.
    check(genuine[: len(genuine) // 2])
    # Not a PDF at all.
    check(b"hello")
    # A forged page (bigger quantity) carrying a genuine signed record.
    forged_facts = {**record, "quantity_tonnes": "9175.4020"}
    with app.app_context():
        genuine_url = certificate_pdf.verify_url_for(cert.number)
    forged = attach_signed_record(render_pages(forged_facts, signature, genuine_url),
                                  {"algorithm": "Ed25519", "facts": record, "signature": signature})
    assert "page 1 differs" in check(forged) or "第 1 页" in check(forged)
    # A PDF signed by a key Tanhui never published.
    foreign = Ed25519PrivateKey.generate()
    foreign_facts = {**record, "key_id": signing.key_id_for(foreign.public_key())}
    foreign_sig = base64.b64encode(foreign.sign(canonical_json(foreign_facts).encode())).decode()
    with app.app_context():
        foreign_pdf = certificate_pdf.certificate_pdf_bytes(canonical_json(foreign_facts), foreign_sig, "http://x")
    assert foreign_facts["key_id"] in check(foreign_pdf)


def test_a_failed_write_leaves_the_previous_pdf_whole(app, factory, monkeypatch):
    cert = issue(app, factory.organisation("buyer"))
    before = cert.pdf.read_bytes()

    def crash(_fd):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        certificate_pdf.write_atomically(cert.pdf, b"%PDF-half")
    assert cert.pdf.read_bytes() == before
    assert not [p for p in cert.pdf.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_lost_pdf_is_drawn_again(app, factory):
    cert = issue(app, factory.organisation("buyer"))
    cert.pdf.unlink()
    with app.app_context():
        path = certificate_pdf_file(db.session, db.session.get(Certificate, cert.id))
        assert path == cert.pdf and verify_pdf(path, public_keys(db.session))[0]


# --- concurrency (PostgreSQL) ----------------------------------------------------------------------

def _in_threads(app, count: int, work) -> list:
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)

    def run(i):
        try:
            with app.app_context():
                barrier.wait()
                results[i] = work(i)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@pytest.mark.postgres
def test_concurrent_number_allocation_hands_out_each_number_once(app):
    def allocate(_i):
        numbers = []
        for _ in range(10):
            numbers.append(next_certificate_number(db.session, 2026))
            db.session.commit()
        return numbers

    numbers = [n for batch in _in_threads(app, 8, allocate) for n in batch]
    assert sorted(numbers) == [f"TH-2026-{i:06d}" for i in range(1, 81)]


@pytest.mark.postgres
def test_concurrent_issues_for_one_order_make_one_certificate_and_no_gap(app, factory):
    buyer = factory.organisation("buyer")

    def issue_once(_i):
        certificate = issue_certificate(db.session, order_id=99, facts=facts_for(buyer))
        db.session.commit()
        return certificate.number

    numbers = _in_threads(app, 6, issue_once)
    assert len(set(numbers)) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 1
        assert db.session.scalar(sa.select(CertificateCounter.last_number)) == 1


# --- command line ----------------------------------------------------------------------------------

def test_cli_verify_exit_codes(app, runner, factory, client, tmp_path):
    cert = issue(app, factory.organisation("buyer"))
    result = runner.invoke(args=["certificates", "verify", str(cert.pdf)])
    assert result.exit_code == 0 and "VALID" in result.output, result.output

    keys_file = tmp_path / "keys.json"
    keys_file.write_text(client.get("/api/v1/public/keys").get_data(as_text=True))
    result = runner.invoke(args=["certificates", "verify", str(cert.pdf), "--keys", str(keys_file)])
    assert result.exit_code == 0, result.output

    other = Ed25519PrivateKey.generate().public_key()
    keys_file.write_text(json.dumps({signing.key_id_for(other): signing.public_key_pem(other)}))
    result = runner.invoke(args=["certificates", "verify", str(cert.pdf), "--keys", str(keys_file)])
    assert result.exit_code == 1 and "INVALID" in result.output and cert.key_id in result.output

    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(cert.pdf.read_bytes().replace(b'"quantity_tonnes":"175.4020"',
                                                       b'"quantity_tonnes":"175.4029"'))
    result = runner.invoke(args=["certificates", "verify", str(tampered)])
    assert result.exit_code == 1 and "INVALID" in result.output

    result = runner.invoke(args=["certificates", "verify", str(tmp_path / "missing.pdf")])
    assert result.exit_code == 1
    keys_file.write_text("[1, 2]")
    result = runner.invoke(args=["certificates", "verify", str(cert.pdf), "--keys", str(keys_file)])
    assert result.exit_code == 2


def test_cli_rotate_key(app, runner, factory):
    cert = issue(app, factory.organisation("buyer"))
    result = runner.invoke(args=["certificates", "rotate-key"])
    assert result.exit_code == 0 and f"retired key {cert.key_id}" in result.output, result.output
    assert runner.invoke(args=["certificates", "verify", str(cert.pdf)]).exit_code == 0


# --- HTTP: public API and pages ----------------------------------------------------------------------

def test_public_keys_list_every_key_old_ones_too(app, client, factory):
    buyer = factory.organisation("buyer")
    first = issue(app, buyer, order_id=1, pdf=False)
    with app.app_context():
        rotate_signing_key(db.session)
        db.session.commit()
    second = issue(app, buyer, order_id=2, pdf=False)
    keys = client.get("/api/v1/public/keys").get_json()["keys"]
    assert [k["key_id"] for k in keys] == [first.key_id, second.key_id]
    assert keys[0]["retired_at"] and keys[1]["retired_at"] is None
    assert all(k["algorithm"] == "Ed25519" and "BEGIN PUBLIC KEY" in k["public_key_pem"] for k in keys)


def test_public_certificate_record_can_be_checked_by_anyone(app, client, factory):
    cert = issue(app, factory.organisation("buyer"), pdf=False)
    body = client.get(f"/api/v1/public/certificates/{cert.number}").get_json()
    assert body["valid"] and not body["revoked"] and body["facts"]["quantity_tonnes"] == "175.4020"
    assert body["verify_url"].endswith(f"/verify/{cert.number}")
    # Anyone can re-check the signature from the published key alone.
    pem = {k["key_id"]: k["public_key_pem"] for k in client.get("/api/v1/public/keys").get_json()["keys"]}
    assert verify_signature(canonical_json(body["facts"]), body["signature"], pem[body["key_id"]])
    missing = client.get("/api/v1/public/certificates/TH-2026-999999")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_the_verify_page_says_valid_in_both_languages(app, client, factory):
    cert = issue(app, factory.organisation("buyer"), pdf=False)
    chinese = client.get(f"/verify/{cert.number}?lang=zh_CN")
    assert chinese.status_code == 200
    text = chinese.get_data(as_text=True)
    assert "有效证书" in text and BENEFICIARY in text and "175.402" in text
    english = client.get(f"/verify/{cert.number.lower()}?lang=en").get_data(as_text=True)
    assert "Valid certificate" in english and "CN-ZJ-LS-LQ-2025-0001-000000001000…000001755019" in english
    assert "Revoke this certificate" not in english
    # Anyone may download the PDF of a valid certificate, from the public address (not the owner's).
    assert f'href="/verify/{cert.number}.pdf">Download the PDF' in english
    assert f"/certificates/{cert.number}.pdf" not in english


def test_the_verify_form_finds_a_number_and_explains_bad_input(app, client, factory):
    cert = issue(app, factory.organisation("buyer"), pdf=False)
    assert client.get("/verify").status_code == 200
    found = client.get(f"/verify?number=+{cert.number.lower()}+")
    assert found.status_code == 302 and found.headers["Location"].endswith(f"/verify/{cert.number}")
    bad = client.get("/verify?number=12345&lang=en")
    assert bad.status_code == 422 and "TH-2026-000123" in bad.get_data(as_text=True)
    unknown = client.get("/verify/TH-2026-999999?lang=en")
    assert unknown.status_code == 404 and "No certificate has the number" in unknown.get_data(as_text=True)


def test_the_bureau_revokes_with_a_reason_and_everyone_sees_it(app, client, factory, login):
    owner = factory.organisation("buyer")
    cert = issue(app, owner, pdf=False)
    bureau = factory.user("bureau")
    login(bureau.email)
    page = f"/verify/{cert.number}"
    form = CsrfClient(client)
    empty = form.post_form(page, {"reason": "  "}, action=f"{page}/revoke")
    assert empty.status_code == 422
    done = form.post_form(page, {"reason": "受益方名称有误 Wrong beneficiary"}, action=f"{page}/revoke")
    assert done.status_code == 302
    anonymous = app.test_client()
    text = anonymous.get(f"{page}?lang=en").get_data(as_text=True)
    assert "Revoked" in text and "Wrong beneficiary" in text and "Valid certificate" not in text
    body = anonymous.get(f"/api/v1/public/certificates/{cert.number}").get_json()
    assert body["revoked"] and not body["valid"] and body["signature_valid"]
    assert body["revocation_reason"] == "受益方名称有误 Wrong beneficiary"
    again = form.client.post(f"{page}/revoke", data={"reason": "again", "csrf_token": form.csrf_token("/account/")})
    assert again.status_code == 422


def test_only_the_bureau_may_revoke(app, client, factory, login):
    owner = factory.user("buyer")
    cert = issue(app, owner.organisation, pdf=False)
    login(owner.email)
    page = f"/verify/{cert.number}"
    token = CsrfClient(client).csrf_token("/account/")
    response = client.post(f"{page}/revoke", data={"reason": "mine", "csrf_token": token})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Certificate, cert.id).revoked_at is None


def test_the_pdf_is_for_its_owner_and_the_bureau_only(app, factory):
    owner = factory.user("buyer")
    cert = issue(app, owner.organisation)
    url = f"/certificates/{cert.number}.pdf"

    def signed_in(user):
        browser = app.test_client()
        CsrfClient(browser).post_form("/login", {"email": user.email, "password": "correct horse battery"})
        return browser

    response = signed_in(owner).get(url)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF") and "no-store" in response.headers["Cache-Control"]
    assert "Download the PDF" in signed_in(owner).get(f"/verify/{cert.number}?lang=en").get_data(as_text=True)
    assert signed_in(factory.user("bureau")).get(url).status_code == 200
    assert signed_in(factory.user("buyer")).get(url).status_code == 404
    assert signed_in(factory.user("seller")).get(url).status_code == 404
    assert signed_in(owner).get("/certificates/TH-2026-999999.pdf").status_code == 404
    assert app.test_client().get(url).status_code == 302


def test_the_owner_api_shows_the_record_and_hides_it_from_others(app, client, factory):
    owner = factory.user("buyer")
    cert = issue(app, owner.organisation, order_id=5, pdf=False)
    mine = client.get(f"/api/v1/certificates/{cert.number}",
                      headers={"Authorization": f"Bearer {factory.token(owner)}"})
    assert mine.status_code == 200
    body = mine.get_json()
    assert body["order_id"] == 5 and body["pdf_url"].endswith(f"/certificates/{cert.number}.pdf")
    other = client.get(f"/api/v1/certificates/{cert.number}",
                       headers={"Authorization": f"Bearer {factory.token(factory.user('buyer'))}"})
    assert other.status_code == 404


def test_the_openapi_document_lists_the_certificate_calls(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/public/keys", "/api/v1/public/certificates/{number}",
            "/api/v1/certificates/{number}"} <= set(paths)


def test_pdf_paths_stay_inside_the_instance_folder(app, factory):
    cert = issue(app, factory.organisation("buyer"))
    with app.app_context():
        row = db.session.get(Certificate, cert.id)
        assert row.pdf_path == f"certificates/{cert.number}.pdf"
        assert Path(app.instance_path) in cert.pdf.resolve().parents


def test_anyone_downloads_a_valid_certificates_pdf_from_its_verification_page(app, factory):
    cert = issue(app, factory.user("buyer").organisation)
    anonymous = app.test_client()
    page = anonymous.get(f"/verify/{cert.number}").get_data(as_text=True)
    assert f'href="/verify/{cert.number}.pdf"' in page
    response = anonymous.get(f"/verify/{cert.number}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    with app.app_context():
        assert verify_pdf_bytes_ok(response.data)
    assert anonymous.get("/verify/TH-2026-999999.pdf").status_code == 404
    with app.app_context():
        revoke_certificate(db.session, number=cert.number, actor=db.session.get(User, factory.user("bureau").id),
                           reason="错误")
        db.session.commit()
    assert anonymous.get(f"/verify/{cert.number}.pdf").status_code == 404  # revoked: not handed out
    assert f'/verify/{cert.number}.pdf' not in anonymous.get(f"/verify/{cert.number}").get_data(as_text=True)


def test_an_api_client_downloads_the_pdf_at_the_pdf_url_with_its_token(app, client, factory):
    owner = factory.user("buyer")
    cert = issue(app, owner.organisation, order_id=5)
    headers = {"Authorization": f"Bearer {factory.token(owner)}"}
    pdf_url = client.get(f"/api/v1/certificates/{cert.number}", headers=headers).get_json()["pdf_url"]
    response = app.test_client().get(pdf_url, headers=headers)
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    other = {"Authorization": f"Bearer {factory.token(factory.user('buyer'))}"}
    assert app.test_client().get(pdf_url, headers=other).status_code == 404
    bad = app.test_client().get(pdf_url, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert app.test_client().get(pdf_url).status_code == 302  # no token, no session: the sign-in


def verify_pdf_bytes_ok(data: bytes) -> bool:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.pdf"
        path.write_bytes(data)
        return verify_pdf(path, public_keys(db.session))[0]
