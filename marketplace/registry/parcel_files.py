"""Reading an uploaded parcel file: a GeoJSON FeatureCollection or a zipped ESRI Shapefile with its .prj.

Only the file's structure is read here (limits first, so that a hostile file costs little); the
geometry and the figures are checked by :mod:`marketplace.registry.parcels`. Every refusal is a
``ValidationFailed`` on the field ``file`` whose message names the problem in the reader's language.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from marketplace.core.errors import ValidationFailed

#: the largest upload (a few thousand 小班 of a village fit in well under this)
MAX_FILE_BYTES = 5 * 1024 * 1024
#: a zip's members, unpacked, at most (checked on what is really read, not on the zip's own claims)
MAX_UNZIPPED_BYTES = 40 * 1024 * 1024
MAX_ZIP_MEMBERS = 20
#: a member packed more than this many times smaller than it unpacks is treated as a zip bomb
MAX_COMPRESSION_RATIO = 100
MAX_PARCELS = 2_000
MAX_VERTICES_PER_PARCEL = 20_000
MAX_VERTICES = 400_000

#: the frames accepted: WGS84 and CGCS2000 (2000国家大地坐标系), both geographic longitude/latitude
SUPPORTED_EPSG = {4326: "EPSG:4326", 4490: "EPSG:4490"}
#: GeoJSON's legacy "crs" member names these for WGS84
_WGS84_NAMES = {"urn:ogc:def:crs:ogc:1.3:crs84", "urn:ogc:def:crs:ogc::crs84", "crs84", "epsg:4326",
                "urn:ogc:def:crs:epsg::4326", "urn:ogc:def:crs:epsg:6.6:4326"}
_CGCS2000_NAMES = {"epsg:4490", "urn:ogc:def:crs:epsg::4490"}

#: property names read for each attribute (case-insensitive; DBF field names are at most 10 characters)
IDENTIFIER_KEYS = ("identifier", "小班号", "xbh", "ident", "xiaoban")
FOREST_TYPE_KEYS = ("forest_type", "林种", "forest", "lz")
DECLARED_AREA_KEYS = ("declared_area_ha", "面积", "area_ha", "mj")


@dataclass
class RawParcel:
    """One feature as read: its place in the file (1-based), attributes and GeoJSON-like geometry."""

    number: int
    identifier: str
    forest_type: str
    declared_area: object
    geometry: dict
    crs: str
    vertex_count: int = 0
    problems: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.identifier or f"#{self.number}"


def refuse(message) -> ValidationFailed:
    return ValidationFailed(message, "file")


def read_parcel_file(filename: str, data: bytes) -> list[RawParcel]:
    """The parcels of an upload (GeoJSON, or a .zip holding one Shapefile), or ValidationFailed."""
    if not data:
        raise refuse(_l("The file is empty."))
    if len(data) > MAX_FILE_BYTES:
        raise refuse(_l("The file is larger than %(mb)s MB.", mb=MAX_FILE_BYTES // (1024 * 1024)))
    if data[:4] == b"PK\x03\x04" or (filename or "").lower().endswith(".zip"):
        parcels = _read_shapefile_zip(data)
    else:
        parcels = _read_geojson(data)
    if not parcels:
        raise refuse(_l("The file holds no parcels."))
    return parcels


# --- GeoJSON ------------------------------------------------------------------------------------

def _read_geojson(data: bytes) -> list[RawParcel]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise refuse(_l("This is not GeoJSON: upload a GeoJSON FeatureCollection or a zipped Shapefile "
                        "(.shp, .shx, .dbf and .prj).")) from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection" \
            or not isinstance(document.get("features"), list):
        raise refuse(_l("The GeoJSON must be a FeatureCollection of Polygon or MultiPolygon features."))
    crs = _geojson_crs(document.get("crs"))
    features = document["features"]
    _check_parcel_count(len(features))
    parcels, total = [], 0
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise refuse(_l("Item %(n)s of the FeatureCollection is not a Feature.", n=number))
        properties = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        parcel = _raw_parcel(number, properties, feature.get("geometry"), crs)
        total += parcel.vertex_count
        _check_total_vertices(total)
        parcels.append(parcel)
    return parcels


def _geojson_crs(member) -> str:
    """RFC 7946 GeoJSON is WGS84; the 2008 format's "crs" member may name CGCS2000 instead."""
    if member is None:
        return SUPPORTED_EPSG[4326]
    name = member.get("properties", {}).get("name") if isinstance(member, dict) and isinstance(
        member.get("properties"), dict) else None
    lowered = str(name or "").strip().lower()
    if lowered in _WGS84_NAMES:
        return SUPPORTED_EPSG[4326]
    if lowered in _CGCS2000_NAMES:
        return SUPPORTED_EPSG[4490]
    raise refuse(_l("Unsupported coordinate reference system %(name)s: use WGS84 (EPSG:4326) or CGCS2000 "
                    "(EPSG:4490) longitude/latitude.", name=str(name or "?")[:80]))


def _first(properties: dict, keys: tuple[str, ...]):
    lowered = {str(k).strip().lower(): v for k, v in properties.items()}
    for key in keys:
        value = lowered.get(key)
        if value not in (None, ""):
            return value
    return None


def _raw_parcel(number: int, properties: dict, geometry, crs: str) -> RawParcel:
    identifier = _first(properties, IDENTIFIER_KEYS)
    forest_type = _first(properties, FOREST_TYPE_KEYS)
    parcel = RawParcel(number=number, identifier=str(identifier).strip()[:50] if identifier is not None else "",
                       forest_type=str(forest_type).strip()[:100] if forest_type is not None else "",
                       declared_area=_first(properties, DECLARED_AREA_KEYS), geometry=geometry, crs=crs)
    parcel.vertex_count = _count_vertices(parcel)
    if parcel.vertex_count > MAX_VERTICES_PER_PARCEL:
        raise refuse(_l("Parcel %(parcel)s has %(n)s vertices; at most %(max)s are accepted per parcel.",
                        parcel=parcel.label, n=parcel.vertex_count, max=MAX_VERTICES_PER_PARCEL))
    return parcel


def _count_vertices(parcel: RawParcel) -> int:
    """Positions of a Polygon/MultiPolygon, without trusting its shape (a malformed one counts 0 and is
    refused, naming the parcel, by the geometry check)."""
    geometry = parcel.geometry
    if not isinstance(geometry, dict):
        return 0
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if geometry.get("type") == "Polygon" else (
        coordinates if geometry.get("type") == "MultiPolygon" else [])
    count = 0
    for polygon in polygons if isinstance(polygons, list) else []:
        for ring in polygon if isinstance(polygon, list) else []:
            if isinstance(ring, list):
                count += len(ring)
                if count > MAX_VERTICES_PER_PARCEL:
                    return count
    return count


def _check_parcel_count(count: int) -> None:
    if count > MAX_PARCELS:
        raise refuse(_l("The file holds %(n)s parcels; at most %(max)s are accepted in one upload.",
                        n=count, max=MAX_PARCELS))


def _check_total_vertices(total: int) -> None:
    if total > MAX_VERTICES:
        raise refuse(_l("The file holds more than %(max)s vertices in all; simplify the polygons or split the "
                        "upload.", max=MAX_VERTICES))


# --- zipped Shapefile ---------------------------------------------------------------------------

def _member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> bytes:
    """A member's bytes, reading at most what is left of the budget (the zip's sizes may lie)."""
    if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_COMPRESSION_RATIO:
        raise refuse(_l("The zip file unpacks to far more than it holds (a zip bomb?); it was not opened."))
    with archive.open(info) as member:
        chunk = member.read(budget[0] + 1)
    if len(chunk) > budget[0]:
        raise refuse(_l("The zip file unpacks to more than %(mb)s MB.", mb=MAX_UNZIPPED_BYTES // (1024 * 1024)))
    if len(chunk) > 1024 and len(chunk) / max(info.compress_size, 1) > MAX_COMPRESSION_RATIO:
        raise refuse(_l("The zip file unpacks to far more than it holds (a zip bomb?); it was not opened."))
    budget[0] -= len(chunk)
    return chunk


def _read_shapefile_zip(data: bytes) -> list[RawParcel]:
    import shapefile  # pyshp

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    except (zipfile.BadZipFile, ValueError, OSError):
        raise refuse(_l("The zip file cannot be opened.")) from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise refuse(_l("The zip file holds %(n)s files; a Shapefile needs only .shp, .shx, .dbf, .prj (and .cpg).",
                        n=len(infos)))
    # What the zip claims, first (a bomb usually says what it is); what is really read is bounded below.
    if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise refuse(_l("The zip file unpacks to more than %(mb)s MB.", mb=MAX_UNZIPPED_BYTES // (1024 * 1024)))
    if any(i.file_size > 1024 and i.file_size / max(i.compress_size, 1) > MAX_COMPRESSION_RATIO for i in infos):
        raise refuse(_l("The zip file unpacks to far more than it holds (a zip bomb?); it was not opened."))
    by_extension: dict[str, list[zipfile.ZipInfo]] = {}
    for info in infos:
        by_extension.setdefault(info.filename.rsplit(".", 1)[-1].lower(), []).append(info)
    shp = by_extension.get("shp", [])
    if len(shp) != 1:
        raise refuse(_l("The zip file must hold exactly one Shapefile (.shp with its .shx, .dbf and .prj)."))
    stem = shp[0].filename[:-4].lower()

    def sibling(extension: str) -> zipfile.ZipInfo | None:
        return next((i for i in by_extension.get(extension, []) if i.filename[:-4].lower() == stem), None)

    prj, dbf, shx, cpg = sibling("prj"), sibling("dbf"), sibling("shx"), sibling("cpg")
    if prj is None:
        raise refuse(_l("The Shapefile has no .prj file: its coordinate reference system is unknown. Export it "
                        "again in WGS84 (EPSG:4326) or CGCS2000 (EPSG:4490) with its .prj."))
    if dbf is None:
        raise refuse(_l("The Shapefile has no .dbf file (the parcels' identifiers, forest types and areas)."))
    budget = [MAX_UNZIPPED_BYTES]
    try:
        crs = _prj_crs(_member_bytes(archive, prj, budget))
        encoding = "utf-8"
        if cpg is not None:
            encoding = _member_bytes(archive, cpg, budget).decode("ascii", "replace").strip() or "utf-8"
        shp_bytes = _member_bytes(archive, shp[0], budget)
        dbf_bytes = _member_bytes(archive, dbf, budget)
        shx_bytes = _member_bytes(archive, shx, budget) if shx is not None else None
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError):
        raise refuse(_l("The zip file cannot be opened.")) from None
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "utf-8"
    try:
        reader = shapefile.Reader(shp=io.BytesIO(shp_bytes), dbf=io.BytesIO(dbf_bytes),
                                  shx=io.BytesIO(shx_bytes) if shx_bytes else None, encoding=encoding,
                                  encodingErrors="replace")
        if reader.shapeType not in (shapefile.POLYGON, shapefile.POLYGONZ, shapefile.POLYGONM):
            raise refuse(_l("The Shapefile holds %(kind)s shapes; parcels must be polygons.",
                            kind=reader.shapeTypeName))
        _check_parcel_count(len(reader))
        parcels, total = [], 0
        names = [f[0] for f in reader.fields[1:]]
        for number, record in enumerate(reader.iterShapeRecords(), start=1):
            properties = dict(zip(names, list(record.record), strict=False))
            shape = record.shape
            geometry = shape.__geo_interface__ if shape.shapeType != shapefile.NULL else None
            parcel = _raw_parcel(number, properties, geometry, crs)
            total += parcel.vertex_count
            _check_total_vertices(total)
            parcels.append(parcel)
        return parcels
    except ValidationFailed:
        raise
    except Exception:  # noqa: BLE001 — pyshp raises many kinds on a damaged file
        raise refuse(_l("The Shapefile cannot be read (damaged or incomplete).")) from None


def _prj_crs(prj: bytes) -> str:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    text = prj.decode("utf-8", "replace").strip()
    try:
        crs = CRS.from_wkt(text)
    except CRSError:
        raise refuse(_l("The .prj file does not describe a coordinate reference system.")) from None
    epsg = crs.to_epsg(min_confidence=70)
    if epsg not in SUPPORTED_EPSG:
        raise refuse(_l("Unsupported coordinate reference system %(name)s: use WGS84 (EPSG:4326) or CGCS2000 "
                        "(EPSG:4490) longitude/latitude.", name=crs.name[:80]))
    return SUPPORTED_EPSG[epsg]


def finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
