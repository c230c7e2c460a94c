"""The parcel upload form of a cooperative's project page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class ParcelUploadForm(FlaskForm):
    file = FileField(_l("Parcels: GeoJSON, or a zipped Shapefile with its .prj (at most 5 MB)"),
                     validators=[FileRequired(_l("Choose a GeoJSON or zipped Shapefile file."))])
