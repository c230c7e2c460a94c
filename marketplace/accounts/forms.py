"""Forms of sign-in, the account page and the bureau's organisation pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from marketplace.accounts.models import ApiToken, Organisation, User
from marketplace.accounts.service import (
    DEFAULT_TOKEN_DAYS,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    TOKEN_DAYS_CHOICES,
)
from marketplace.core.db import max_length


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=max_length(User.email))])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class LanguageForm(FlaskForm):
    lang = RadioField(_l("Language"), choices=[("zh_CN", "中文"), ("en", "English")],
                      validators=[DataRequired()])


class OrganisationForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[("seller", _l("Seller (village cooperative)")),
                                            ("buyer", _l("Buyer organisation")),
                                            ("bureau", _l("Bureau")),
                                            ("evaluator", _l("Accredited third-party evaluator")),
                                            ("operator", _l("Platform operator (settlement work delegated by the bureau)"))],
                       validators=[DataRequired()])
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=max_length(Organisation.name))])
    name_en = StringField(_l("Name (English, optional)"),
                          validators=[Optional(), Length(max=max_length(Organisation.name_en))])
    credit_code = StringField(_l("Unified social credit code"), validators=[
        DataRequired(), Length(min=max_length(Organisation.credit_code), max=max_length(Organisation.credit_code))])
    contact_email = EmailField(_l("Contact e-mail (optional)"),
                               validators=[Optional(), Email(), Length(max=max_length(Organisation.contact_email))])


class UserForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=max_length(User.email))])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=max_length(User.display_name))])
    password = PasswordField(_l("Initial password"), validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)])


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=max_length(ApiToken.name))])
    scope = RadioField(_l("What it may do"), choices=[("read", _l("Read only")),
                                                      ("read_write", _l("Read and write"))],
                       default="read", validators=[DataRequired()])
    days = SelectField(_l("Valid for"), coerce=int, default=DEFAULT_TOKEN_DAYS,
                       choices=[(d, _l("%(n)d days", n=d)) for d in TOKEN_DAYS_CHOICES])


def _new_password_fields():
    return (
        PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH,
                                                                             max=MAX_PASSWORD_LENGTH)]),
        PasswordField(_l("New password again"), validators=[
            DataRequired(), EqualTo("new_password", message=_l("The two passwords differ."))]),
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"),
                                     validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    new_password, confirm = _new_password_fields()


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=max_length(User.email))])


class ResetPasswordForm(FlaskForm):
    new_password, confirm = _new_password_fields()


class TwoStepForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=20)])


class ConfirmPasswordForm(FlaskForm):
    """Changes to the second step itself ask for the password again."""

    password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
