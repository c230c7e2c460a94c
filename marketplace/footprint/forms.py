"""Forms of the footprint pages. Numbers are text fields: the services parse them (one set of messages)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import DateInput

from marketplace.core.db import max_length
from marketplace.footprint.emission_factors import UNITS
from marketplace.footprint.models import CATEGORIES, ActivityLine, EmissionFactor, Event, ReductionMeasure
from marketplace.footprint.service import CATEGORY_LABELS, unit_label
from marketplace.footprint.sources import SOURCES


def category_choices():
    return [(c, CATEGORY_LABELS[c]) for c in CATEGORIES]


def factor_choices(factors, language: str, *, units: tuple[str, ...] | None = None):
    """Factor codes grouped by category for a <select>: "name (unit)"."""
    groups: dict[str, list] = {}
    for factor in factors:
        if units and factor.unit not in units:
            continue
        groups.setdefault(str(CATEGORY_LABELS[factor.category]), []).append(
            (factor.code, f"{factor.name(language)} ({unit_label(factor.unit)})"))
    return groups


def source_choices():
    """The guideline's sources grouped by category for a <select>, after a blank "by the factor" choice."""
    groups: dict = {None: [("", _l("As the emission factor says (default)"))]}
    for source in SOURCES:
        groups.setdefault(str(CATEGORY_LABELS[source.category]), []).append((source.code, source.name))
    return groups


class EventForm(FlaskForm):
    name = StringField(_l("Event name"), validators=[DataRequired(), Length(max=max_length(Event.name))])
    starts_on = StringField(_l("First day"), widget=DateInput(), validators=[DataRequired()])
    ends_on = StringField(_l("Last day"), widget=DateInput(), validators=[DataRequired()])
    location = StringField(_l("Location"), validators=[DataRequired(), Length(max=max_length(Event.location))])
    attendees = StringField(_l("Attendees (optional)"), validators=[Optional(), Length(max=12)])
    organiser = StringField(_l("Organiser (optional)"), validators=[Optional(), Length(max=max_length(Event.organiser))])
    boundary = TextAreaField(_l("Accounting boundary (optional)"),
                             validators=[Optional(), Length(max=max_length(Event.boundary))])


class ActivityForm(FlaskForm):
    category = SelectField(_l("Category"), validators=[DataRequired()])
    factor_code = SelectField(_l("Emission factor"), validators=[DataRequired()])
    source = SelectField(_l("Emission source (guideline)"), validators=[Optional()])
    quantity = StringField(_l("Quantity (in the factor's unit)"), validators=[DataRequired(), Length(max=30)])
    description = StringField(_l("Note (optional)"),
                              validators=[Optional(), Length(max=max_length(ActivityLine.description))])


class TravelForm(FlaskForm):
    factor_code = SelectField(_l("Travel mode"), validators=[DataRequired()])
    travellers = StringField(_l("Travellers"), validators=[DataRequired(), Length(max=12)])
    distance_km = StringField(_l("One-way distance (km)"), validators=[DataRequired(), Length(max=20)])
    round_trip = BooleanField(_l("Round trip"), default=True)


class RoomNightsForm(FlaskForm):
    factor_code = SelectField(_l("Accommodation type"), validators=[DataRequired()])
    rooms = StringField(_l("Rooms"), validators=[DataRequired(), Length(max=12)])
    nights = StringField(_l("Nights"), validators=[DataRequired(), Length(max=12)])


class MealsForm(FlaskForm):
    factor_code = SelectField(_l("Meal type"), validators=[DataRequired()])
    people = StringField(_l("Diners"), validators=[DataRequired(), Length(max=12)])
    meals_each = StringField(_l("Meals each"), validators=[DataRequired(), Length(max=12)])


class VenueEnergyForm(FlaskForm):
    factor_code = SelectField(_l("Grid"), validators=[DataRequired()])
    kwh = StringField(_l("Electricity (kWh)"), validators=[DataRequired(), Length(max=30)])


class UploadForm(FlaskForm):
    file = FileField(_l("Spreadsheet (.xlsx or .csv)"), validators=[FileRequired()])


class ReductionForm(FlaskForm):
    category = SelectField(_l("Category"), validators=[DataRequired()])
    description = TextAreaField(_l("Measure"),
                                validators=[DataRequired(), Length(max=max_length(ReductionMeasure.description))])
    estimated_tonnes = StringField(_l("Estimated tCO2e avoided (optional)"), validators=[Optional(), Length(max=20)])


class FactorForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=max_length(EmissionFactor.code))])
    category = SelectField(_l("Category"), validators=[DataRequired()])
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=max_length(EmissionFactor.name_zh))])
    name_en = StringField(_l("Name (English)"), validators=[DataRequired(), Length(max=max_length(EmissionFactor.name_en))])
    unit = SelectField(_l("Unit"), validators=[DataRequired()])
    kgco2e_per_unit = StringField(_l("kg CO2e per unit"), validators=[DataRequired(), Length(max=20)])
    source = TextAreaField(_l("Source"), validators=[DataRequired(), Length(max=max_length(EmissionFactor.source))])
    year = StringField(_l("Data year"), validators=[DataRequired(), Length(max=4)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.category.choices = category_choices()
        self.unit.choices = [(u, unit_label(u)) for u in UNITS]
