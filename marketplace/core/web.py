"""What every feature's pages share: the role guard, template filters and the layout's context."""

from __future__ import annotations

from functools import wraps

from flask import Flask, abort
from flask_babel import get_locale
from flask_login import current_user, login_required

from marketplace.core.i18n import local_date, local_time
from marketplace.core.navigation import navigation_for
from marketplace.core.once import submission_key
from marketplace.core.quantities import display_tonnes, format_cny, format_serial_range


def role_required(*roles: str):
    """Signed-in users of the given organisation kinds only (others get 403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _layout():
    return {"navigation": navigation_for(current_user), "get_locale": get_locale}


def init_web(app: Flask) -> None:
    """Template globals and filters every feature's templates use."""
    app.add_template_global(submission_key, "submission_key")
    app.add_template_filter(display_tonnes, "tonnes")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(format_serial_range, "serial_range")
    app.add_template_filter(lambda amount: f"{format_cny(amount)}", "cny")
    app.context_processor(_layout)
