"""The settlement forms: the platform fee, payee accounts, payouts, distribution rules and households."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class FeeRuleForm(FlaskForm):
    percent = StringField(_l("Service fee (percent of each order)"), validators=[DataRequired(), Length(max=10)])
    floor = StringField(_l("At least (CNY per order)"), validators=[Optional(), Length(max=20)])
    ceiling = StringField(_l("At most (CNY per order, blank: no ceiling)"), validators=[Optional(), Length(max=20)])


class PayeeForm(FlaskForm):
    account_name = StringField(_l("Account name"), validators=[DataRequired(), Length(max=200)])
    bank_name = StringField(_l("Bank and branch"), validators=[DataRequired(), Length(max=200)])
    account_number = StringField(_l("Account number"), validators=[DataRequired(), Length(max=40)])


class RuleForm(FlaskForm):
    collective_percent = StringField(_l("Collective fund (%)"), validators=[DataRequired(), Length(max=10)])
    households_percent = StringField(_l("Member households, by shares (%)"),
                                     validators=[DataRequired(), Length(max=10)])


class HouseholdsForm(FlaskForm):
    households = TextAreaField(_l("Member households: one a line, the name and then the number of shares"),
                               validators=[DataRequired(), Length(max=200_000)])


class PayoutDecisionForm(FlaskForm):
    reference = StringField(_l("Bank reference"), validators=[Optional(), Length(max=100)])
    reason = StringField(_l("Why it failed"), validators=[Optional(), Length(max=300)])


class FapiaoRequestForm(FlaskForm):
    title = StringField(_l("Invoice title"), validators=[DataRequired(), Length(max=200)])
    tax_id = StringField(_l("Taxpayer number (unified social credit code)"), validators=[DataRequired(), Length(max=30)])
    kind = RadioField(_l("Kind"), choices=[("ordinary", _l("Ordinary VAT invoice (普票)")),
                                          ("special", _l("Special VAT invoice (专票)"))], default="ordinary",
                      validators=[DataRequired()])
    address = StringField(_l("Address and telephone"), validators=[DataRequired(), Length(max=300)])


class FapiaoRecordForm(FlaskForm):
    number = StringField(_l("Fapiao number"), validators=[DataRequired(), Length(max=40)])
    issued_on = DateField(_l("Date of issue"), validators=[DataRequired()])
    pdf = FileField(_l("The fapiao (PDF)"), validators=[FileRequired()])
