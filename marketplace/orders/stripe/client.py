"""A small Stripe API client on ``requests``: form-encoded calls, timeouts, careful retries, typed errors.

Retries happen only where repeating the call cannot do harm twice: timeouts, dropped connections,
5xx and 429 answers. Every retry sends byte-identical parameters and the same Idempotency-Key, so
Stripe itself replays the first answer instead of acting again. (The local emulator ignores the
key; services.payments de-duplicates on its own for that reason.) A 4xx answer (a declined card,
a bad parameter) is final and raises ``StripeError`` at once.

The module-level functions use the application's client (``get_client()``, built from
STRIPE_API_BASE and STRIPE_SECRET_KEY); tests and scripts may build a ``StripeClient`` directly.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import requests
from flask import current_app

log = logging.getLogger(__name__)

#: Durations are whole milliseconds (no binary fractions anywhere near money code).
#: Time to wait for a TCP connection, and for an answer once connected. A card confirmation can
#: take a few seconds at the card network; ten seconds is Stripe's own guidance for a patient client.
CONNECT_TIMEOUT_MS = 3_000
READ_TIMEOUT_MS = 10_000
#: Attempts in all (the first call and two retries); then StripeUnavailable.
MAX_ATTEMPTS = 3
#: First back-off, doubled each retry, times a random jitter in [0.5, 1.5).
BACKOFF_MS = 500
#: A 429's Retry-After (whole seconds, RFC 9110) is honoured up to this long.
MAX_RETRY_AFTER_MS = 5_000


class StripeError(Exception):
    """Stripe refused the request (4xx): a declined card, a bad parameter, an unknown id.

    ``code`` is Stripe's error code (``card_declined``, ``resource_missing`` …), ``decline_code``
    the issuer's reason when Stripe gives one, ``http_status`` the status of the answer.
    """

    def __init__(self, code: str | None, message: str, http_status: int, decline_code: str | None = None,
                 *, error_type: str | None = None, payment_intent: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.decline_code = decline_code
        self.error_type = error_type
        #: Stripe attaches the PaymentIntent to errors of confirm calls (the emulator does not)
        self.payment_intent = payment_intent

    @property
    def is_card_error(self) -> bool:
        return self.http_status == 402 or self.error_type == "card_error"

    def __repr__(self) -> str:
        return (f"StripeError(code={self.code!r}, message={self.message!r}, http_status={self.http_status}, "
                f"decline_code={self.decline_code!r})")


class StripeUnavailable(Exception):
    """Stripe could not be reached or kept failing (timeouts, 5xx, 429) after every retry."""

    def __init__(self, message: str, *, attempts: int, last_status: int | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status


def encode_params(params: dict[str, Any] | None, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten parameters the way Stripe expects form bodies: ``metadata[order_id]=7``,
    ``payment_method_types[0]=card``, booleans as ``true``/``false``; None is left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, dict):
            pairs.extend(encode_params(value, name))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    pairs.extend(encode_params(item, f"{name}[{index}]"))
                else:
                    pairs.append((f"{name}[{index}]", _scalar(item)))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class StripeClient:
    """Calls one Stripe API (real, or the emulator) with one secret key."""

    def __init__(self, api_base: str, secret_key: str, *, connect_timeout_ms: int = CONNECT_TIMEOUT_MS,
                 read_timeout_ms: int = READ_TIMEOUT_MS, max_attempts: int = MAX_ATTEMPTS,
                 backoff_ms: int = BACKOFF_MS, sleep: Callable = time.sleep):
        self.api_base = api_base.rstrip("/")
        self.secret_key = secret_key
        self.timeout = (connect_timeout_ms / 1000, read_timeout_ms / 1000)  # requests takes seconds
        self.max_attempts = max(1, max_attempts)
        self.backoff_ms = backoff_ms
        self.sleep = sleep  # called with seconds, like time.sleep
        self._local = threading.local()  # a requests.Session and a deadline per thread: sessions are not thread-safe

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = (self.secret_key, "")
            session.headers.update({"User-Agent": "Tanhui/1.0", "Accept": "application/json"})
            self._local.session = session
        return session

    @contextlib.contextmanager
    def deadline(self, budget_ms: int | None):
        """Every call this thread makes inside the block, retries included, ends within ``budget_ms`` of
        entering it (a call that would start or sleep past it raises StripeUnavailable instead). One web
        request that pays makes several calls, each retried: without a budget, a slow Stripe holds the
        payer (and a server thread) for minutes before they hear anything. Nested blocks keep the earlier end."""
        previous = getattr(self._local, "deadline", None)
        if budget_ms:
            end = time.monotonic() + budget_ms / 1000
            self._local.deadline = end if previous is None else min(previous, end)
        try:
            yield
        finally:
            self._local.deadline = previous

    # -- transport -----------------------------------------------------------------------------

    def request(self, method: str, path: str, params: dict | None = None, *,
                idempotency_key: str | None = None) -> dict:
        """One logical call, retried on timeouts, connection errors, 5xx and 429 only.

        POSTs always carry an Idempotency-Key (a fresh one if the caller gave none), the same on
        every retry, with the same encoded body.
        """
        method = method.upper()
        url = f"{self.api_base}{path}"
        body = encode_params(params)
        headers = {}
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or f"tanhui-{uuid.uuid4()}"
        last_status: int | None = None
        last_problem = ""
        deadline = getattr(self._local, "deadline", None)
        for attempt in range(1, self.max_attempts + 1):
            retry_after_ms: int | None = None
            timeout = self.timeout
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last_problem = last_problem or "no time left for this request"
                    break
                timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
            try:
                if method == "GET":
                    response = self.session.request(method, url, params=body, headers=headers, timeout=timeout)
                else:
                    response = self.session.request(method, url, data=body, headers=headers, timeout=timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                last_status, last_problem = None, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 400:
                    return self._json(response)
                if status == 429 or status >= 500:
                    last_status, last_problem = status, _error_message(response)
                    if response.headers.get("Stripe-Should-Retry", "").lower() == "false":
                        break
                    retry_after_ms = _retry_after_ms(response)
                else:
                    raise _stripe_error(response)
            if attempt < self.max_attempts:
                delay_ms = retry_after_ms if retry_after_ms is not None else self._backoff_ms(attempt)
                if deadline is not None and time.monotonic() + delay_ms / 1000 >= deadline:
                    break  # the next try could not finish in time: say so now
                log.warning("stripe %s %s: %s (attempt %d of %d); retrying in %d ms",
                            method, path, last_problem, attempt, self.max_attempts, delay_ms)
                self.sleep(delay_ms / 1000)
        raise StripeUnavailable(f"Stripe {method} {path} failed after {attempt} attempt(s): {last_problem}",
                                attempts=attempt, last_status=last_status)

    def _backoff_ms(self, attempt: int) -> int:
        return self.backoff_ms * (2 ** (attempt - 1)) * random.randrange(500, 1500) // 1000

    @staticmethod
    def _json(response: requests.Response) -> dict:
        try:
            return response.json()
        except ValueError as exc:
            raise StripeUnavailable(f"Stripe answered {response.status_code} without JSON",
                                    attempts=1, last_status=response.status_code) from exc

    # -- PaymentIntents ------------------------------------------------------------------------

    def create_payment_intent(self, *, amount_fen: int, currency: str = "cny", metadata: dict,
                              idempotency_key: str, payment_method: str | None = None,
                              confirm: bool = False, customer: str | None = None) -> dict:
        if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
            raise ValueError("amount_fen must be a positive integer (fen)")
        params: dict[str, Any] = {
            "amount": amount_fen,
            "currency": currency,
            # Cards only: no redirect-based methods, so a server-side confirm needs no return_url.
            "payment_method_types": ["card"],
            "metadata": {str(k): str(v) for k, v in metadata.items()},
            "customer": customer,
            "payment_method": payment_method,
        }
        if confirm:
            params["confirm"] = True
        return self.request("POST", "/v1/payment_intents", params, idempotency_key=idempotency_key)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict:
        return self.request("GET", f"/v1/payment_intents/{_safe_id(payment_intent_id, 'pi_')}")

    def update_payment_intent(self, payment_intent_id: str, *, idempotency_key: str | None = None,
                              **params) -> dict:
        return self.request("POST", f"/v1/payment_intents/{_safe_id(payment_intent_id, 'pi_')}", params,
                            idempotency_key=idempotency_key)

    def confirm_payment_intent(self, payment_intent_id: str, payment_method: str | None = None, *,
                               idempotency_key: str | None = None) -> dict:
        """Confirm, attaching ``payment_method`` first when given.

        The payment method is set by an update call and the confirm call carries none: the
        emulator answers 500 to ``confirm`` with a ``payment_method``, and update-then-confirm is
        equally valid on Stripe.
        """
        pi = _safe_id(payment_intent_id, "pi_")
        key = idempotency_key or f"tanhui-{uuid.uuid4()}"
        if payment_method:
            self.update_payment_intent(pi, payment_method=payment_method, idempotency_key=f"{key}-attach")
        return self.request("POST", f"/v1/payment_intents/{pi}/confirm", {}, idempotency_key=key)

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str | None = None) -> dict:
        return self.request("POST", f"/v1/payment_intents/{_safe_id(payment_intent_id, 'pi_')}/cancel", {},
                            idempotency_key=idempotency_key)

    # -- customers, tokens, refunds ------------------------------------------------------------

    def create_customer(self, *, idempotency_key: str, source: str | None = None,
                        metadata: dict | None = None, **params) -> dict:
        params = {**params, "source": source,
                  "metadata": {str(k): str(v) for k, v in (metadata or {}).items()} or None}
        return self.request("POST", "/v1/customers", params, idempotency_key=idempotency_key)

    def create_refund(self, payment_intent_id: str, idempotency_key: str, *, amount_fen: int | None = None,
                      metadata: dict | None = None) -> dict:
        params = {"payment_intent": _safe_id(payment_intent_id, "pi_"), "amount": amount_fen,
                  "metadata": {str(k): str(v) for k, v in (metadata or {}).items()} or None}
        return self.request("POST", "/v1/refunds", params, idempotency_key=idempotency_key)


def _safe_id(value: str, prefix: str) -> str:
    """Ids go into URL paths: accept Stripe's shape only (prefix, then letters, digits, underscores)."""
    if not isinstance(value, str) or not value.startswith(prefix) or not value.replace("_", "").isalnum():
        raise ValueError(f"not a Stripe id of the form {prefix}…: {value!r}")
    return value


def _retry_after_ms(response: requests.Response) -> int | None:
    """Retry-After as delay-seconds (a non-negative integer); an HTTP date or junk is ignored."""
    raw = (response.headers.get("Retry-After") or "").strip()
    if not raw.isdigit():
        return None
    return min(int(raw) * 1000, MAX_RETRY_AFTER_MS)


def _error_body(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_message(response: requests.Response) -> str:
    error = _error_body(response)
    return f"HTTP {response.status_code}" + (f": {error['message']}" if error.get("message") else "")


def _stripe_error(response: requests.Response) -> StripeError:
    error = _error_body(response)
    code = error.get("code")
    if code is None and response.status_code == 402:
        code = "card_declined"
    payment_intent = error.get("payment_intent")
    return StripeError(code, error.get("message") or f"HTTP {response.status_code}", response.status_code,
                       error.get("decline_code"), error_type=error.get("type"),
                       payment_intent=payment_intent if isinstance(payment_intent, dict) else None)


# -- the application's client ------------------------------------------------------------------

def get_client() -> StripeClient:
    """The current application's client (one per app, created on first use)."""
    client = current_app.extensions.get("tanhui_stripe")
    if client is None:
        config = current_app.config
        client = StripeClient(config["STRIPE_API_BASE"], config["STRIPE_SECRET_KEY"],
                              connect_timeout_ms=config.get("STRIPE_CONNECT_TIMEOUT_MS", CONNECT_TIMEOUT_MS),
                              read_timeout_ms=config.get("STRIPE_READ_TIMEOUT_MS", READ_TIMEOUT_MS),
                              max_attempts=config.get("STRIPE_MAX_ATTEMPTS", MAX_ATTEMPTS))
        current_app.extensions["tanhui_stripe"] = client
    return client


__all__: Iterable[str] = ["StripeClient", "StripeError", "StripeUnavailable", "encode_params", "get_client"]
