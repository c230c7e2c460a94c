"""What every feature's pages share: the role guard, template filters and the layout's context."""

from __future__ import annotations

from functools import wraps
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Flask, abort, request, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required
from werkzeug.routing import BuildError

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


def language_url(lang: str) -> str:
    """The current page in another language: same path and query string (filters, the order form's
    event), only ``lang`` changed. A page answered to a POST (a refused form) links to its GET form:
    the same URL when it has one, else the page the form was on; site.js carries what was typed."""
    rule = request.url_rule
    if request.endpoint and rule is not None and "GET" in (rule.methods or ()):
        args = request.args.to_dict(flat=False)
        args["lang"] = [lang]
        try:
            return url_for(request.endpoint, **(request.view_args or {}), **args)
        except (BuildError, TypeError, ValueError):  # a page built from an odd URL still gets a working link
            return f"?lang={lang}"
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/") and not referrer.path.startswith("//"):
        query = [(key, value) for key, value in parse_qsl(referrer.query, keep_blank_values=True) if key != "lang"]
        return referrer.path + "?" + urlencode([*query, ("lang", lang)])
    return f"?lang={lang}"


def _layout():
    return {"navigation": navigation_for(current_user), "get_locale": get_locale, "language_url": language_url}


def init_web(app: Flask) -> None:
    """Template globals and filters every feature's templates use."""
    app.add_template_global(submission_key, "submission_key")
    app.add_template_filter(display_tonnes, "tonnes")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(format_serial_range, "serial_range")
    app.add_template_filter(lambda amount: f"{format_cny(amount)}", "cny")
    app.context_processor(_layout)
