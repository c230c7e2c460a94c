"""Parcels on the pages: a cooperative uploads its project's parcels; the bureau exports all of them."""

from __future__ import annotations

import json

from flask import Blueprint, Response, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError
from marketplace.core.forms import form_error
from marketplace.core.once import once
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.registry import parcel_files
from marketplace.registry import parcels as parcel_service
from marketplace.registry.models import PROJECT_SHOWN, Project
from marketplace.registry.parcel_forms import ParcelUploadForm
from marketplace.registry.views_sellers import _project_page

bp = Blueprint("registry_parcels", __name__)


@bp.post("/sellers/projects/<int:project_id>/parcels")
@role_required("seller")
@once
def upload_parcels(project_id: int):
    project = get_scoped(db.session, Project, project_id, current_user, options=PROJECT_SHOWN)
    form = ParcelUploadForm()
    if form.validate_on_submit():
        try:
            upload = form.file.data
            rows = parcel_service.replace_parcels(
                db.session, project, actor=current_user, filename=upload.filename or "",
                data=upload.read(parcel_files.MAX_FILE_BYTES + 1))
            db.session.commit()
            flash(_("%(n)s parcels stored.", n=len(rows)), "success")
            return redirect(url_for("registry_sellers.project", project_id=project.id))
        except parcel_service.ParcelsRefused as exc:
            db.session.rollback()
            form.file.errors = [*form.file.errors, *exc.problems]
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _project_page(project_id, parcel_form=form, status=422)


@bp.get("/bureau/parcels.geojson")
@role_required("bureau")
def export_geojson():
    body = json.dumps(parcel_service.export_feature_collection(db.session), ensure_ascii=False)
    return Response(body, mimetype="application/geo+json",
                    headers={"Content-Disposition": 'attachment; filename="tanhui-parcels.geojson"'})


@bp.get("/bureau/parcels.zip")
@role_required("bureau")
def export_shapefile():
    return Response(parcel_service.export_shapefile_zip(db.session), mimetype="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="tanhui-parcels-shapefile.zip"'})
