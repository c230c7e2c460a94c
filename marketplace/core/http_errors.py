"""One place that turns errors into responses: JSON {"error": {...}} for the API, a page otherwise."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import Forbidden, HTTPException, Unauthorized

from marketplace.core.errors import DomainError
from marketplace.core.uploads import upload_limit_mb
from marketplace.extensions import db, login_manager

log = logging.getLogger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
         422: "validation_error", 428: "precondition_required", 429: "rate_limited", 500: "server_error",
         503: "service_unavailable"}

#: Seconds a client is asked to wait (Retry-After) after the database did not answer: a restart or a
#: fail-over takes a few seconds, and the next request's pool pre-ping then finds a fresh connection.
DATABASE_RETRY_AFTER_SECONDS = 5


class Explained:
    """Mixed into an HTTP error whose ``description`` is written for the person who reads it (translated):
    the answer says it instead of the status's default message. Werkzeug's and Flask's own descriptions
    are English and technical, so an HTTP error without this mixin gets the default message."""


class ExplainedUnauthorized(Explained, Unauthorized):
    pass


class ExplainedForbidden(Explained, Forbidden):
    pass


def default_message(status: int) -> str:
    messages = {
        400: _("The request could not be understood."),
        401: _("Please sign in (or send a valid API token)."),
        403: _("You do not have access to this."),
        404: _("Not found. The page or object does not exist, or it is not yours to see."),
        405: _("This method is not allowed here."),
        409: _("This conflicts with the current state. Reload and try again."),
        413: _("The upload is too large (at most %(mb)d MB).", mb=upload_limit_mb()),
        415: _("Send the request body as JSON (Content-Type: application/json)."),
        422: _("Some of the data is not valid."),
        429: _("Too many attempts. Please wait a minute and try again."),
        500: _("Something went wrong on our side. The error has been logged; please try again later."),
        503: _("The service is briefly unavailable. Nothing was changed; please try again in a moment."),
    }
    return messages.get(status, _("The request could not be completed."))


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/")) or (
        request.accept_mimetypes.best == "application/json")


def error_response(status: int, message: str, code: str | None = None, field: str | None = None):
    code = code or CODES.get(status, "error")
    if wants_json():
        body = {"code": code, "message": str(message)}
        if field:
            body["field"] = field
        return jsonify(error=body), status
    try:
        return render_template("core/error.html", status=status, message=str(message)), status
    except Exception:  # noqa: BLE001 — never fail while reporting a failure
        log.exception("error page failed to render")
        return Response(f"{status}: {message}", status=status, mimetype="text/plain")


def _marshmallow_message(text: str) -> str:
    """marshmallow speaks English; say its common messages in the user's language."""
    known = {
        "Missing data for required field.": _("This field is required."),
        "Unknown field.": _("This field is not part of the request."),
        "Not a valid string.": _("Send text here."),
        "Not a valid integer.": _("Send a whole number here."),
        "Not a valid date.": _("Send a date as YYYY-MM-DD."),
        "Not a valid boolean.": _("Send true or false here."),
        "Not a valid list.": _("Send a list here."),
        "Invalid input type.": _("The request body must be a JSON object."),
        "Field may not be null.": _("This field may not be empty."),
    }
    if text in known:
        return known[text]
    if text.startswith("Must be one of:"):
        return _("Choose one of: %(choices)s", choices=text.partition(":")[2].strip().rstrip("."))
    if text.startswith(("Must be greater", "Must be less")):
        return _("The value is out of range (%(detail)s).", detail=text.rstrip("."))
    if text.startswith("Length must be") or text.startswith("Longer than"):
        return _("The value is too long or too short (%(detail)s).", detail=text.rstrip("."))
    return text


def _smorest_validation(exc: HTTPException):
    """flask-smorest puts marshmallow's messages in exc.data; report the first field and message."""
    messages = (getattr(exc, "data", None) or {}).get("messages") or {}
    for _location, fields in messages.items():
        if isinstance(fields, dict):
            for field, errs in fields.items():
                first = errs[0] if isinstance(errs, list) and errs else errs
                if isinstance(first, dict):  # nested: take the first leaf
                    field, first = f"{field}.{next(iter(first))}", next(iter(first.values()))
                    first = first[0] if isinstance(first, list) and first else first
                return _marshmallow_message(str(first)), field
    return None, None


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    if isinstance(exc, CSRFError):
        log.info("csrf: %s", exc.description)
        back = _back_to_the_form() if not wants_json() and request.method == "POST" else None
        if back is not None:
            return back
        return error_response(400, _("The form has expired or was sent from elsewhere. Reload the page and try again."),
                              "csrf_failed")
    if status == 413 and not wants_json() and request.method == "POST":
        form_page = _form_page()
        if form_page is not None:  # answered on the form it came from; site.js fills the other fields in again
            flash(_("The file is too large: at most %(mb)d MB. Nothing was uploaded; choose a smaller file.",
                    mb=upload_limit_mb()), "kept")
            return redirect(form_page)
    if status == 422:
        message, field = _smorest_validation(exc)
        if message:
            return error_response(422, message, "validation_error", field)
    return error_response(status, exc.description if isinstance(exc, Explained) else default_message(status))


#: The session key naming the form page whose typed values the browser keeps for after the sign-in.
KEPT_FORM_KEY = "kept_form_for"


def _form_page() -> str | None:
    """The page the refused form was on: the Referer if it is this site's, as a relative path."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return None
    if not referrer.path.startswith("/") or referrer.path.startswith("//"):
        return None
    try:  # a page answered to a POST (a refused form) has no GET of its own: then there is no page to go back to
        current_app.url_map.bind(request.host).match(referrer.path, method="GET")
    except HTTPException:
        return None
    return referrer.path + (f"?{referrer.query}" if referrer.query else "")


def _back_to_the_form() -> Response | None:
    """A form refused for its CSRF token: the session ended (expired, or signed out in another tab) or
    the page was too old. Instead of a bare 400, send the person back to the form — through the sign-in
    if they are signed out — with a clear message; the page's script (site.js) kept what was typed in
    the tab and fills it in again when the form page says so (a "kept" flash)."""
    form_page = _form_page()
    if form_page is None:  # not sent from one of our pages (a script, a stripped Referer): the 400 page
        return None
    login_page = url_for("auth.login")
    if getattr(current_user, "is_authenticated", False):
        flash(_("The form had expired, so it was not sent. What you typed is filled in again: check it and "
                "send it once more."), "kept")
        return redirect(form_page)
    if form_page.split("?")[0] == login_page:
        flash(_("The sign-in form had expired. Please sign in again."), "warning")
        return redirect(form_page)
    session[KEPT_FORM_KEY] = form_page
    flash(_("Your session has ended (or you signed out in another tab), so the form was not sent. Sign in "
            "again to go back to it; what you typed is kept in this browser tab."), "warning")
    return redirect(url_for("auth.login", next=form_page))


def handle_domain_error(exc: DomainError):
    return error_response(exc.status, exc.message, exc.code, exc.field)


def database_unreachable(exc: Exception) -> bool:
    """The database went away (restart, fail-over, network): the connection was lost or could not be made.
    Not a bug: the transaction was rolled back by the server, nothing was changed, and trying again later
    works (pool pre-ping replaces the dead connections)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa.exc.OperationalError) and not isinstance(exc.orig, _CONCURRENCY_ERRORS)


def _concurrency_errors() -> tuple[type, ...]:
    """Deadlocks and serialisation failures are OperationalErrors too, but the database did answer."""
    try:
        import psycopg.errors as pg
    except ImportError:  # pragma: no cover — psycopg is a runtime dependency
        return ()
    return (pg.DeadlockDetected, pg.SerializationFailure, pg.LockNotAvailable, pg.QueryCanceled)


_CONCURRENCY_ERRORS = _concurrency_errors()


def handle_unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if database_unreachable(exc):
        log.warning("database unreachable on %s %s: %s", request.method, request.path, exc)
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001,S110 — the connection is gone; the pool drops it
            pass
        # The rollback expired the signed-in user, and the database cannot load it again: the page is drawn
        # as for a visitor (the session cookie is untouched; the next page shows the user again).
        g._login_user = login_manager.anonymous_user()
        response = make_response(error_response(503, default_message(503), "database_unavailable"))
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    log.exception("unhandled error on %s %s", request.method, request.path)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001,S110 — the error page must render even if the database is gone
        pass
    return error_response(500, default_message(500))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected)
