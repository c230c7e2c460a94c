"""The carbon-neutrality declaration (碳中和声明, by the organiser) and the third-party evaluation (第三方评价,
by the assigned evaluator): numbered, signed with the certificates' Ed25519 keys, drawn as a bilingual PDF
with the signed record embedded, so ``marketplace certificates verify`` checks it offline like a certificate.

The facts (format ``tanhui.declaration/1``)::

    {"format", "number": "THN-2026-000001", "issued_at", "key_id",        # added when signing
     "kind": "self" | "evaluation",
     "event": {"name", "organiser", "location", "starts_on", "ends_on"},
     "organisation": {"name", "credit_code"},                             # the organiser's organisation
     "footprint_tonnes": "175.4020",                                      # the actual footprint version
     "retired_tonnes": "175.4020",                                        # eligible units retired for it
     "coverage_percent": "100.00",                                        # cut to 0.01 %, never rounded up
     "certificates": ["TH-2026-000001", …],                               # the retirements it rests on
     "deadline": "2027-11-01",
     "evaluator": {"name", "credit_code"} | null, "conclusion": "conforms" | "does_not_conform" | null,
     "findings": "…"}

A declaration needs coverage ≥ 100 % (the degree of neutralisation is a veto criterion); an evaluation
may conclude "does not conform" at any coverage, but "conforms" only at ≥ 100 %.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation
from marketplace.certificates.models import Certificate, SigningKey
from marketplace.certificates.service import check_signed_facts
from marketplace.certificates.signing import sign_facts
from marketplace.core.db import insert, max_length, utcnow
from marketplace.core.errors import Forbidden, InvalidTransition, ValidationFailed
from marketplace.core.i18n import platform_zone
from marketplace.core.quantities import format_tonnes
from marketplace.neutrality import coverage as coverage_of
from marketplace.neutrality.models import CONCLUSIONS, Declaration, DeclarationCounter, NeutralityPlan

FORMAT = "tanhui.declaration/1"
#: What the verifier also finds printed on the page (so a genuine record cannot lend its signature).
PRINTED_FACTS = ("number", "retired_tonnes", "coverage_percent")
ONLINE_PATH = "/neutrality/declarations/"


def _next_number(session: so.Session, year: int) -> str:
    stmt = (insert(session, DeclarationCounter).values(year=year, last_number=1)
            .on_conflict_do_update(index_elements=["year"], set_={"last_number": DeclarationCounter.last_number + 1})
            .returning(DeclarationCounter.last_number))
    return f"THN-{year:04d}-{session.execute(stmt).scalar_one():06d}"


def certificate_numbers(session: so.Session, event_id: int) -> list[str]:
    """The certificates of the retirements counted for the event."""
    return list(session.scalars(sa.select(Certificate.number)
                                .where(Certificate.order_id.in_(coverage_of.counted_orders(event_id)))
                                .order_by(Certificate.number)))


def _facts(session: so.Session, plan: NeutralityPlan, kind: str, *, evaluator: Organisation | None,
           conclusion: str | None, findings: str, cover) -> dict:
    event = plan.event
    organisation = session.get(Organisation, plan.organisation_id)
    return {
        "kind": kind,
        "event": {"name": event.name, "organiser": event.organiser or organisation.name, "location": event.location,
                  "starts_on": event.starts_on.isoformat(), "ends_on": event.ends_on.isoformat()},
        "organisation": {"name": organisation.name, "credit_code": organisation.credit_code},
        "footprint_tonnes": format_tonnes(plan.actual_units),
        "retired_tonnes": format_tonnes(cover.eligible_units),
        "coverage_percent": cover.percent_text,
        "certificates": certificate_numbers(session, plan.event_id),
        "deadline": plan.deadline.isoformat(),
        "evaluator": {"name": evaluator.name, "credit_code": evaluator.credit_code} if evaluator else None,
        "conclusion": conclusion,
        "findings": findings,
    }


def _issue(session: so.Session, plan: NeutralityPlan, kind: str, *, actor, evaluator=None, conclusion=None,
           findings: str = "", cover) -> Declaration:
    existing = session.scalar(sa.select(Declaration).where(Declaration.plan_id == plan.id, Declaration.kind == kind))
    if existing is not None:
        return existing
    issued_at = utcnow().replace(microsecond=0)
    year = issued_at.astimezone(platform_zone()).year
    number = _next_number(session, year)
    # A concurrent request (a double click) committed while we waited for the counter row: answer with its
    # record and give the number back (we still hold the row), so numbers stay gapless.
    existing = session.scalar(sa.select(Declaration).where(Declaration.plan_id == plan.id, Declaration.kind == kind))
    if existing is not None:
        session.execute(sa.update(DeclarationCounter).where(DeclarationCounter.year == year)
                        .values(last_number=DeclarationCounter.last_number - 1))
        return existing
    facts = {**_facts(session, plan, kind, evaluator=evaluator, conclusion=conclusion, findings=findings, cover=cover),
             "format": FORMAT, "number": number, "issued_at": issued_at.astimezone(UTC).isoformat()}
    facts_json, signature = sign_facts(session, facts)
    declaration = Declaration(number=number, plan_id=plan.id, kind=kind,
                              evaluator_organisation_id=evaluator.id if evaluator else None, conclusion=conclusion,
                              findings=findings, facts_json=facts_json, signature=signature,
                              key_id=json.loads(facts_json)["key_id"], issued_by_id=actor.id, issued_at=issued_at)
    session.add(declaration)
    session.flush()
    return declaration


def declare(session: so.Session, actor, plan: NeutralityPlan) -> Declaration:
    """The organiser declares the event carbon neutral: at ≥ 100 % coverage by eligible units only.
    Declaring twice returns the first declaration."""
    if actor.role != "buyer" or plan.organisation_id != actor.organisation_id:
        raise Forbidden(_l("Only the event's organiser declares it carbon neutral."))
    if plan.published_at is None:
        raise InvalidTransition(_l("Publish the plan first: the guideline asks for its main contents to be public."))
    if plan.actual_units is None:
        raise InvalidTransition(_l("Record the actual footprint first."))
    cover = coverage_of.of_plan(session, plan)
    if not cover.complete:
        message = _l("Coverage is %(pct)s %%: a declaration needs 100 %% by eligible credits.", pct=cover.percent_text)
        if cover.ineligible_units:
            message = _l("Coverage is %(pct)s %%: credits not eligible for large events do not count, and a "
                         "declaration needs 100 %%.", pct=cover.percent_text)
        raise InvalidTransition(message)
    return _issue(session, plan, "self", actor=actor, cover=cover)


def evaluate(session: so.Session, actor, plan: NeutralityPlan, *, conclusion: str, findings: str) -> Declaration:
    """The assigned evaluator records its conclusion. Only the evaluator the organiser assigned may."""
    if actor.role != "evaluator" or plan.evaluator_organisation_id != actor.organisation_id:
        raise Forbidden(_l("Only the evaluator assigned to this event evaluates it."))
    if conclusion not in CONCLUSIONS:
        raise ValidationFailed(_l("Choose the conclusion."), "conclusion")
    findings = (findings or "").strip()
    if len(findings) > max_length(Declaration.findings):
        raise ValidationFailed(_l("At most %(n)s characters.", n=max_length(Declaration.findings)), "findings")
    if conclusion == "does_not_conform" and not findings:
        raise ValidationFailed(_l("Give the findings that the event does not conform."), "findings")
    if plan.actual_units is None:
        raise InvalidTransition(_l("The organiser has not recorded the actual footprint yet."))
    cover = coverage_of.of_plan(session, plan)
    if conclusion == "conforms" and not cover.complete:
        raise ValidationFailed(_l("Coverage is %(pct)s %%: below 100 %% the event cannot conform.",
                                  pct=cover.percent_text), "conclusion")
    evaluator = session.get(Organisation, actor.organisation_id)
    return _issue(session, plan, "evaluation", actor=actor, evaluator=evaluator, conclusion=conclusion,
                  findings=findings, cover=cover)


def find(session: so.Session, number: str) -> Declaration | None:
    return session.scalar(sa.select(Declaration).where(Declaration.number == (number or "").strip().upper()))


def is_valid(session: so.Session, declaration: Declaration) -> bool:
    """The stored record verifies against the key that signed it."""
    keys = dict(session.execute(sa.select(SigningKey.key_id, SigningKey.public_key_pem)
                                .where(SigningKey.key_id == declaration.key_id)).all())
    facts = json.loads(declaration.facts_json)
    ok, _reason = check_signed_facts(facts, declaration.signature, keys)
    return ok and facts.get("number") == declaration.number and facts.get("kind") == declaration.kind


# --- the PDF ---------------------------------------------------------------------------------------

KIND_TITLES = {"self": ("碳中和声明", "Carbon Neutrality Declaration"),
               "evaluation": ("碳中和第三方评价", "Third-party Carbon Neutrality Evaluation")}
CONCLUSION_TEXTS = {"conforms": "符合 Conforms", "does_not_conform": "不符合 Does not conform"}


def render_pdf(facts: dict, signature: str, verify_url: str) -> bytes:
    """The declaration's bilingual page(s) with the signed record embedded."""
    from marketplace.certificates import pdf as certificate_pdf

    record = {"algorithm": "Ed25519", "facts": facts, "signature": signature}
    return certificate_pdf.attach_signed_record(render_pages(facts, signature, verify_url), record)


def render_pages(facts: dict, signature: str, verify_url: str) -> bytes:
    """The declaration's bilingual page(s), no attachment. Offline verification draws them again from the
    signed record and compares every page's text, so this drawing is part of the format: a change that
    moves any text needs a new ``FORMAT`` (the old drawing kept for the old one)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

    from marketplace.certificates import pdf as certificate_pdf
    from marketplace.core.pdf_fonts import cjk_font

    e = certificate_pdf.escape
    s = certificate_pdf._styles(cjk_font())
    zh, en = KIND_TITLES[facts["kind"]]
    event = facts["event"]

    def row(label_zh: str, label_en: str, value: str):
        return [Paragraph(f"{label_zh}<br/>{label_en}", s["label"]), Paragraph(value, s["cell"])]

    rows = [
        row("活动", "Event", f"{e(event['name'])}<br/>{e(event['location'])} · {event['starts_on']} – {event['ends_on']}"),
        row("组织方", "Organiser", f"{e(event['organiser'])}<br/>{e(facts['organisation']['name'])} "
                                   f"({e(facts['organisation']['credit_code'])})"),
        row("实际排放量", "Actual footprint", f"{facts['footprint_tonnes']} tCO2e"),
        row("注销合格减排量", "Eligible units retired", f"{facts['retired_tonnes']} tCO2e"),
        row("碳中和程度", "Degree of neutralisation", f"{facts['coverage_percent']} %"),
        row("证书", "Certificates", e("、".join(facts["certificates"])) or "—"),
        row("完成期限", "Deadline", facts["deadline"]),
    ]
    if facts.get("evaluator"):
        rows += [row("评价机构", "Evaluator", f"{e(facts['evaluator']['name'])} ({e(facts['evaluator']['credit_code'])})"),
                 row("结论", "Conclusion", CONCLUSION_TEXTS.get(facts["conclusion"], e(str(facts["conclusion"])))),
                 row("发现", "Findings", e(facts["findings"]) or "—")]
    rows.append(row("签发时间", "Issued at", certificate_pdf._local(facts["issued_at"])))
    statement_zh = (f"{e(event['organiser'])}依照《大型活动碳中和实施指南（试行）》，对{e(event['name'])}的温室气体排放"
                    f"进行了核算，并通过注销合格林业碳汇实现了 {facts['coverage_percent']}% 的碳中和。")
    statement_en = (f"Following the MEE large-event guideline, the emissions of {e(event['name'])} were accounted and "
                    f"{facts['coverage_percent']}% of them offset by retiring eligible forestry carbon-sink units.")
    story = [
        Paragraph(zh, s["title"]), Paragraph(en, s["subtitle"]), Spacer(0, 3 * mm),
        Paragraph(f"编号 No. <b>{e(facts['number'])}</b>", s["number"]), Spacer(0, 6 * mm),
        Paragraph(statement_zh, s["body"]), Spacer(0, 1.5 * mm), Paragraph(statement_en, s["body_en"]),
        Spacer(0, 5 * mm), Table(rows, colWidths=[42 * mm, 128 * mm]), Spacer(0, 6 * mm),
        Table([[[Paragraph("数字签名 Digital signature (Ed25519)", s["label"]), Paragraph(e(signature), s["mono"]),
                 Paragraph(f"密钥编号 Key ID: {e(facts['key_id'])}", s["cell"]),
                 Paragraph("签名记录以附件 certificate.json 嵌入本 PDF。The signed record is embedded as "
                           "certificate.json.", s["small"]), Paragraph(e(verify_url), s["cell"])],
                certificate_pdf.QrCode(verify_url, 34 * mm)]], colWidths=[132 * mm, 38 * mm]),
    ]
    import io

    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=22 * mm,
                      bottomMargin=22 * mm, title=f"{zh} {en} {facts['number']}", author="Tanhui 碳汇",
                      creator="Tanhui", keywords=[FORMAT, facts["number"]]).build(story)
    return buffer.getvalue()


def verify_url_for(number: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}{ONLINE_PATH}{number}"


def pdf_file(declaration: Declaration) -> Path:
    """The declaration's PDF under instance/declarations/, drawn from the signed facts if missing."""
    from marketplace.certificates.pdf import write_atomically

    # Named by number and signature: a number issued anew (a restored backup) never finds another's file.
    digest = hashlib.sha256(declaration.signature.encode()).hexdigest()[:12]
    path = Path(current_app.instance_path) / "declarations" / f"{declaration.number}-{digest}.pdf"
    if not path.is_file():
        write_atomically(path, render_pdf(json.loads(declaration.facts_json), declaration.signature,
                                          verify_url_for(declaration.number)))
    return path
