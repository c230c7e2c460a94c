"""The emission factor library: the shipped default set, versions and retirement.

A factor version, once published, never changes (activity lines point at it, and PostgreSQL refuses
the UPDATE). The bureau corrects or updates a factor by adding a new version of the same code; the
new version becomes current and the previous one is retired, but stays for the lines that used it.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import User
from marketplace.core.db import max_length, utcnow
from marketplace.core.errors import Forbidden, NotFound, ValidationFailed
from marketplace.core.quantities import DecimalInput, parse_decimal
from marketplace.footprint.models import CATEGORIES, EmissionFactor

DEFAULT_FACTORS_CSV = Path(__file__).resolve().parent.parent / "data" / "emission_factors.csv"
_CODE = re.compile(r"^[a-z]+\.[a-z0-9_]{1,50}$")
#: The largest factor accepted: 100 t CO2e per unit of activity is already far beyond any real case.
MAX_FACTOR = Decimal("100000")
#: Factor values: ASCII digits, at most 8 decimal places (the column's scale); zero is a factor too.
FACTOR_VALUE = DecimalInput(places=8, integer_digits=10, maximum=MAX_FACTOR, allow_zero=True,
                            malformed=_l("Enter kg CO2e per unit as a decimal number with at most 8 places."),
                            too_large=_l("This factor is implausibly large."))
UNITS = ("kWh", "passenger-km", "vehicle-km", "room-night", "meal", "kg", "m³", "t", "L")


def parse_factor_value(raw, field: str = "kgco2e_per_unit") -> Decimal:
    return parse_decimal(raw, FACTOR_VALUE, field)


def current_factor(session: so.Session, code: str) -> EmissionFactor | None:
    """The version of a code that new activity lines use (None if unknown or retired)."""
    return session.scalar(sa.select(EmissionFactor).where(
        EmissionFactor.code == code, EmissionFactor.retired_at.is_(None)))


def current_factors(session: so.Session, category: str | None = None) -> list[EmissionFactor]:
    stmt = sa.select(EmissionFactor).where(EmissionFactor.retired_at.is_(None))
    if category:
        stmt = stmt.where(EmissionFactor.category == category)
    factors = session.scalars(stmt).all()
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(factors, key=lambda f: (order[f.category], f.code))


def all_factors(session: so.Session) -> list[EmissionFactor]:
    """Every version, current and retired, for the bureau's library page."""
    return session.scalars(sa.select(EmissionFactor).order_by(EmissionFactor.category, EmissionFactor.code,
                                                              EmissionFactor.version.desc())).all()


def _require_bureau(actor: User) -> None:
    if actor.role != "bureau":
        raise Forbidden(_l("Only bureau staff can change the emission factor library."))


def _validate_text(value, column, message) -> str:
    """Required text for a column (its field has the column's name); at most as long as the column takes."""
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(message, column.key)
    limit = max_length(column)
    if len(text) > limit:
        raise ValidationFailed(_l("At most %(n)d characters.", n=limit), column.key)
    return text


def publish_factor(session: so.Session, actor: User | None, *, code: str, category: str, name_zh: str,
                   name_en: str, unit: str, kgco2e_per_unit, source: str, year) -> EmissionFactor:
    """Publish a factor: version 1 of a new code, or the next version of an existing one.

    The previous current version is retired (kept for the lines that used it). ``actor`` None means
    the system (loading the shipped defaults).
    """
    if actor is not None:
        _require_bureau(actor)
    code = (code or "").strip()
    if not _CODE.match(code):
        raise ValidationFailed(_l("Codes look like category.name, e.g. venue.grid_east_2023 (lower case)."),
                               "code")
    if category not in CATEGORIES:
        raise ValidationFailed(_l("Choose one of the six categories."), "category")
    if code.split(".", 1)[0] != category:
        raise ValidationFailed(_l("The code must start with its category, e.g. %(prefix)s.",
                                  prefix=f"{category}."), "code")
    if unit not in UNITS:
        raise ValidationFailed(_l("Choose a unit from the list."), "unit")
    name_zh = _validate_text(name_zh, EmissionFactor.name_zh, _l("Enter the Chinese name."))
    name_en = _validate_text(name_en, EmissionFactor.name_en, _l("Enter the English name."))
    source = _validate_text(source, EmissionFactor.source, _l("Cite the source of the value (publication and table)."))
    value = parse_factor_value(kgco2e_per_unit)
    try:
        year = int(year)
    except (TypeError, ValueError):
        raise ValidationFailed(_l("Enter the data year, e.g. 2023."), "year") from None
    if not 1990 <= year <= 2100:
        raise ValidationFailed(_l("Enter the data year, e.g. 2023."), "year")

    previous = session.scalars(sa.select(EmissionFactor).where(EmissionFactor.code == code)
                               .order_by(EmissionFactor.version.desc()).with_for_update()).first()
    if previous is not None and previous.category != category:
        raise ValidationFailed(_l("A new version keeps the category of the code."), "category")
    if previous is not None:
        for old in session.scalars(sa.select(EmissionFactor).where(
                EmissionFactor.code == code, EmissionFactor.retired_at.is_(None))):
            old.retired_at = utcnow()
        session.flush()
    factor = EmissionFactor(code=code, version=(previous.version + 1) if previous else 1, category=category,
                            name_zh=name_zh, name_en=name_en, unit=unit, kgco2e_per_unit=value, source=source,
                            year=year)
    session.add(factor)
    session.flush()
    return factor


def retire_factor(session: so.Session, actor: User, factor_id) -> EmissionFactor:
    """Withdraw a version: no new line may use it; lines that did keep it."""
    _require_bureau(actor)
    try:
        factor = session.get(EmissionFactor, int(factor_id))
    except (TypeError, ValueError):
        factor = None
    if factor is None:
        raise NotFound(_l("Not found."))
    if factor.retired_at is None:
        factor.retired_at = utcnow()
        session.flush()
    return factor


def load_default_factors(session: so.Session, path: Path = DEFAULT_FACTORS_CSV) -> int:
    """Load the shipped factor set; versions already present are left alone. Returns how many were added."""
    added = 0
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            version = int(row["version"])
            exists = session.scalar(sa.select(EmissionFactor.id).where(
                EmissionFactor.code == row["code"], EmissionFactor.version == version))
            if exists is not None:
                continue
            latest = session.scalar(sa.select(sa.func.max(EmissionFactor.version)).where(
                EmissionFactor.code == row["code"]))
            if latest is not None and latest > version:
                continue  # the bureau has already moved this code on
            publish_factor(session, None, code=row["code"], category=row["category"], name_zh=row["name_zh"],
                           name_en=row["name_en"], unit=row["unit"], kgco2e_per_unit=row["kgco2e_per_unit"],
                           source=row["source"], year=row["year"])
            added += 1
    return added
