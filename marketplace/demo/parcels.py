"""Demo parcels: generated, plausible sub-compartments (小班) for each demo project, inside its county.

They are not surveyed boundaries: a grid of squares around a point well inside the county (Guanpuyang's
in Longquan), sized so that they add up to the project's area, with a forest-resource-inventory style
identifier (林班-小班). They go through the same checks as any upload."""

from __future__ import annotations

import json
import math

import shapely
import sqlalchemy as sa

from marketplace.registry import parcels as parcel_service
from marketplace.registry.models import PROJECT_SHOWN, Project
from marketplace.registry.parcel_models import Parcel

#: squares per project in the demo (so each is tens of hectares, as 小班 are)
DEMO_PARCELS_PER_PROJECT = 16
METRES_PER_DEGREE_LAT = 111_320


def square_feature_collection(lon: float, lat: float, *, count: int, hectares_each: float, prefix: str = "1",
                              forest_type: str = "杉木林", gap_m: float = 30.0) -> dict:
    """``count`` squares of ``hectares_each`` in rows from (lon, lat) north-eastwards, ``gap_m`` apart, as a
    GeoJSON FeatureCollection with identifier, forest_type and declared_area_ha (their geodesic area)."""
    side_m = math.sqrt(hectares_each * 10_000)
    per_row = math.ceil(math.sqrt(count))
    features = []
    for n in range(count):
        row, column = divmod(n, per_row)
        y0 = lat + row * (side_m + gap_m) / METRES_PER_DEGREE_LAT
        dy = side_m / METRES_PER_DEGREE_LAT
        scale = METRES_PER_DEGREE_LAT * math.cos(math.radians(y0 + dy / 2))
        x0 = lon + column * (side_m + gap_m) / scale
        dx = side_m / scale
        ring = [[round(x0, 7), round(y0, 7)], [round(x0 + dx, 7), round(y0, 7)],
                [round(x0 + dx, 7), round(y0 + dy, 7)], [round(x0, 7), round(y0 + dy, 7)], [round(x0, 7), round(y0, 7)]]
        area = parcel_service.geodesic_hectares(shapely.Polygon(ring))
        features.append({"type": "Feature", "properties": {
            "identifier": f"{prefix}-{n + 1}", "forest_type": forest_type, "declared_area_ha": str(area)},
            "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return {"type": "FeatureCollection", "features": features}


def county_anchor(county_name: str, inset_m: float = 6_000, shift: int = 0) -> tuple[float, float]:
    """A point at least ``inset_m`` inside the county's boundary (the ``shift``-th of a few such points)."""
    county = parcel_service.county_shapes()[county_name]
    inner = county.buffer(-inset_m / METRES_PER_DEGREE_LAT)
    if inner.is_empty:
        inner = county
    point = inner.representative_point()
    if shift:
        minx, miny, maxx, maxy = inner.bounds
        candidates = [shapely.Point(minx + (maxx - minx) * fx, miny + (maxy - miny) * fy)
                      for fx in (0.3, 0.5, 0.7) for fy in (0.3, 0.5, 0.7)]
        inside = [c for c in candidates if inner.contains(c)]
        if inside:
            point = inside[shift % len(inside)]
    return point.x, point.y


def seed_parcels(ctx) -> None:
    """Generated parcels for every demo project that has none yet."""
    s = ctx.session
    projects = s.scalars(sa.select(Project).where(~sa.exists().where(Parcel.project_id == Project.id))
                         .options(*PROJECT_SHOWN).order_by(Project.id)).all()
    for n, project in enumerate(projects):
        county = parcel_service.county_of(project)
        if county is None or county.name not in parcel_service.county_shapes():
            continue
        lon, lat = county_anchor(county.name, shift=n)
        each = float(project.area_hectares) / DEMO_PARCELS_PER_PROJECT
        collection = square_feature_collection(lon, lat, count=DEMO_PARCELS_PER_PROJECT, hectares_each=each,
                                               prefix=str(10 + n), forest_type=project.forest_type[:100])
        parcel_service.import_parcels(s, project, filename="demo.geojson",
                                      data=json.dumps(collection).encode())
    ctx.say(f"demo parcels generated (not surveyed): {len(projects)} projects")


__all__ = ["county_anchor", "seed_parcels", "square_feature_collection"]
