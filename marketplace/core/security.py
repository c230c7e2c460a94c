"""Security headers on every response, and the language hook."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from flask import Flask, request

from marketplace.core.i18n import remember_requested_language


@lru_cache(maxsize=8)
def _content_security_policy(stripe_js_url: str) -> str:
    stripe = urlsplit(stripe_js_url)
    stripe_origin = f"{stripe.scheme}://{stripe.netloc}" if stripe.netloc else ""
    extra = f" {stripe_origin}" if stripe_origin else ""
    frames, connects = extra, extra
    if stripe.netloc == "js.stripe.com":
        # Stripe.js posts card data to its API and shows 3-D Secure in a frame from hooks.stripe.com;
        # the emulator's script talks to its own origin only.
        frames += " https://hooks.stripe.com"
        connects += " https://api.stripe.com"
    # No inline script anywhere: scripts come from our origin and Stripe.js's.
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self'{extra}",
        f"frame-src 'self'{frames}",
        f"connect-src 'self'{connects}",
        "img-src 'self' data:",
        "style-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


#: Paths whose answers are private to the caller: never stored by a cache.
PRIVATE_PATHS = ("/api/", "/account", "/bureau", "/buyers", "/sellers",
                 # the two-step secret and recovery codes shown while signing in; password-reset links
                 "/login/", "/password/")


@lru_cache(maxsize=8)
def security_headers(stripe_js_url: str, hsts: bool) -> tuple[tuple[str, str], ...]:
    """The headers every answer carries (unless a view set its own), built once per configuration."""
    headers = [
        ("Content-Security-Policy", _content_security_policy(stripe_js_url)),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if hsts:
        headers.append(("Strict-Transport-Security", "max-age=31536000"))
    return tuple(headers)


def register_security(app: Flask) -> None:
    app.before_request(remember_requested_language)

    @app.after_request
    def _headers(response):
        headers = response.headers
        present = {key.lower() for key, _value in headers.items()}
        for key, value in security_headers(app.config["STRIPE_JS_URL"], bool(app.config.get("SESSION_COOKIE_SECURE"))):
            if key.lower() not in present:
                headers.add(key, value)
        if "cache-control" not in present and request.path.startswith(PRIVATE_PATHS):
            headers.add("Cache-Control", "no-store")
        return response
