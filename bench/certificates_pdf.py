"""How long a certificate takes: facts → signed row → PDF on disk, against a bare one-page ReportLab PDF.

    .venv/bin/python bench/certificates_pdf.py [-n 200] [--database-url URL]

Runs on a throw-away SQLite database in a temporary instance folder unless --database-url names
an empty database (its tables are created and left behind). Prints p50/p95 per document and
documents per second for: the bare baseline, issuing alone (number + signature + row, committed),
drawing the PDF alone, and the whole path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

from marketplace import create_app  # noqa: E402
from marketplace.accounts import service as accounts  # noqa: E402
from marketplace.accounts.credit_code import complete_credit_code  # noqa: E402
from marketplace.certificates.pdf import write_certificate_pdf  # noqa: E402
from marketplace.certificates.service import certificate_facts, issue_certificate  # noqa: E402
from marketplace.extensions import db  # noqa: E402


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, samples: list[float]) -> None:
    total = sum(samples)
    print(f"{name:<34} p50 {percentile(samples, 50) * 1000:7.1f} ms   p95 {percentile(samples, 95) * 1000:7.1f} ms"
          f"   {len(samples) / total:7.1f} /s   (n={len(samples)})")


def bare_pdf(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont("Helvetica", 14)
    c.drawString(72, 770, "Carbon Neutrality Certificate")
    c.showPage()
    c.save()


def facts(buyer, i: int) -> dict:
    units = 1_754_020 + i
    return certificate_facts(
        beneficiary="第十届“智汇丽水”人才科技峰会", buyer=buyer, event_name="第十届“智汇丽水”人才科技峰会",
        quantity_units=units, retirement_reason="峰会碳中和", retired_at=datetime.now(UTC),
        projects=[{"name": "官埔垟村造林碳汇项目", "village": "官埔垟村", "township": "兰巨乡", "county": "龙泉市",
                   "batches": [{"serial_block": "CN-ZJ-LS-LQ-2025-0001", "vintage": "2025",
                                "ranges": [[i * 10_000_000, i * 10_000_000 + units]]}]}])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="documents per measurement")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tanhui-bench-") as tmp:
        instance = Path(tmp)
        app = create_app({
            "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "TANHUI_ENV": "development",
            "SQLALCHEMY_DATABASE_URI": args.database_url or f"sqlite:///{instance / 'bench.sqlite'}",
            "CELERY_BROKER_URL": "memory://", "CERT_SIGNING_KEY": "",
            "CERT_SIGNING_KEY_FILE": str(instance / "signing_key.pem"),
        })
        with app.app_context():
            db.create_all()
            buyer = accounts.create_organisation(db.session, kind="buyer", name="基准测试买方",
                                                 credit_code=complete_credit_code("91330000BENCH0001"))
            db.session.commit()

            bare_dir = instance / "bare"
            bare_dir.mkdir()
            bare_pdf(bare_dir / "warmup.pdf")
            bare = []
            for i in range(args.n):
                start = time.perf_counter()
                bare_pdf(bare_dir / f"{i}.pdf")
                bare.append(time.perf_counter() - start)

            # Warm-up: font registration and the first key file happen once per process.
            write_certificate_pdf(db.session, issue_certificate(db.session, order_id=0, facts=facts(buyer, 0)))
            db.session.commit()

            issuing, drawing, whole = [], [], []
            for i in range(1, args.n + 1):
                start = time.perf_counter()
                certificate = issue_certificate(db.session, order_id=i, facts=facts(buyer, i))
                db.session.commit()
                signed = time.perf_counter()
                write_certificate_pdf(db.session, certificate)
                db.session.commit()
                done = time.perf_counter()
                issuing.append(signed - start)
                drawing.append(done - signed)
                whole.append(done - start)

            size = (instance / "certificates" / f"{certificate.number}.pdf").stat().st_size
            print(f"database: {db.engine.dialect.name}; one certificate PDF is {size / 1024:.1f} KiB")
            report("bare one-page ReportLab PDF", bare)
            report("issue (number + sign + row)", issuing)
            report("certificate PDF (draw + embed)", drawing)
            report("facts → signed → PDF on disk", whole)
            print(f"a certificate costs {statistics.median(whole) / statistics.median(bare):.0f}× a bare page (p50)")
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
