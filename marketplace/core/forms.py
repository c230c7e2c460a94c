"""Forms shared across blueprints (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm


def form_error(form, exc) -> None:
    """Show a domain error (services.errors.DomainError) beside its field, or above the form."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, str(exc.message)]
    else:
        form.form_errors.append(str(exc.message))


class EmptyForm(FlaskForm):
    """For buttons that only post (logout, confirm): the CSRF token is the whole form."""
