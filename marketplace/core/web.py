"""What every feature's pages share: the role guard, template filters and the layout's context."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache, wraps
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Flask, abort, current_app, make_response, request, session, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required
from werkzeug.routing import BuildError

from marketplace.config import PROJECT_ROOT
from marketplace.core import public_cache
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


# --- public reads: cached answers, conditional GET ----------------------------------------------------

#: Public answers may be stored by browsers and proxies but are checked again (ETag) before each use.
PUBLIC_CACHE_CONTROL = "public, no-cache"
#: A view's own headers that a cached answer keeps (the listings' next-page link).
KEPT_HEADERS = ("Link",)


def public_read(*scopes: str, anonymous_only: bool = True, cacheable=None):
    """A GET whose answer is the same for every visitor (in one language) and is drawn only from the tables
    of ``scopes`` (public_cache.watch): answered from the cache while those scopes' versions stand, with an
    ETag (``If-None-Match`` → 304) derived from the versions. Pages (``anonymous_only``) are cached for
    visitors who are not signed in and have no message waiting; a signed-in user's page is drawn live.
    ``cacheable()`` may refuse the cache for a request (e.g. filters over tables outside the scopes)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_app.config.get("PUBLIC_CACHE", True) or (
                    anonymous_only and (current_user.is_authenticated or session.get("_flashes"))) or (
                    cacheable is not None and not cacheable()):
                return view(*args, **kwargs)
            from marketplace.extensions import db  # noqa: PLC0415 — the web shell stays importable without it

            version = public_cache.versions(db.session, scopes)
            key = public_cache.cache_key(current_app.config["PUBLIC_CACHE_BUILD"], request.path,
                                         urlencode(sorted(request.args.items(multi=True))),
                                         str(get_locale()), version)
            etag = key.rsplit(":", 1)[1][:24]
            if request.if_none_match.contains(etag):
                response = current_app.response_class(status=304)
                return _public_headers(response, etag, anonymous_only)
            stored = _cache_get(key)
            if stored is None:
                # Stored only when drawing it left the session alone (no CSRF token, nobody's own data), so the
                # answer is everybody's; a visitor whose session changes anyway is still served it (privately).
                untouched = not session.modified
                response = make_response(view(*args, **kwargs))
                if (response.status_code != 200 or response.direct_passthrough or "Set-Cookie" in response.headers
                        or not untouched or session.modified):
                    return response
                _cache_set(key, (response.get_data(), response.headers.get("Content-Type"),
                                 [(k, v) for k, v in response.headers.items() if k in KEPT_HEADERS]))
            else:
                body, content_type, headers = stored
                response = current_app.response_class(body, content_type=content_type, headers=headers)
            return _public_headers(response, etag, anonymous_only)

        return wrapped

    return decorator


def _public_headers(response, etag: str, anonymous_only: bool):
    response.set_etag(etag)
    response.headers["Cache-Control"] = PUBLIC_CACHE_CONTROL
    if anonymous_only:
        response.vary.add("Cookie")  # a signed-in visitor's copy of the page differs
    return response


def _cache_get(key: str):
    try:
        return public_cache.cache.get(key)
    except Exception:  # noqa: BLE001 — a cache that does not answer: draw the page live
        current_app.logger.warning("public cache unavailable (get)", exc_info=True)
        return None


def _cache_set(key: str, value) -> None:
    try:
        public_cache.cache.set(key, value)
    except Exception:  # noqa: BLE001
        current_app.logger.warning("public cache unavailable (set)", exc_info=True)


def build_id(*roots: Path) -> str:
    """Names, sizes and times of the code and templates: another deployment never reads this one's pages."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in {".py", ".html", ".mo", ".po"}:
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


# --- static files: fingerprinted URLs, cached for a year ------------------------------------------------

#: A fingerprinted static file never changes under its URL (a new content is a new URL).
IMMUTABLE = "public, max-age=31536000, immutable"


@lru_cache(maxsize=512)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:  # noqa: ARG001 — size and time key the cache
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:12]


def static_digest(app: Flask, filename: str) -> str | None:
    """The first 12 hex digits of the file's SHA-256, or None when there is no such file."""
    folder = app.static_folder
    if not folder:
        return None
    path = os.path.join(folder, filename)
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    if not os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep):
        return None
    return _file_digest(path, stat.st_size, stat.st_mtime_ns)


def _install_public_guard(app: Flask) -> None:
    @app.after_request
    def _no_public_cookie(response):
        """A public answer never carries a cookie: if the session changed on the way (a language chosen),
        the answer is the visitor's own."""
        if response.headers.get("Cache-Control") == PUBLIC_CACHE_CONTROL and session.modified:
            response.headers["Cache-Control"] = "private, no-cache"
        return response


def _install_static_fingerprints(app: Flask) -> None:
    @app.url_defaults
    def _fingerprint(endpoint, values):
        if endpoint == "static" and "filename" in values and "v" not in values:
            digest = static_digest(app, values["filename"])
            if digest:
                values["v"] = digest

    @app.after_request
    def _immutable(response):
        if request.endpoint == "static" and response.status_code in (200, 304) and request.view_args:
            version = request.args.get("v")
            if version and version == static_digest(app, request.view_args.get("filename", "")):
                response.headers["Cache-Control"] = IMMUTABLE
                response.expires = None
        return response


def init_web(app: Flask) -> None:
    """Template globals and filters every feature's templates use."""
    app.config.setdefault("PUBLIC_CACHE_BUILD", build_id(PROJECT_ROOT / "marketplace", PROJECT_ROOT / "templates"))
    public_cache.init_cache(app)
    _install_static_fingerprints(app)
    _install_public_guard(app)
    app.add_template_global(submission_key, "submission_key")
    app.add_template_filter(display_tonnes, "tonnes")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(format_serial_range, "serial_range")
    app.add_template_filter(lambda amount: f"{format_cny(amount)}", "cny")
    app.context_processor(_layout)
