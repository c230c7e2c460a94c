"""Parcels in the API: a cooperative uploads its project's parcels; anyone reads a verified project's."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint

from marketplace.accounts.api_auth import BEARER, api_user, token_required
from marketplace.core.access import get_scoped
from marketplace.core.errors import NotFound, ValidationFailed
from marketplace.extensions import db
from marketplace.registry import parcel_files
from marketplace.registry import parcels as parcel_service
from marketplace.registry.models import PROJECT_SHOWN, Project

blp = Blueprint("api_parcels", __name__, url_prefix="/api/v1", description="Forest parcels (小班) of projects")


class FeatureCollectionOut(ma.Schema):
    type = ma.fields.String(metadata={"example": "FeatureCollection"})
    project = ma.fields.Dict(metadata={"description": "id, code, name, status, county, township, village, "
                                                      "area_hectares, parcels_area_ha"})
    serial_blocks = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "the credit batches issued for the project: batch_id, vintage, serial_block, serial_start, "
                       "serial_end (exclusive), quantity_tonnes"})
    features = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "GeoJSON Features (WGS84): properties identifier, forest_type, declared_area_ha, "
                       "geodesic_area_ha"})


UPLOAD_BODY = {
    "required": True,
    "description": "A GeoJSON FeatureCollection of Polygon/MultiPolygon features (WGS84, or CGCS2000 named in "
                   "a \"crs\" member) with properties identifier (林班/小班), forest_type and declared_area_ha; or "
                   "a zipped ESRI Shapefile with its .prj (application/zip). At most 5 MB, 2,000 parcels.",
    "content": {"application/geo+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}}},
}


def _body() -> bytes:
    if (request.content_length or 0) > parcel_files.MAX_FILE_BYTES:
        raise ValidationFailed(_l("The file is larger than %(mb)s MB.",
                                  mb=parcel_files.MAX_FILE_BYTES // (1024 * 1024)), "file")
    return request.stream.read(parcel_files.MAX_FILE_BYTES + 1)


@blp.route("/projects/<int:project_id>/parcels", methods=["POST"])
@blp.doc(security=BEARER, requestBody=UPLOAD_BODY, responses={
    "422": {"description": "refused: code validation_error (the parcels and their problems named), or "
                           "parcel_overlap (naming the other project, its village and the hectares)"}})
@blp.response(200, FeatureCollectionOut)
@token_required("seller")
def upload_parcels(project_id: int):
    """Replace the parcels of one of your draft (or rejected) projects; nothing is stored if any is refused."""
    project = get_scoped(db.session, Project, project_id, api_user(), options=PROJECT_SHOWN)
    zipped = (request.mimetype or "") in ("application/zip", "application/x-zip-compressed")
    parcel_service.replace_parcels(db.session, project, actor=api_user(),
                                   filename="upload.zip" if zipped else "upload.geojson", data=_body())
    db.session.commit()
    project = db.session.get(Project, project_id, options=PROJECT_SHOWN)
    return parcel_service.project_feature_collection(db.session, project)


@blp.route("/public/projects/<int:project_id>/parcels")
@blp.response(200, FeatureCollectionOut)
def public_parcels(project_id: int):
    """A verified project's parcels as GeoJSON (WGS84), with the serial blocks issued for the project."""
    project = db.session.get(Project, project_id, options=PROJECT_SHOWN)
    if project is None or project.status != "verified":
        raise NotFound(_l("Not found."))
    return parcel_service.project_feature_collection(db.session, project)
