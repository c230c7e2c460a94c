"""Who am I: the token's user and organisation."""

from __future__ import annotations

import marshmallow as ma

from marketplace.accounts.api_auth import BEARER, api_user_record, token_required
from marketplace.core.api import Blueprint

blp = Blueprint("api_account", __name__, url_prefix="/api/v1", description="The caller's account")


class OrganisationSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    name = ma.fields.String()
    name_en = ma.fields.String(allow_none=True)
    credit_code = ma.fields.String()


class MeSchema(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    display_name = ma.fields.String()
    role = ma.fields.String()
    locale = ma.fields.String()
    organisation = ma.fields.Nested(OrganisationSchema)


@blp.route("/me")
@blp.doc(security=BEARER)
@blp.response(200, MeSchema)
@token_required()
def me():
    """The user the bearer token belongs to."""
    return api_user_record()
