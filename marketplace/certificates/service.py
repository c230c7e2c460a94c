"""Carbon-neutrality certificates: numbers, signed issuance, revocation and verification.

The facts (format ``tanhui.certificate/1``)
-------------------------------------------
``issue_certificate(session, order_id=…, facts=…)`` takes the facts below. Build them with
``certificate_facts(...)`` from the retirement's rows; it formats every value the one right way.
The service adds ``format``, ``number``, ``issued_at`` and ``key_id``, signs the canonical JSON
(services.signing) and stores it::

    {
      "format": "tanhui.certificate/1",                # added by the service
      "number": "TH-2026-000123",                      # added: per-year counter, gapless
      "issued_at": "2026-11-25T08:30:05+00:00",        # added: UTC, whole seconds
      "key_id": "3f1c0a9e5b7d2c41",                    # added: the signing key
      "beneficiary": "第十届“智汇丽水”人才科技峰会",     # the name the credits were retired for
      "buyer": {"name": "…组委会", "credit_code": "11331100MB2648031X"},
                                                       # the paying organisation (its credit code
                                                       # finds buyer_organisation_id)
      "event": "第十届“智汇丽水”人才科技峰会" | null,    # the neutralised event's name, if any
      "quantity_tonnes": "175.4020",                   # exactly 4 places (format_tonnes)
      "retirement_reason": "…",                        # the buyer's stated reason
      "purpose": "event",                              # optional (older certificates lack it): what the
                                                       # retirement is for, orders.models.RETIREMENT_PURPOSES
      "event_id": 12,                                  # optional (older certificates lack it): the event's
                                                       # id, only beside an event's name
      "period": {"start": "2026-10-30", "end": "2026-11-01"},
                                                       # optional (older certificates, and retirements
                                                       # without one, lack it): the days the retirement
                                                       # covers, inclusive, ISO dates
      "retired_at": "2026-11-25T08:30:00+00:00",       # when the units left circulation
      "projects": [{
          "name": "官埔垟村造林碳汇项目", "village": "官埔垟村", "township": "兰巨乡",
          "county": "龙泉市",
          "batches": [{
              "serial_block": "CN-ZJ-LS-LQ-2025-0001",   # the batch's serial prefix
              "vintage": "2025",                        # optional: monitoring period
              "ranges": [[0, 1754020]]                  # half-open [start, end) unit serials
          }]
      }]
    }

Rules checked before signing: no unknown keys (typos fail loudly); strings non-empty; the ranges
are integers with 0 <= start < end, sorted and disjoint within a batch, and together count exactly
``quantity_tonnes`` (so the certificate proves which units were retired). Pages print a range
inclusively (first – last serial); the JSON keeps it half-open like the ledger.

Numbers: ``next_certificate_number`` increments a per-year counter row with one
``INSERT … ON CONFLICT DO UPDATE … RETURNING``; on PostgreSQL that row stays locked until the
issuing transaction ends, so numbers are unique and, since a rollback gives the number back, gapless.
Issue the certificate late in the retirement's transaction and commit promptly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation, User
from marketplace.accounts.service import require_bureau
from marketplace.certificates.models import Certificate, CertificateCounter, SigningKey
from marketplace.certificates.signing import (
    PublishedKey,
    active_signing_key,
    canonical_json,
    sign_facts,
    verify_signature,
)
from marketplace.core.dates import within_calendar
from marketplace.core.db import insert, max_length, utcnow
from marketplace.core.errors import Conflict, NotFound, ValidationFailed
from marketplace.core.i18n import platform_zone
from marketplace.core.quantities import UNITS_PER_TONNE, format_tonnes
from marketplace.footprint.models import Event
from marketplace.orders.models import RETIREMENT_PURPOSES, Order
from marketplace.registry.models import Project, Region

FORMAT = "tanhui.certificate/1"
#: Every signed record the verifier knows (certificates, and the formats later features register, e.g.
#: neutrality's declarations): format → the facts that must also be printed on the PDF's page (the pages
#: are compared whole with a fresh drawing, see RENDERERS; these name what matters most).
SIGNED_FORMATS: dict[str, tuple[str, ...]] = {FORMAT: ("number", "beneficiary", "quantity_tonnes")}
#: format → the path under which a record of it is checked online (revocation): path + number
ONLINE_PATHS: dict[str, str] = {FORMAT: "/verify/"}
#: format → the function that draws a record's pages again from its signed facts,
#: ``render(facts, signature, verify_url) -> PDF bytes`` (no attachment): offline verification compares
#: every page's text with the file's. Certificates' own is ``certificates.pdf.render_pages``.
RENDERERS: dict[str, Callable[[dict, str, str], bytes]] = {}


def register_signed_format(name: str, printed_facts: tuple[str, ...], online_path: str,
                           render: Callable[[dict, str, str], bytes]) -> None:
    """Let ``certificates verify`` (and check_signed_facts) accept another record signed with our keys;
    ``render`` draws its pages again from the signed facts, so a verified file shows exactly what was signed."""
    SIGNED_FORMATS[name] = tuple(printed_facts)
    ONLINE_PATHS[name] = online_path
    RENDERERS[name] = render
NUMBER_PATTERN = re.compile(r"^TH-(?P<year>[0-9]{4})-(?P<seq>[0-9]{6,})$")

#: Keys the caller gives, and those the service adds.
CALLER_KEYS = frozenset({"beneficiary", "buyer", "event", "quantity_tonnes", "retirement_reason", "retired_at",
                         "projects"})
#: Keys a caller may give; certificates signed before they existed lack them and still verify.
CALLER_OPTIONAL_KEYS = frozenset({"purpose", "event_id", "period"})
PERIOD_KEYS = frozenset({"start", "end"})
SERVICE_KEYS = frozenset({"format", "number", "issued_at", "key_id"})
BUYER_KEYS = frozenset({"name", "credit_code"})
PROJECT_KEYS = frozenset({"name", "village", "township", "county", "batches"})
BATCH_KEYS = frozenset({"serial_block", "ranges"})
BATCH_OPTIONAL_KEYS = frozenset({"vintage"})
_QUANTITY = re.compile(r"^[0-9]{1,12}\.[0-9]{4}$")


class InvalidFacts(ValueError):
    """The facts handed to issue_certificate break the format: a bug in the caller, not user input."""


# --- building and checking facts -------------------------------------------------------------------

def certificate_facts(*, beneficiary: str, buyer: Organisation, event_name: str | None, quantity_units: int,
                      retirement_reason: str, retired_at: datetime, projects: list[dict],
                      purpose: str | None = None, event_id: int | None = None,
                      period: tuple[date, date] | None = None) -> dict:
    """The caller's part of the facts, formatted. ``projects`` as in the module docstring (ranges
    as (start, end) pairs of ints, half-open); ``period`` the first and last day covered."""
    return {
        **({"purpose": purpose} if purpose else {}),
        **({"event_id": int(event_id)} if event_id is not None and event_name else {}),
        **({"period": {"start": period[0].isoformat(), "end": period[1].isoformat()}}
           if period and period[0] and period[1] else {}),
        "beneficiary": beneficiary.strip(),
        "buyer": {"name": buyer.name, "credit_code": buyer.credit_code},
        "event": event_name.strip() if event_name else None,
        "quantity_tonnes": format_tonnes(quantity_units),
        "retirement_reason": (retirement_reason or "").strip(),
        "retired_at": _iso(retired_at),
        "projects": [{
            **{key: project[key] for key in PROJECT_KEYS - {"batches"}},
            "batches": [{
                **{key: batch[key] for key in (BATCH_KEYS | BATCH_OPTIONAL_KEYS) - {"ranges"} if key in batch},
                "ranges": [[int(start), int(end)] for start, end in batch["ranges"]],
            } for batch in project["batches"]],
        } for project in projects],
    }


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InvalidFacts("timestamps must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _text(value, where: str, column=None, *, limit: int | None = None, optional: bool = False) -> None:
    """A non-empty string without surrounding spaces, at most as long as the column it was copied from
    (``limit`` for a value that has no column of its own)."""
    limit = max_length(column) if column is not None else limit
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidFacts(f"{where} must be a non-empty string without surrounding spaces")
    if len(value) > limit:
        raise InvalidFacts(f"{where} is longer than {limit} characters")


def _keys(obj, required: frozenset, where: str, optional: frozenset = frozenset()) -> None:
    if not isinstance(obj, dict):
        raise InvalidFacts(f"{where} must be an object")
    missing, unknown = required - obj.keys(), obj.keys() - required - optional
    if missing or unknown:
        raise InvalidFacts(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")


def _check_period(period) -> None:
    _keys(period, PERIOD_KEYS, "period")
    days = []
    for key in ("start", "end"):
        value = period[key]
        try:
            day = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            day = None
        if day is None or not within_calendar(day):
            raise InvalidFacts(f"period.{key} must be a day as YYYY-MM-DD within the calendar")
        days.append(day)
    if days[1] < days[0]:
        raise InvalidFacts("period.end must not be before period.start")


def quantity_units_of(facts: dict) -> int:
    text = facts.get("quantity_tonnes")
    if not isinstance(text, str) or not _QUANTITY.match(text):
        raise InvalidFacts('quantity_tonnes must be a decimal string with exactly 4 places, e.g. "175.4020"')
    whole, frac = text.split(".")
    return int(whole) * UNITS_PER_TONNE + int(frac)


def validate_facts(facts: dict) -> int:
    """Check the caller's facts (module docstring); returns the quantity in units."""
    _keys(facts, CALLER_KEYS, "facts", CALLER_OPTIONAL_KEYS)
    if "purpose" in facts and facts["purpose"] not in RETIREMENT_PURPOSES:
        raise InvalidFacts(f"purpose must be one of {RETIREMENT_PURPOSES}")
    _text(facts["beneficiary"], "beneficiary", Certificate.beneficiary)
    _keys(facts["buyer"], BUYER_KEYS, "buyer")
    _text(facts["buyer"]["name"], "buyer.name", Organisation.name)
    _text(facts["buyer"]["credit_code"], "buyer.credit_code", Organisation.credit_code)
    _text(facts["event"], "event", Event.name, optional=True)
    if "event_id" in facts:
        event_id = facts["event_id"]
        if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id <= 0:
            raise InvalidFacts("event_id must be a positive integer")
        if facts["event"] is None:
            raise InvalidFacts("event_id needs the event's name in event")
    if "period" in facts:
        _check_period(facts["period"])
    _text(facts["retirement_reason"], "retirement_reason", Order.retirement_reason)
    try:
        retired_at = datetime.fromisoformat(facts["retired_at"])
    except (TypeError, ValueError):
        raise InvalidFacts("retired_at must be an ISO 8601 timestamp") from None
    if retired_at.tzinfo is None:
        raise InvalidFacts("retired_at needs a UTC offset")
    units = quantity_units_of(facts)
    if units <= 0:
        raise InvalidFacts("quantity_tonnes must be positive")
    projects = facts["projects"]
    if not isinstance(projects, list) or not projects:
        raise InvalidFacts("projects must be a non-empty list")
    counted = 0
    for p, project in enumerate(projects):
        where = f"projects[{p}]"
        _keys(project, PROJECT_KEYS, where)
        _text(project["name"], f"{where}.name", Project.name)
        for key in ("village", "township", "county"):
            _text(project[key], f"{where}.{key}", Region.name)
        if not isinstance(project["batches"], list) or not project["batches"]:
            raise InvalidFacts(f"{where}.batches must be a non-empty list")
        for b, batch in enumerate(project["batches"]):
            bwhere = f"{where}.batches[{b}]"
            _keys(batch, BATCH_KEYS, bwhere, BATCH_OPTIONAL_KEYS)
            _text(batch["serial_block"], f"{bwhere}.serial_block", limit=100)
            if "vintage" in batch:
                _text(batch["vintage"], f"{bwhere}.vintage", limit=40)
            ranges = batch["ranges"]
            if not isinstance(ranges, list) or not ranges:
                raise InvalidFacts(f"{bwhere}.ranges must be a non-empty list")
            previous_end = -1
            for r, pair in enumerate(ranges):
                if (not isinstance(pair, list) or len(pair) != 2
                        or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)):
                    raise InvalidFacts(f"{bwhere}.ranges[{r}] must be [start, end] integers")
                start, end = pair
                if not 0 <= start < end or start < previous_end:
                    raise InvalidFacts(f"{bwhere}.ranges[{r}] must be 0 <= start < end, sorted and disjoint")
                previous_end = end
                counted += end - start
    if counted != units:
        raise InvalidFacts(f"the serial ranges count {counted} units but quantity_tonnes is {units} units")
    return units


# --- numbers ---------------------------------------------------------------------------------------

def next_certificate_number(session: so.Session, year: int) -> str:
    """The next number of the year, e.g. TH-2026-000123 (see the module docstring on concurrency)."""
    stmt = (insert(session, CertificateCounter).values(year=year, last_number=1)
            .on_conflict_do_update(index_elements=["year"],
                                   set_={"last_number": CertificateCounter.last_number + 1})
            .returning(CertificateCounter.last_number))
    sequence = session.execute(stmt).scalar_one()
    return f"TH-{year:04d}-{sequence:06d}"


def _give_back_number(session: so.Session, number: str) -> None:
    """Undo our increment when the certificate turned out to exist already (we still hold the row)."""
    match = NUMBER_PATTERN.match(number)
    table = CertificateCounter.__table__
    session.execute(table.update().where(table.c.year == int(match["year"]),
                                         table.c.last_number == int(match["seq"]))
                    .values(last_number=table.c.last_number - 1))


def _platform_year(moment: datetime) -> int:
    return moment.astimezone(platform_zone()).year


# --- issuing and revoking --------------------------------------------------------------------------

def issue_certificate(session: so.Session, *, order_id: int, facts: dict) -> Certificate:
    """Sign and store the certificate of an order; idempotent per order (a second call, or a
    concurrent one, returns the certificate that exists). Flushes; the caller commits.

    The PDF is written separately (services.certificate_pdf.write_certificate_pdf), after the
    commit, so the counter row is locked for as short a time as possible."""
    existing = session.scalar(sa.select(Certificate).where(Certificate.order_id == order_id))
    if existing is not None:
        return existing
    if SERVICE_KEYS & facts.keys():
        raise InvalidFacts(f"{sorted(SERVICE_KEYS & facts.keys())} are set by issue_certificate")
    units = validate_facts(facts)
    buyer = session.scalar(sa.select(Organisation).where(Organisation.credit_code == facts["buyer"]["credit_code"]))
    if buyer is None:
        raise InvalidFacts("buyer.credit_code names no organisation")

    key = active_signing_key(session)  # registered before the time it signs is taken: inside its validity window
    issued_at = utcnow().replace(microsecond=0)
    number = next_certificate_number(session, _platform_year(issued_at))
    # A concurrent issuer for the same order committed while we waited for the counter row.
    existing = session.scalar(sa.select(Certificate).where(Certificate.order_id == order_id))
    if existing is not None:
        _give_back_number(session, number)
        return existing
    facts_json, signature = sign_facts(session, {**facts, "format": FORMAT, "number": number,
                                                 "issued_at": _iso(issued_at)}, key)
    signed = json.loads(facts_json)
    inserted = session.execute(
        insert(session, Certificate).values(
            number=number, order_id=order_id, buyer_organisation_id=buyer.id, beneficiary=facts["beneficiary"],
            quantity_units=units, facts_json=facts_json, signature=signature, key_id=signed["key_id"],
            issued_at=issued_at)
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(Certificate.id)).scalar_one_or_none()
    if inserted is None:
        _give_back_number(session, number)
        return session.scalars(sa.select(Certificate).where(Certificate.order_id == order_id)).one()
    return session.get(Certificate, inserted)


def find_certificate(session: so.Session, number: str) -> Certificate | None:
    """Public lookup by number (anyone may verify a certificate)."""
    number = (number or "").strip().upper()
    if not NUMBER_PATTERN.match(number):
        return None
    return session.scalar(sa.select(Certificate).where(Certificate.number == number))


def revoke_certificate(session: so.Session, *, number: str, actor: User, reason: str) -> Certificate:
    """The bureau withdraws a certificate (a wrong beneficiary, fraud …). The retired units stay
    retired: revocation changes what the certificate attests, not the ledger."""
    require_bureau(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_l("Give the reason for revoking this certificate."), "reason")
    limit = max_length(Certificate.revocation_reason)
    if len(reason) > limit:
        raise ValidationFailed(_l("The reason is too long (at most %(n)d characters).", n=limit), "reason")
    certificate = find_certificate(session, number)
    if certificate is None:
        raise NotFound(_l("No certificate has this number."))
    if certificate.revoked_at is not None:
        raise Conflict(_l("This certificate was already revoked."))
    certificate.revoked_at = utcnow()
    certificate.revoked_by_id = actor.id
    certificate.revocation_reason = reason
    session.flush()
    return certificate


# --- verification ----------------------------------------------------------------------------------

def check_signed_facts(facts: dict, signature: str, public_keys: dict[str, str | PublishedKey]) -> tuple[bool, str]:
    """Is this a certificate we signed? (ok, reason). ``public_keys`` maps key_id → PEM, or → PublishedKey
    with the key's validity window, in which the signed ``issued_at`` must then fall."""
    if not isinstance(facts, dict) or facts.get("format") not in SIGNED_FORMATS:
        return False, _("This is not a Tanhui certificate record (unknown format).")
    key_id = facts.get("key_id")
    key = public_keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        return False, _("The certificate names a signing key (%(key)s) that Tanhui never published.", key=key_id)
    pem = key.public_key_pem if isinstance(key, PublishedKey) else key
    try:
        payload = canonical_json(facts)
    except (TypeError, ValueError):
        return False, _("The certificate's facts are malformed.")
    if not verify_signature(payload, signature, pem):
        return False, _("The signature does not match the facts: the certificate was altered or forged.")
    if isinstance(key, PublishedKey):
        try:
            issued_at = datetime.fromisoformat(str(facts.get("issued_at")))
        except ValueError:
            issued_at = None
        if issued_at is None or issued_at.tzinfo is None or not key.covers(issued_at):
            return False, _("The certificate claims to be issued at %(time)s, outside the validity of its key "
                            "%(key)s.", time=facts.get("issued_at"), key=key_id)
    return True, _("The signature is valid (key %(key)s).", key=key_id)


def public_record(certificate: Certificate) -> dict:
    return {"number": certificate.number, "facts": json.loads(certificate.facts_json),
            "signature": certificate.signature, "key_id": certificate.key_id, "algorithm": "Ed25519",
            "revoked": certificate.revoked,
            "revoked_at": certificate.revoked_at.isoformat() if certificate.revoked_at else None,
            "revocation_reason": certificate.revocation_reason}


def verify_certificate_record(session: so.Session, number: str) -> dict:
    """The public verdict on a number: ``found``, ``valid`` (authentic and not revoked),
    ``signature_valid``, ``revoked`` (+ when and why), ``reason`` (one sentence for people), and the
    public record (facts, signature, key_id) when found."""
    certificate = find_certificate(session, number)
    if certificate is None:
        return {"number": (number or "").strip(), "found": False, "valid": False, "signature_valid": False,
                "revoked": False, "reason": _("No certificate has this number.")}
    record = public_record(certificate)
    keys = {key_id: PublishedKey(pem, created, retired) for key_id, pem, created, retired in session.execute(
        sa.select(SigningKey.key_id, SigningKey.public_key_pem, SigningKey.created_at, SigningKey.retired_at)
        .where(SigningKey.key_id == certificate.key_id))}
    signature_valid, reason = check_signed_facts(record["facts"], certificate.signature, keys)
    facts = record["facts"]
    if signature_valid and (facts.get("number") != certificate.number or facts.get("key_id") != certificate.key_id
                            or facts.get("quantity_tonnes") != format_tonnes(certificate.quantity_units)
                            or facts.get("beneficiary") != certificate.beneficiary):
        signature_valid, reason = False, _("The stored record does not match its signed facts.")
    if signature_valid and certificate.revoked:
        reason = _("Revoked by the bureau: %(reason)s", reason=certificate.revocation_reason)
    elif signature_valid:
        reason = _("Valid: issued by Tanhui and signed with key %(key)s.", key=certificate.key_id)
    return {**record, "found": True, "valid": signature_valid and not certificate.revoked,
            "signature_valid": signature_valid, "reason": reason}
