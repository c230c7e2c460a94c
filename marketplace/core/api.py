"""JSON API v1 and its OpenAPI document (flask-smorest: marshmallow schemas → OpenAPI 3)."""

from __future__ import annotations

import json

import flask_smorest
from flask import Flask, request
from flask_smorest import Api
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import UnsupportedMediaType

from marketplace.core.http_errors import handle_http_exception
from marketplace.extensions import csrf


class TanhuiApi(Api):
    """flask-smorest's Api, answering errors in the application's one JSON error format."""

    def handle_http_exception(self, error):
        return handle_http_exception(error)


class JsonBodyParser(FlaskParser):
    """webargs' parser, with every unreadable JSON body a 400: Python refuses integers of more than 4,300
    digits and nesting deeper than its recursion limit with ValueError/RecursionError, which webargs
    (expecting JSONDecodeError only) would let through as a 500."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as exc:
            raise json.JSONDecodeError(f"unreadable JSON: {type(exc).__name__}", "", 0) from None


class Blueprint(flask_smorest.Blueprint):
    """Every API blueprint: flask-smorest's, parsing bodies with JsonBodyParser.

    Views put ``@token_required`` above ``@blp.arguments``: the caller is authenticated before the body
    is read, so an anonymous request learns nothing of the schema (401, not 422 field errors)."""

    ARGUMENTS_PARSER = JsonBodyParser()




api = TanhuiApi(spec_kwargs={
    "info": {"description": "Tanhui 碳汇: forestry carbon-sink registry and marketplace. Quantities are "
                            "decimal strings in tCO2e with at most 4 places; money is CNY with 2 places."},
})


def _require_json_bodies():
    """API writes take JSON only: a form or text body is a client mistake worth naming (415)."""
    if (request.path.startswith("/api/") and request.method in ("POST", "PUT", "PATCH")
            and (request.content_length or 0) > 0 and not request.is_json):
        raise UnsupportedMediaType()


def init_api(app: Flask) -> None:
    """The API's root: JSON bodies only, the OpenAPI document, bearer authentication."""
    app.before_request(_require_json_bodies)
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})


def register_api_blueprint(blueprint) -> None:
    """A feature's API blueprint under /api/v1, in the OpenAPI document."""
    api.register_blueprint(blueprint)
    # Bearer tokens are not sent by browsers on their own, so cross-site forgery does not apply.
    csrf.exempt(blueprint)
