"""Forms of sign-in, the account page and the bureau's organisation pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class LanguageForm(FlaskForm):
    lang = RadioField(_l("Language"), choices=[("zh_CN", "中文"), ("en", "English")],
                      validators=[DataRequired()])


class OrganisationForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[("seller", _l("Seller (village cooperative)")),
                                            ("buyer", _l("Buyer organisation")),
                                            ("bureau", _l("Bureau"))], validators=[DataRequired()])
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English, optional)"), validators=[Optional(), Length(max=200)])
    credit_code = StringField(_l("Unified social credit code"), validators=[DataRequired(), Length(min=18, max=18)])
    contact_email = EmailField(_l("Contact e-mail (optional)"), validators=[Optional(), Email(), Length(max=254)])


class UserForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=10, max=200)])


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=100)])
