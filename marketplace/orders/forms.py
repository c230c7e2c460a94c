"""The buyer's order form, and the bureau's bank reference form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import DateInput

from marketplace.core.db import max_length
from marketplace.orders.models import Order


class OrderForm(FlaskForm):
    event_id = SelectField(_l("Event to neutralise"), validators=[Optional()])
    quantity = StringField(_l("Quantity (t CO2e)"), validators=[Optional(), Length(max=30)])
    listing_id = SelectField(_l("Credits from"), validators=[Optional()])
    prefer_county_id = SelectField(_l("Prefer credits from this county"), validators=[Optional()])
    eligible_only = BooleanField(_l("Only credits eligible for large-event neutralisation"))
    payment_method = RadioField(_l("Payment"), choices=[("card", _l("Card (online)")),
                                                        ("bank_transfer", _l("Bank transfer"))],
                                default="bank_transfer", validators=[DataRequired()])
    beneficiary = StringField(_l("Beneficiary (printed on the certificate)"),
                              validators=[DataRequired(), Length(max=max_length(Order.beneficiary))])
    purpose = SelectField(_l("Purpose of the retirement"), choices=[
        ("", _l("Large-event carbon neutrality with an event, else voluntary offsetting")),
        ("event", _l("Large-event carbon neutrality")), ("zero_carbon_org", _l("Zero-carbon organisation")),
        ("ecological_compensation", _l("Ecological damage compensation")), ("voluntary", _l("Voluntary offsetting")),
        ("other", _l("Other purpose"))], validators=[Optional()])
    # Text fields: the service reads the days (one set of messages for the form and the API).
    period_start = StringField(_l("Period covered: first day (optional)"), widget=DateInput(),
                               validators=[Optional(), Length(max=10)])
    period_end = StringField(_l("Period covered: last day (optional)"), widget=DateInput(),
                             validators=[Optional(), Length(max=10)])
    retirement_reason = TextAreaField(_l("Retirement reason (printed on the certificate)"),
                                      validators=[DataRequired(), Length(max=max_length(Order.retirement_reason))])
    request_token = HiddenField()


class ReferenceForm(FlaskForm):
    #: the bank's reference of a transfer received or of a refund made (both columns take the same length)
    reference = StringField(_l("Bank reference"), validators=[DataRequired(), Length(max=max_length(Order.bank_reference))])
