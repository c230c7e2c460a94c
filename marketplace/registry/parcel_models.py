"""Forest parcels (小班): the polygons a project's credits grow on.

Geometry is stored as hex WKB in WGS84 longitude/latitude (a CGCS2000 upload is converted; the two
frames differ by centimetres). The bounding-box columns are a coarse spatial index that both databases
can search with an ordinary B-tree; the exact test (Shapely) runs on the few candidates it returns.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.registry.models import Project


class Parcel(db.Model):
    """One sub-compartment (小班) of a project."""

    __tablename__ = "project_parcels"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "identifier", name="uq_project_parcels_project_identifier"),
        sa.CheckConstraint("declared_area_ha > 0", name="declared_area_positive"),
        sa.CheckConstraint("geodesic_area_ha > 0", name="geodesic_area_positive"),
        sa.CheckConstraint("min_lon <= max_lon AND min_lat <= max_lat", name="bbox_ordered"),
        sa.CheckConstraint("vertex_count >= 4", name="vertex_count"),
        sa.Index("ix_project_parcels_bbox", "min_lon", "min_lat"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    project_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("projects.id"), index=True)
    #: the forest-resource inventory number, 林班/小班 (e.g. "12-3")
    identifier: so.Mapped[str] = so.mapped_column(sa.String(50))
    forest_type: so.Mapped[str] = so.mapped_column(sa.String(100))
    #: the area the cooperative declares (from its forest-resource inventory), hectares
    declared_area_ha: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 4))
    #: the area measured on the WGS84 ellipsoid (pyproj.Geod), hectares
    geodesic_area_ha: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 4))
    #: Polygon or MultiPolygon, hex WKB, WGS84 longitude/latitude
    geometry_wkb: so.Mapped[str] = so.mapped_column(sa.Text)
    #: the frame it was uploaded in: EPSG:4326 (WGS84) or EPSG:4490 (CGCS2000)
    source_crs: so.Mapped[str] = so.mapped_column(sa.String(16))
    vertex_count: so.Mapped[int]
    #: bounding box (degrees), the coarse index
    min_lon: so.Mapped[float] = so.mapped_column(sa.Double)
    min_lat: so.Mapped[float] = so.mapped_column(sa.Double)
    max_lon: so.Mapped[float] = so.mapped_column(sa.Double)
    max_lat: so.Mapped[float] = so.mapped_column(sa.Double)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    project: so.Mapped[Project] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.project_id.in_(sa.select(Project.id).where(Project.seller_organisation_id == organisation_id))


def parcel_box(min_lon, min_lat, max_lon, max_lat):
    """PostgreSQL's box of a bounding box: what the GiST index below holds and the overlap query asks."""
    return sa.func.box(sa.func.point(min_lon, min_lat), sa.func.point(max_lon, max_lat))


#: On PostgreSQL, an R-tree-like GiST index on the bounding boxes: a query for the boxes meeting one box
#: reads only those (the B-tree on (min_lon, min_lat) reads a strip of the map, which fills up as parcels
#: are added). SQLite keeps the B-tree alone.
PARCEL_BOX_INDEX = sa.Index(
    "ix_project_parcels_box", parcel_box(Parcel.min_lon, Parcel.min_lat, Parcel.max_lon, Parcel.max_lat),
    postgresql_using="gist").ddl_if(dialect="postgresql")
