"""The certificate as a PDF (A4, Chinese and English), and its offline verification.

The PDF shows the signed facts, the serial ranges, the signature and key id, and a QR code to
``<PUBLIC_BASE_URL>/verify/<number>``. The signed record itself travels inside the file as an
embedded file attachment, ``certificate.json``: ``{"algorithm", "facts", "signature"}``. Any PDF
reader lists it; ``verify_pdf`` reads it back with pypdf and checks the signature against the published
keys and its key's validity window. Then it proves that what a reader sees is what was signed: the pages
are drawn again from the signed record and every page's text must equal the file's exactly (same number
of pages), and the file must be one revision (no incremental update appended after signing) with no
annotations, forms, scripts, actions or other attachments that could show something else. A genuine
record cannot lend its signature to an edited page.

The drawing is therefore part of the format: a change to ``render_pages`` that moves any text must come
with a new ``FORMAT`` (and the old drawing kept for the old one), or earlier certificates stop verifying.
The rows of the optional facts (purpose, the period covered, the event's id) are drawn only when the facts
carry them, so a certificate signed before they existed is drawn exactly as it was.

Files live in ``instance/certificates/<number>.pdf`` (never under the web root) and are written to a
temporary file and renamed, so a killed worker never leaves half a PDF. A PDF is derived data: if it
is lost it is drawn again from the stored facts (``certificate_pdf_file``).
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import segno
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import gettext as _
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from marketplace.certificates.models import Certificate
from marketplace.certificates.service import FORMAT, ONLINE_PATHS, RENDERERS, check_signed_facts
from marketplace.core.files import private_folder, write_private_file
from marketplace.core.i18n import local_time, zone_label
from marketplace.core.pdf_fonts import cjk_font
from marketplace.core.quantities import format_serial_range

ATTACHMENT_NAME = "certificate.json"
GREEN = colors.HexColor("#1d6b4a")
LIGHT = colors.HexColor("#eef5f1")
MUTED = colors.HexColor("#5b6b63")


# --- drawing ---------------------------------------------------------------------------------------

class QrCode(Flowable):
    """A QR code drawn as vector squares (sharp at any zoom, no image library involved)."""

    def __init__(self, text: str, size):  # size: a ReportLab length in points (e.g. 34 * mm)
        super().__init__()
        self.qr = segno.make(text, error="m")
        self.size = size
        self.width = self.height = size

    def draw(self):
        rows = [list(row) for row in self.qr.matrix_iter(border=4)]
        module = self.size / len(rows)
        canvas = self.canv
        canvas.setFillColor(colors.white)
        canvas.rect(0, 0, self.size, self.size, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        for r, row in enumerate(rows):
            y = self.size - (r + 1) * module
            c = 0
            while c < len(row):
                if row[c]:
                    start = c
                    while c < len(row) and row[c]:
                        c += 1
                    # Runs of dark modules as one rectangle, slightly overlapping to avoid hairlines.
                    canvas.rect(start * module, y, (c - start) * module + 0.05, module + 0.05, stroke=0, fill=1)
                else:
                    c += 1


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=font, fontSize=10, leading=14, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=26, leading=34, alignment=1, textColor=GREEN),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=14, leading=18, alignment=1, textColor=GREEN),
        "number": ParagraphStyle("number", parent=base, fontSize=11, alignment=1),
        "body": ParagraphStyle("body", parent=base, fontSize=11, leading=17),
        "body_en": ParagraphStyle("body_en", parent=base, fontSize=9.5, leading=13, textColor=MUTED),
        "label": ParagraphStyle("label", parent=base, fontSize=9, leading=12, textColor=MUTED),
        "cell": ParagraphStyle("cell", parent=base, fontSize=9.5, leading=13),
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10, textColor=MUTED),
        "mono": ParagraphStyle("mono", parent=base, fontName="Courier", fontSize=6.5, leading=9, wordWrap=None),
    }


def _local(iso: str) -> str:
    """A signed moment in the platform zone, with the zone said: the PDF is read away from the site."""
    moment = datetime.fromisoformat(iso)
    return f"{local_time(moment)} ({zone_label(moment)})"


#: The purposes as the bilingual certificate prints them (both languages on the page, so not gettext).
PURPOSES = {"event": "大型活动碳中和 Large-event carbon neutrality", "zero_carbon_org": "零碳机构 Zero-carbon organisation",
            "ecological_compensation": "生态损害赔偿 Ecological damage compensation",
            "voluntary": "自愿抵消 Voluntary offsetting", "other": "其他 Other"}


def _batch_lines(batch: dict) -> str:
    """The batch's serial block, then its ranges printed inclusively (first – last serial, unit count)."""
    head = escape(batch["serial_block"]) + (f" · {escape(batch['vintage'])}" if batch.get("vintage") else "")
    return "<br/>".join([f"<b>{head}</b>", *(
        f"{escape(format_serial_range(batch['serial_block'], start, end - 1))} ({end - start:,})"
        for start, end in batch["ranges"])])


def _event_cell(facts: dict) -> str:
    """The event's name, and its id when the facts carry one (certificates signed before did not: their
    row is drawn exactly as it was)."""
    if not facts.get("event"):
        return "—"
    if "event_id" not in facts:
        return escape(facts["event"])
    return f"{escape(facts['event'])}<br/>活动编号 Event ID: {int(facts['event_id'])}"


def _period_cell(period: dict) -> str:
    """The days the retirement covers, both included."""
    return (f"{escape(period['start'])} 至 {escape(period['end'])}（含首尾两日）<br/>"
            f"{escape(period['start'])} to {escape(period['end'])}, both days included")


def render_pages(facts: dict, signature: str, verify_url: str) -> bytes:
    """The certificate's pages as PDF bytes (no attachment yet)."""
    font = cjk_font()
    s = _styles(font)
    e = escape
    story: list = [
        Paragraph("碳中和证书", s["title"]),
        Paragraph("Carbon Neutrality Certificate", s["subtitle"]),
        Spacer(0, 3 * mm),
        Paragraph(f"证书编号 Certificate No. <b>{e(facts['number'])}</b>", s["number"]),
        Spacer(0, 6 * mm),
        Paragraph(f"兹证明，<b>{e(facts['beneficiary'])}</b> 通过 Tanhui 碳汇平台注销林业碳汇 "
                  f"<b>{e(facts['quantity_tonnes'])}</b> 吨二氧化碳当量（tCO2e），"
                  "相应碳汇单位已永久退出流通，不得再次交易或使用。", s["body"]),
        Spacer(0, 1.5 * mm),
        Paragraph(f"This certifies that {e(facts['quantity_tonnes'])} tCO2e of forestry carbon-sink units have "
                  f"been retired on the Tanhui platform for {e(facts['beneficiary'])}. The units are "
                  "permanently out of circulation and cannot be traded or used again.", s["body_en"]),
        Spacer(0, 5 * mm),
    ]

    def row(zh: str, en: str, value: str):
        return [Paragraph(f"{zh}<br/>{en}", s["label"]), Paragraph(value, s["cell"])]

    buyer = facts["buyer"]
    rows = [
        row("受益方", "Beneficiary", e(facts["beneficiary"])),
        row("购买方", "Buyer", f"{e(buyer['name'])}<br/>统一社会信用代码 Credit code: {e(buyer['credit_code'])}"),
        row("活动", "Event", _event_cell(facts)),
        row("注销数量", "Quantity retired", f"{e(facts['quantity_tonnes'])} tCO2e"),
        *([row("注销用途", "Purpose", PURPOSES.get(facts["purpose"], e(facts["purpose"])))] if facts.get("purpose") else []),
        *([row("覆盖期间", "Period covered", _period_cell(facts["period"]))] if facts.get("period") else []),
        row("注销原因", "Retirement reason", e(facts["retirement_reason"])),
        row("注销时间", "Retired at", _local(facts["retired_at"])),
        row("签发时间", "Issued at", _local(facts["issued_at"])),
    ]
    table_style = TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#cfdad4")),
        ("BACKGROUND", (0, 0), (0, -1), LIGHT),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ])
    story += [Table(rows, colWidths=[38 * mm, 132 * mm], style=table_style), Spacer(0, 5 * mm)]

    project_rows = [[Paragraph("项目 Project", s["label"]), Paragraph("地点 Location", s["label"]),
                     Paragraph("批次与序列号（含首尾） Batch and serials (inclusive)", s["label"])]]
    for project in facts["projects"]:
        place = f"{e(project['county'])} {e(project['township'])} {e(project['village'])}"
        batches = "<br/>".join(_batch_lines(batch) for batch in project["batches"])
        project_rows.append([Paragraph(e(project["name"]), s["cell"]), Paragraph(place, s["cell"]),
                             Paragraph(batches, s["cell"])])
    projects_style = TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), LIGHT),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#cfdad4")),
    ])
    story += [Table(project_rows, colWidths=[48 * mm, 42 * mm, 80 * mm], style=projects_style, repeatRows=1),
              Spacer(0, 6 * mm)]

    signature_block = [
        Paragraph("数字签名 Digital signature (Ed25519)", s["label"]),
        Paragraph(e(signature), s["mono"]),
        Spacer(0, 1.5 * mm),
        Paragraph(f"密钥编号 Key ID: <font name='Courier'>{e(facts['key_id'])}</font>", s["cell"]),
        Spacer(0, 2 * mm),
        Paragraph("签名覆盖的数据以附件 certificate.json 嵌入本 PDF；公钥见 /api/v1/public/keys。"
                  "扫描二维码或访问下方网址，在线核验证书是否有效或已被撤销。", s["small"]),
        Paragraph("The signed record is embedded in this PDF as certificate.json; public keys are at "
                  "/api/v1/public/keys. Scan the code or visit the address below to check online whether "
                  "the certificate is valid or has been revoked.", s["small"]),
        Spacer(0, 1.5 * mm),
        Paragraph(e(verify_url), s["cell"]),
    ]
    verify_table = Table([[signature_block, QrCode(verify_url, 34 * mm)]], colWidths=[132 * mm, 38 * mm],
                         style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(verify_table)

    def frame(canvas, doc):
        canvas.saveState()
        width, height = A4
        canvas.setStrokeColor(GREEN)
        canvas.setLineWidth(2)
        canvas.rect(10 * mm, 10 * mm, width - 20 * mm, height - 20 * mm)
        canvas.setLineWidth(0.5)
        canvas.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
        canvas.setFont(font, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawCentredString(width / 2, 14.5 * mm,
                                 f"Tanhui 碳汇 · {facts['number']} · {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=22 * mm, bottomMargin=22 * mm,
        title=f"碳中和证书 Carbon Neutrality Certificate {facts['number']}", author="Tanhui 碳汇",
        subject=facts["beneficiary"], creator="Tanhui", keywords=[FORMAT, facts["number"]],
    )
    doc.build(story, onFirstPage=frame, onLaterPages=frame)
    return buffer.getvalue()


def attach_signed_record(pdf: bytes, record: dict) -> bytes:
    """The same PDF with the signed record embedded as certificate.json."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_attachment(ATTACHMENT_NAME, json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def certificate_pdf_bytes(facts_json: str, signature: str, verify_url: str) -> bytes:
    """The whole certificate PDF from its signed facts."""
    facts = json.loads(facts_json)
    record = {"algorithm": "Ed25519", "facts": facts, "signature": signature}
    return attach_signed_record(render_pages(facts, signature, verify_url), record)


def verify_url_for(number: str, kind: str = FORMAT) -> str:
    """Where a signed record of this format is checked online (a certificate: /verify/<number>)."""
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}{ONLINE_PATHS[kind]}{number}"


# --- files -----------------------------------------------------------------------------------------

def _certificates_dir() -> Path:
    """instance/certificates, private to the application's user (0700; the PDFs 0600)."""
    return private_folder(Path(current_app.instance_path) / "certificates")


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, fsync, rename: readers see the old file or the
    whole new one, never a part."""
    private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        write_private_file(temporary, data, fsync=True)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_certificate_pdf(session: so.Session, certificate: Certificate) -> Path:
    """Draw the certificate's PDF into instance/certificates/<number>.pdf; records the path. Flushes."""
    path = _certificates_dir() / f"{certificate.number}.pdf"
    write_atomically(path, certificate_pdf_bytes(certificate.facts_json, certificate.signature,
                                                 verify_url_for(certificate.number)))
    certificate.pdf_path = str(path.relative_to(Path(current_app.instance_path)))
    session.flush()
    return path


def certificate_pdf_file(session: so.Session, certificate: Certificate) -> Path:
    """The PDF on disk, drawn now if it was never written, was lost, or is not this certificate's.

    Files are named by number, and a number can come round again (a database restored from a
    backup issues it anew, a process with another instance folder drew its own file): a file
    whose embedded record carries another signature belongs to another certificate, and must
    never be handed to this one's owner."""
    if certificate.pdf_path:
        path = Path(current_app.instance_path) / certificate.pdf_path
        if path.is_file() and _embedded_signature(path) == certificate.signature:
            return path
    return write_certificate_pdf(session, certificate)


def _embedded_signature(path: Path) -> str | None:
    """The signature in a certificate PDF's embedded record (attachments only: no text extraction)."""
    try:
        blobs = PdfReader(str(path)).attachments.get(ATTACHMENT_NAME) or []
        record = json.loads(blobs[0].decode("utf-8")) if len(blobs) == 1 else None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, AttributeError, UnicodeDecodeError):
        return None
    return record.get("signature") if isinstance(record, dict) else None


# --- offline verification --------------------------------------------------------------------------

#: What a certificate PDF's catalogue may hold; anything else (forms, scripts, open actions, outlines,
#: optional content that hides or shows layers) could make a reader show something other than the pages.
_ALLOWED_CATALOGUE_KEYS = frozenset({"/Type", "/Pages", "/Names", "/PageMode", "/Metadata", "/Outlines", "/Lang"})
#: What each page may hold; ``/Annots`` (a stamp, a free-text box over the quantity) is refused.
_ALLOWED_PAGE_KEYS = frozenset({"/Type", "/Parent", "/Resources", "/Contents", "/MediaBox", "/CropBox",
                                "/Rotate", "/Trans", "/BleedBox", "/TrimBox", "/ArtBox"})


def _pages_text(reader: PdfReader) -> list[str]:
    return [page.extract_text() or "" for page in reader.pages]


def _structure_problem(pdf: bytes, reader: PdfReader) -> str | None:
    """Why this file could show a reader more or other than its pages as drawn, or None."""
    # One revision: an incremental update appends objects (an edited page) and a second trailer.
    if pdf.count(b"%%EOF") != 1 or pdf.count(b"startxref") != 1 or "/Prev" in reader.trailer:
        return _("The PDF was changed after it was issued (an incremental update is appended).")
    catalogue = reader.trailer["/Root"]
    extra = set(catalogue.keys()) - _ALLOWED_CATALOGUE_KEYS
    if extra:
        return _("The PDF carries content a certificate never has (%(what)s).", what=", ".join(sorted(extra)))
    names = catalogue.get("/Names")
    if names is not None and set(names.get_object().keys()) - {"/EmbeddedFiles"}:
        return _("The PDF carries content a certificate never has (%(what)s).",
                 what=", ".join(sorted(set(names.get_object().keys()) - {"/EmbeddedFiles"})))
    if set(reader.attachments) != {ATTACHMENT_NAME}:
        return _("The PDF carries attachments a certificate never has.")
    for number, page in enumerate(reader.pages, start=1):
        extra = set(page.keys()) - _ALLOWED_PAGE_KEYS
        if extra:
            return _("Page %(page)d carries content a certificate never has (%(what)s).", page=number,
                     what=", ".join(sorted(extra)))
    return None


def read_signed_record(pdf: bytes) -> tuple[dict | None, list[str], str]:
    """(record, each page's text, problem) from a certificate PDF's bytes; the structure checked."""
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        problem = _structure_problem(pdf, reader)
        attachments = reader.attachments
        pages = _pages_text(reader)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, AttributeError, RecursionError):
        return None, [], _("This file is not a readable PDF.")
    blobs = attachments.get(ATTACHMENT_NAME) or []
    if len(blobs) != 1:
        return None, pages, _("The PDF carries no signed certificate record (certificate.json).")
    if problem:
        return None, pages, problem
    try:
        record = json.loads(blobs[0].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, pages, _("The embedded certificate record is damaged.")
    if not isinstance(record, dict) or not isinstance(record.get("facts"), dict):
        return None, pages, _("The embedded certificate record is damaged.")
    return record, pages, ""


def _printed_verify_url(pages: list[str], number: str, online_path: str = "/verify/") -> str | None:
    """The verification address printed on the page, ending in <online path><number> (a certificate:
    /verify/<number>). It is drawn from the issuing installation's PUBLIC_BASE_URL and not signed, so
    ``verify_pdf`` accepts this registry's only."""
    match = re.search(r"(https?://\S+?" + re.escape(online_path) + re.escape(number) + r")(?![\w-])",
                      "\n".join(pages))
    return match.group(1) if match else None


def signed_facts_lines(facts: dict) -> list[str]:
    """The signed facts as lines for people (the command line prints them after a verification)."""
    lines = [f"number: {facts.get('number')}", f"beneficiary: {facts.get('beneficiary')}",
             f"buyer: {(facts.get('buyer') or {}).get('name')} ({(facts.get('buyer') or {}).get('credit_code')})",
             f"event: {facts.get('event') or '-'}"
             + (f" (id {facts['event_id']})" if facts.get("event_id") is not None else ""),
             f"quantity: {facts.get('quantity_tonnes')} tCO2e",
             *([f"purpose: {facts['purpose']}"] if facts.get("purpose") else []),
             *([f"period: {(facts['period'] or {}).get('start')} to {(facts['period'] or {}).get('end')}"]
               if isinstance(facts.get("period"), dict) else []),
             f"retirement reason: {facts.get('retirement_reason')}", f"retired at: {facts.get('retired_at')}",
             f"issued at: {facts.get('issued_at')}", f"key: {facts.get('key_id')}"]
    for project in facts.get("projects") or []:
        lines.append(f"project: {project.get('name')} ({project.get('county')} {project.get('township')} "
                     f"{project.get('village')})")
        for batch in project.get("batches") or []:
            ranges = ", ".join(f"[{start}, {end})" for start, end in batch.get("ranges") or [])
            lines.append(f"  batch {batch.get('serial_block')} {batch.get('vintage') or ''}: serials {ranges}")
    return lines


def verify_pdf(path: str | os.PathLike, public_keys: dict) -> tuple[bool, str]:
    """Offline check of a certificate PDF against public keys (key_id → PEM, or → signing.PublishedKey with
    the key's validity window): (ok, reason).

    Checks the file's structure (one revision, no annotations, forms, scripts or other attachments), the
    embedded record's signature and its key's window, then draws the pages again from the signed record
    and compares every page's text with the file's, exactly. Revocation can only be known online
    (/verify/<number>)."""
    try:
        pdf = Path(path).read_bytes()
    except OSError as exc:
        return False, _("Cannot read the file: %(error)s", error=exc.strerror or str(exc))
    record, pages, problem = read_signed_record(pdf)
    if record is None:
        return False, problem
    facts = record["facts"]
    signature = str(record.get("signature") or "")
    ok, reason = check_signed_facts(facts, signature, public_keys)
    if not ok:
        return False, reason
    kind = str(facts["format"])
    verify_url = _printed_verify_url(pages, str(facts["number"]), ONLINE_PATHS[kind])
    # The address (and the QR code drawn from it) is not signed: it must be this registry's own.
    if verify_url is None or verify_url != verify_url_for(str(facts["number"]), kind):
        return False, _("The printed certificate does not match its signed record (the verification address "
                        "differs).")
    render = RENDERERS.get(kind, render_pages)
    try:
        expected = _pages_text(PdfReader(io.BytesIO(render(facts, signature, verify_url))))
    except (KeyError, TypeError, ValueError, AttributeError):
        return False, _("The certificate's facts are malformed.")
    if len(expected) != len(pages):
        return False, _("The printed certificate does not match its signed record (%(found)d pages, %(signed)d "
                        "signed).", found=len(pages), signed=len(expected))
    for number, (shown, signed) in enumerate(zip(pages, expected, strict=True), start=1):
        if shown != signed:
            return False, _("The printed certificate does not match its signed record (page %(page)d differs).",
                            page=number)
    return True, _("Valid signature: certificate %(number)s, key %(key)s; every page shows exactly the signed "
                   "record. Check online whether it has been revoked: %(path)s", number=facts["number"],
                   key=facts["key_id"], path=verify_url)
