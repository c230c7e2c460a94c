"""Which address is the client: forwarded headers are believed only from configured reverse proxies.

Without this every user behind the proxy shares the proxy's address (one rate-limit bucket for all), and with
a blind ProxyFix anyone could choose their address by sending X-Forwarded-For. The middleware walks
X-Forwarded-For from the right, skipping addresses of trusted proxies; the first other address is the client.
Forwarded headers from anyone else are removed, so nothing further in (Flask-Login's session identifier,
the rate limiter, the audit log) can read a forged one."""

from __future__ import annotations

import ipaddress
import logging

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
              "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


def parse_networks(setting: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 172.16.0.0/12"`` → networks; a bad entry stops the start with its name."""
    networks = []
    for entry in (setting or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an address or network") from None
    return tuple(networks)


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client's address as the trusted proxies report it."""

    def __init__(self, wsgi_app, networks: tuple[Network, ...]):
        self.wsgi_app = wsgi_app
        self.networks = networks

    def client_address(self, environ) -> str:
        peer = environ.get("REMOTE_ADDR", "")
        if not _trusted(_address(peer), self.networks):
            return peer
        hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # garbage in the chain: believe nothing beyond the proxy itself
            if not _trusted(address, self.networks):
                return str(address)
        return hops[0] if hops else peer

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR", "")
        from_proxy = _trusted(_address(peer), self.networks)
        if from_proxy:
            environ["REMOTE_ADDR"] = self.client_address(environ)
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        environ["tanhui.proxy_peer"] = peer
        for header in _FORWARDED:
            environ.pop(header, None)
        return self.wsgi_app(environ, start_response)


def install_trusted_proxies(app) -> None:
    app.wsgi_app = TrustedProxies(app.wsgi_app, parse_networks(app.config.get("TRUSTED_PROXIES", "")))
