"""Language choice: ?lang= for a visit, the user's saved preference, else Chinese (zh_CN)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # workers, the command line: the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    requested = request.args.get("lang")
    if requested in languages:
        return requested
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


#: The platform zone when no application is there to say (a PDF drawn by a command-line tool).
DEFAULT_ZONE = "Asia/Shanghai"


def platform_zone() -> ZoneInfo:
    """The platform's time zone (TANHUI_TIMEZONE, Asia/Shanghai by default): every time a person reads is in it,
    whatever zone the server runs in."""
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"] if has_app_context() else DEFAULT_ZONE)


def local_time(moment: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) moment, or an ISO 8601 string with its offset (signed facts), as the platform's
    wall-clock time; the template filter ``local_time``. Pages, e-mails, PDFs and exports all use it."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(platform_zone()).strftime(fmt)


def local_date(moment: datetime | str | None) -> str:
    """The platform-zone day of a moment ("2026-11-25"); the template filter ``local_date``."""
    return local_time(moment, "%Y-%m-%d")


def zone_label(moment: datetime | None = None) -> str:
    """The platform zone's offset as people read it, "UTC+08:00", for documents read outside the site."""
    offset = (moment or datetime.now(platform_zone())).astimezone(platform_zone()).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def remember_requested_language() -> None:
    """?lang= on any page sticks for the rest of the visit."""
    requested = request.args.get("lang")
    if requested in current_app.config["LANGUAGES"] and session.get("lang") != requested:
        session["lang"] = requested


def current_language() -> str:
    """The language of the current answer as a bare code ("zh" or "en"), for data with both names."""
    locale = get_locale()
    return locale.language if locale else "zh"
