"""A cached public answer for an anonymous visitor, served before Flask's per-request work.

A thin WSGI layer in front of the application. For the public reads only (``ROUTES``: a GET with no query
string, no ``Authorization`` header and no cookie but a session cookie that carries nothing but a language
choice), it reads the scopes' versions (``public_cache.read_versions``), derives the same cache key and ETag
as ``core.web.public_read`` and answers with the complete response the application itself sent for that key
(status, every header, body) — or its 304 to a matching ``If-None-Match``. Those complete responses are
stored by this layer when a request it could have answered went through the application instead: it keeps
what the application sent only when it is a public answer (``Cache-Control: public, no-cache``, no cookie set,
no rate-limit header) whose ETag is the one this layer derived from the versions it read first. The security
headers, ``Vary`` and cache headers are therefore the application's own, byte for byte; a version change
retires the stored response with the rest of the scope's answers.

Anything else goes through the application: another path or method, a query string, any other cookie (a
remember-me cookie, a signed-in session, a session with a message or a form token), a session cookie that does
not verify, a miss, and any error (Redis or PostgreSQL not answering).

Rate limiting: no per-address limit applies to the public reads (the limiter guards the sign-in forms), so
the answers given here are not counted either; a cap on anonymous reads belongs in the reverse proxy.
"""

from __future__ import annotations

import logging
import re

from babel import Locale
from werkzeug.http import parse_cookie, parse_etags

from marketplace.core import public_cache

log = logging.getLogger(__name__)

#: (path pattern, the scopes its ``public_read`` names): a wrong entry only costs hits (the ETags differ)
ROUTES: tuple[tuple[re.Pattern, tuple[str, ...]], ...] = (
    (re.compile(r"^/$"), ()),
    (re.compile(r"^/registry/$"), ("registry",)),
    (re.compile(r"^/verify/[A-Za-z0-9-]{1,64}$"), ("retirements",)),
    (re.compile(r"^/api/v1/listings$"), ("registry",)),
    (re.compile(r"^/api/v1/public/retirements$"), ("retirements",)),
)



class PublicFastPath:
    def __init__(self, wsgi_app, app):
        self.wsgi_app = wsgi_app
        self.app = app
        config = app.config
        self.session_cookie = config.get("SESSION_COOKIE_NAME", "session")
        # the language code a session holds → the locale as the cache key spells it (Babel's: zh_CN is zh_Hans_CN)
        self.languages = {language: str(Locale.parse(language)) for language in config["LANGUAGES"]}
        self.default_locale = str(Locale.parse(config["BABEL_DEFAULT_LOCALE"]))
        self.max_age = int(app.permanent_session_lifetime.total_seconds())
        self._serializer = None
        self._backend = None
        #: answers given here ("hit") and the application's answers kept ("stored"), since the start
        self.counts = {"hit": 0, "stored": 0}

    # --- what this layer may answer --------------------------------------------------------------

    def _scopes(self, environ) -> tuple[str, ...] | None:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING") or environ.get("HTTP_AUTHORIZATION"):
            return None
        if environ.get("SCRIPT_NAME"):
            return None
        path = environ.get("PATH_INFO", "")
        for pattern, scopes in ROUTES:
            if pattern.match(path):
                return scopes
        return None

    def _locale(self, environ) -> str | None:
        """The visitor's language when the cookies prove the visitor anonymous, else None."""
        header = environ.get("HTTP_COOKIE")
        if not header:
            return self.default_locale
        cookies = parse_cookie(header)
        if set(cookies) - {self.session_cookie}:
            return None
        value = cookies.get(self.session_cookie)
        if not value:
            return self.default_locale
        if self._serializer is None:
            self._serializer = self.app.session_interface.get_signing_serializer(self.app)
        if self._serializer is None:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age)
        except Exception:  # noqa: BLE001 — a cookie that does not verify: the application decides
            return None
        if not isinstance(data, dict) or set(data) - {"lang"}:
            return None
        if "lang" not in data:
            return self.default_locale
        return self.languages.get(data["lang"]) if isinstance(data["lang"], str) else None

    def _cache(self):
        if self._backend is None:
            self._backend = self.app.extensions["cache"][public_cache.cache]
        return self._backend

    # --- the WSGI call -----------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        try:
            key = self._key(environ)
        except Exception:  # noqa: BLE001 — PostgreSQL or anything else not answering: the normal path
            log.warning("public fast path unavailable", exc_info=True)
            key = None
        if key is None:
            return self.wsgi_app(environ, start_response)
        etag = key.rsplit(":", 1)[1][:24]
        conditional = parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(etag)
        stored_key = ("fast304:" if conditional else "fast:") + key
        try:
            stored = self._cache().get(stored_key)
        except Exception:  # noqa: BLE001 — the cache not answering: the normal path
            log.warning("public fast path unavailable (get)", exc_info=True)
            return self.wsgi_app(environ, start_response)
        if stored is not None:
            status, headers, body = stored
            self.counts["hit"] += 1
            start_response(status, list(headers))
            return [body]
        return self._through(environ, start_response, stored_key, etag)

    def _key(self, environ) -> str | None:
        config = self.app.config
        if not config.get("PUBLIC_CACHE", True) or not config.get("PUBLIC_FAST_PATH", True):
            return None
        scopes = self._scopes(environ)
        if scopes is None:
            return None
        locale = self._locale(environ)
        if locale is None:
            return None
        version = public_cache.read_versions(self.app, scopes)
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        return public_cache.cache_key(config["PUBLIC_CACHE_BUILD"], path, "", locale, version)

    def _through(self, environ, start_response, stored_key: str, etag: str):
        """The application answers; a public answer under this layer's ETag is kept for the next visitor."""
        seen = {}

        def capture(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, list(headers)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.wsgi_app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        if self._keepable(seen, etag):
            try:
                self._cache().set(stored_key, (seen["status"], seen["headers"], body))
                self.counts["stored"] += 1
            except Exception:  # noqa: BLE001
                log.warning("public fast path unavailable (set)", exc_info=True)
        return [body]

    @staticmethod
    def _keepable(seen: dict, etag: str) -> bool:
        status = seen.get("status", "")
        if not (status.startswith("200 ") or status.startswith("304 ")):
            return False
        headers = {}
        for name, value in seen["headers"]:
            headers.setdefault(name.lower(), []).append(value)
        if "set-cookie" in headers or any(name.startswith(("x-ratelimit", "retry-after")) for name in headers):
            return False
        return headers.get("cache-control") == ["public, no-cache"] and headers.get("etag") == [f'"{etag}"']


def install_public_fast_path(app) -> None:
    """Outermost: in front of the trusted-proxy layer too (nothing answered here reads the client's address)."""
    app.wsgi_app = PublicFastPath(app.wsgi_app, app)
