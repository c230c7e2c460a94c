"""Forest parcels (小班): uploads, every validation, the overlap rule (also under concurrency on PostgreSQL),
the public GeoJSON and the bureau's exports."""

from __future__ import annotations

import copy
import io
import json
import threading
import time
import zipfile

import pytest
import shapefile
import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.registry.parcel_models import Parcel
from tests.factories import MINIMAL_PDF

WGS84_PRJ = ('GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
             'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')
CGCS2000_PRJ = ('GEOGCS["China Geodetic Coordinate System 2000",DATUM["China_2000",SPHEROID["CGCS2000",6378137,'
                '298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4490"]]')
WEB_MERCATOR_PRJ = ('PROJCS["WGS_1984_Web_Mercator_Auxiliary_Sphere",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",'
                    'SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",'
                    '0.0174532925199433]],PROJECTION["Mercator_Auxiliary_Sphere"],PARAMETER["False_Easting",0.0],'
                    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",0.0],'
                    'PARAMETER["Standard_Parallel_1",0.0],PARAMETER["Auxiliary_Sphere_Type",0.0],UNIT["Meter",1.0]]')


# --- helpers ------------------------------------------------------------------------------------

def parcels_in(app, county="龙泉市", *, count=12, each=100.0, prefix="7", shift=0, east_m=0.0):
    """``count`` squares of ``each`` ha well inside ``county`` (the factory's projects are 1200.5 ha in 龙泉市)."""
    from marketplace.demo.parcels import METRES_PER_DEGREE_LAT, county_anchor, square_feature_collection

    with app.app_context():
        lon, lat = county_anchor(county, shift=shift)
    lon += east_m / (METRES_PER_DEGREE_LAT * 0.88)
    return square_feature_collection(lon, lat, count=count, hectares_each=each, prefix=prefix)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def upload(client, project_id, token, body, content_type="application/geo+json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/api/v1/projects/{project_id}/parcels", data=data, headers=auth(token),
                       content_type=content_type)


def stored(app, project_id=None) -> int:
    with app.app_context():
        query = sa.select(sa.func.count()).select_from(Parcel)
        if project_id is not None:
            query = query.where(Parcel.project_id == project_id)
        return db.session.scalar(query)


def shapefile_zip(collection, prj: str | None = WGS84_PRJ, *, extra: dict | None = None) -> bytes:
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    writer = shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON, encoding="utf-8")
    writer.field("XBH", "C", 20)
    writer.field("LZ", "C", 50)
    writer.field("AREA_HA", "N", 16, 4)
    for feature in collection["features"]:
        ring = list(reversed(feature["geometry"]["coordinates"][0]))  # clockwise outer ring
        writer.poly([ring])
        p = feature["properties"]
        writer.record(p["identifier"], p["forest_type"], float(p["declared_area_ha"]))
    writer.close()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xiaoban.shp", shp.getvalue())
        archive.writestr("xiaoban.shx", shx.getvalue())
        archive.writestr("xiaoban.dbf", dbf.getvalue())
        archive.writestr("xiaoban.cpg", "UTF-8")
        if prj is not None:
            archive.writestr("xiaoban.prj", prj)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.fixture
def draft(factory):
    """A draft project of a cooperative (1200.5 ha in 龙泉市) and the cooperative's API token."""
    seller = factory.user("seller")
    project = factory.project(seller=seller, verified=False)
    return project, factory.token(seller)


# --- uploads --------------------------------------------------------------------------------------

def test_cooperative_uploads_geojson_parcels_and_gets_the_project_parcels_back(app, client, draft):
    project, token = draft
    answer = upload(client, project.id, token, parcels_in(app))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 12
    first = body["features"][0]["properties"]
    assert first["identifier"] == "7-1" and abs(float(first["geodesic_area_ha"]) - 100) < 0.5
    assert body["project"]["county"] == "龙泉市"
    assert stored(app, project.id) == 12
    # The same upload again replaces the parcels: still twelve.
    assert upload(client, project.id, token, parcels_in(app)).status_code == 200
    assert stored(app, project.id) == 12
    with app.app_context():
        parcel = db.session.scalars(sa.select(Parcel).where(Parcel.project_id == project.id)).first()
        assert parcel.min_lon < parcel.max_lon and parcel.source_crs == "EPSG:4326"


@pytest.mark.parametrize("prj, crs", [(WGS84_PRJ, "EPSG:4326"), (CGCS2000_PRJ, "EPSG:4490")])
def test_a_zipped_shapefile_with_its_prj_is_accepted_in_wgs84_or_cgcs2000(app, client, draft, prj, crs):
    project, token = draft
    answer = upload(client, project.id, token, shapefile_zip(parcels_in(app), prj), "application/zip")
    assert answer.status_code == 200, answer.get_json()
    assert [f["properties"]["identifier"] for f in answer.get_json()["features"]][:2] == ["7-1", "7-10"]
    with app.app_context():
        assert set(db.session.scalars(sa.select(Parcel.source_crs))) == {crs}


def test_the_project_page_uploads_parcels_and_shows_their_map_and_table(app, factory, client, login):
    seller = factory.user("seller")
    project = factory.project(seller=seller, verified=False)
    login(seller.email)
    page = f"/sellers/projects/{project.id}"
    from tests.conftest import CsrfClient

    token = CsrfClient(client).csrf_token(page)
    collection = parcels_in(app)
    answer = client.post(f"{page}/parcels", data={
        "csrf_token": token, "file": (io.BytesIO(json.dumps(collection).encode()), "小班.geojson")},
        content_type="multipart/form-data")
    assert answer.status_code == 302, answer.get_data(as_text=True)[:3000]
    html = client.get(page).get_data(as_text=True)
    assert 'class="geo-map parcel-map"' in html and "7-12" in html and "js/maps.js" in html
    assert "<caption>" in html

    # A refused upload names the parcel and the problem, on the form, in Chinese; nothing changes.
    broken = copy.deepcopy(collection)
    broken["features"][2]["properties"]["declared_area_ha"] = "150"
    answer = client.post(f"{page}/parcels", data={
        "csrf_token": CsrfClient(client).csrf_token(page),
        "file": (io.BytesIO(json.dumps(broken).encode()), "小班.geojson")}, content_type="multipart/form-data")
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "小班 7-3" in html and "申报" in html and 'id="parcel-file-error"' in html
    assert stored(app, project.id) == 12


# --- validation: every refusal names the parcel and the problem, nothing is stored ----------------

def _bowtie(collection):
    ring = collection["features"][0]["geometry"]["coordinates"][0]
    a, b, c, d, _ = ring
    collection["features"][0]["geometry"]["coordinates"][0] = [a, c, b, d, a]
    return collection


def _open_ring(collection):
    collection["features"][1]["geometry"]["coordinates"][0].pop()
    return collection


def _beijing(collection):
    ring = collection["features"][3]["geometry"]["coordinates"][0]
    lon0, lat0 = ring[0]
    collection["features"][3]["geometry"]["coordinates"][0] = [[x - lon0 + 116.4, y - lat0 + 39.9] for x, y in ring]
    return collection


def _swapped_axes(collection):
    ring = collection["features"][0]["geometry"]["coordinates"][0]
    collection["features"][0]["geometry"]["coordinates"][0] = [[y, x] for x, y in ring]
    return collection


def _declared(collection):
    collection["features"][4]["properties"]["declared_area_ha"] = "80"
    return collection


def _no_identifier(collection):
    del collection["features"][5]["properties"]["identifier"]
    return collection


def _duplicate(collection):
    collection["features"][6]["properties"]["identifier"] = "7-1"
    return collection


def _point(collection):
    collection["features"][0]["geometry"] = {"type": "Point", "coordinates": [119.1, 28.0]}
    return collection


def _epsg3857(collection):
    collection["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    return collection


def _many_vertices(collection):
    ring = collection["features"][0]["geometry"]["coordinates"][0]
    (x0, y0), (x1, _y), (_x, y1) = ring[0], ring[1], ring[2]
    steps = 25_000
    dense = [[x0 + (x1 - x0) * i / steps, y0] for i in range(steps)] + [[x1, y1], [x0, y1], [x0, y0]]
    collection["features"][0]["geometry"]["coordinates"][0] = dense
    return collection


REFUSALS = [
    ("not GeoJSON", lambda c: b"<kml>not geojson</kml>", "不是 GeoJSON"),
    ("not a FeatureCollection", lambda c: c["features"][0], "FeatureCollection"),
    ("a point", _point, "小班 7-1"),
    ("a bowtie", _bowtie, "小班 7-1：边界自相交"),
    ("an open ring", _open_ring, "小班 7-2：有一个环未闭合"),
    ("coordinates in Beijing", _beijing, "小班 7-4：位于丽水市范围之外"),
    ("latitude, longitude swapped", _swapped_axes, "小班 7-1：位于丽水市范围之外"),
    ("declared area 20 % off", _declared, "小班 7-5：实测面积"),
    ("no identifier", _no_identifier, "小班 #6"),
    ("an identifier twice", _duplicate, "小班 7-1：编号重复"),
    ("an unsupported CRS", _epsg3857, "不支持的坐标参考系"),
    ("1e6-style vertex count", _many_vertices, "顶点"),
]


@pytest.mark.parametrize("why, spoil, expected", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_bad_upload_is_refused_with_the_parcel_and_problem_named_and_nothing_stored(app, client, draft, why,
                                                                                       spoil, expected):
    project, token = draft
    assert upload(client, project.id, token, parcels_in(app, prefix="9")).status_code == 200
    body = spoil(parcels_in(app))
    answer = upload(client, project.id, token, body)
    assert answer.status_code == 422, (why, answer.get_json())
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error" and error["field"] == "file"
    assert expected in error["message"], (why, error["message"])
    # The earlier parcels stand, untouched.
    with app.app_context():
        assert set(db.session.scalars(sa.select(Parcel.identifier).where(Parcel.project_id == project.id))) == {
            f"9-{n}" for n in range(1, 13)}


def test_parcels_outside_the_project_county_and_a_sum_far_from_the_project_area_are_refused(app, client, draft):
    project, token = draft
    answer = upload(client, project.id, token, parcels_in(app, "莲都区"))
    assert answer.status_code == 422
    assert "小班 7-1：位于项目所在县（市、区）之外" in answer.get_json()["error"]["message"]
    answer = upload(client, project.id, token, parcels_in(app, count=6))
    assert answer.status_code == 422
    assert "合计" in answer.get_json()["error"]["message"] and "1200.50" in answer.get_json()["error"]["message"]
    assert stored(app) == 0


def test_shapefile_without_prj_unsupported_crs_and_zip_bomb_are_refused(app, client, draft):
    project, token = draft
    cases = [
        (shapefile_zip(parcels_in(app), prj=None), ".prj"),
        (shapefile_zip(parcels_in(app), prj=WEB_MERCATOR_PRJ), "不支持的坐标参考系"),
        (shapefile_zip(parcels_in(app), extra={"padding.txt": b"0" * 30_000_000}), "压缩炸弹"),
        (b"PK\x03\x04 this is no zip", "无法打开"),
    ]
    for data, expected in cases:
        answer = upload(client, project.id, token, data, "application/zip")
        assert answer.status_code == 422, expected
        assert expected in answer.get_json()["error"]["message"], answer.get_json()
    assert stored(app) == 0


def test_limits_on_file_size_and_parcel_count(app, client, draft):
    from marketplace.registry import parcel_files

    project, token = draft
    answer = upload(client, project.id, token, b" " * (parcel_files.MAX_FILE_BYTES + 10))
    assert answer.status_code == 422 and "5 MB" in answer.get_json()["error"]["message"]
    many = parcels_in(app, count=parcel_files.MAX_PARCELS + 1, each=0.5)
    answer = upload(client, project.id, token, many)
    assert answer.status_code == 422 and "2000" in answer.get_json()["error"]["message"]
    assert stored(app) == 0


def test_only_the_owner_uploads_and_only_while_the_project_is_a_draft(app, client, factory, draft):
    project, token = draft
    other = factory.token(factory.user("seller"))
    assert upload(client, project.id, other, parcels_in(app)).status_code == 404
    verified = factory.project(seller=factory.user("seller"))
    owner_token = factory.token(verified.seller)
    answer = upload(client, verified.id, owner_token, parcels_in(app))
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "invalid_transition"


# --- overlaps ---------------------------------------------------------------------------------------

def test_an_overlap_with_a_live_project_is_refused_naming_it_its_village_and_the_hectares(app, client, factory):
    seller_a, seller_b = factory.user("seller"), factory.user("seller")
    a = factory.project(seller=seller_a, verified=False)
    assert upload(client, a.id, factory.token(seller_a), parcels_in(app)).status_code == 200
    b = factory.project(seller=seller_b, verified=False)
    token_b = factory.token(seller_b)
    # A is a draft: its parcels claim nothing yet.
    assert upload(client, b.id, token_b, parcels_in(app, prefix="8", east_m=500)).status_code == 200
    client.post(f"/api/v1/projects/{b.id}/parcels", data=json.dumps({}), headers=auth(token_b))

    with app.app_context():
        from marketplace.accounts.models import User
        from marketplace.registry import service as registry
        from marketplace.registry.models import Project

        project_a = db.session.get(Project, a.id)
        actor = db.session.get(User, seller_a.id)
        registry.add_document(db.session, project_a, actor=actor, kind="verification_statement",
                              filename="s.pdf", data=MINIMAL_PDF)
        registry.transition_project(db.session, project_a, "submitted", actor=actor)
        db.session.commit()

    answer = upload(client, b.id, token_b, parcels_in(app, prefix="8", east_m=500))
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "parcel_overlap"
    assert a.name in error["message"] and "小班 8-1" in error["message"] and "公顷" in error["message"]
    # 500 m east on 1 km squares: half of a square, 50 ha.
    assert "50." in error["message"] or "49." in error["message"]
    # Parcels that only touch or lie apart pass.
    assert upload(client, b.id, token_b, parcels_in(app, prefix="8", east_m=20_000)).status_code in (200, 422)


def test_b_cannot_be_submitted_over_a_submitted_project_and_a_rejected_one_claims_nothing(app, client, factory):
    from marketplace.accounts.models import User
    from marketplace.registry import service as registry
    from marketplace.registry.models import Project
    from marketplace.registry.parcels import ParcelOverlap

    seller_a, seller_b, bureau = factory.user("seller"), factory.user("seller"), factory.user("bureau")
    a = factory.project(seller=seller_a, verified=False)
    b = factory.project(seller=seller_b, verified=False)
    assert upload(client, a.id, factory.token(seller_a), parcels_in(app)).status_code == 200
    assert upload(client, b.id, factory.token(seller_b), parcels_in(app, prefix="8", east_m=300)).status_code == 200
    with app.app_context():
        for project, seller in ((a, seller_a), (b, seller_b)):
            registry.add_document(db.session, db.session.get(Project, project.id),
                                  actor=db.session.get(User, seller.id), kind="verification_statement",
                                  filename="s.pdf", data=MINIMAL_PDF)
        registry.transition_project(db.session, db.session.get(Project, a.id), "submitted",
                                    actor=db.session.get(User, seller_a.id))
        db.session.commit()
        with pytest.raises(ParcelOverlap) as refused:
            registry.transition_project(db.session, db.session.get(Project, b.id), "submitted",
                                        actor=db.session.get(User, seller_b.id))
        assert a.name in str(refused.value.message)
        db.session.rollback()
        registry.transition_project(db.session, db.session.get(Project, a.id), "rejected",
                                    actor=db.session.get(User, bureau.id), note="重叠")
        db.session.commit()
        registry.transition_project(db.session, db.session.get(Project, b.id), "submitted",
                                    actor=db.session.get(User, seller_b.id))
        db.session.commit()


def test_overlapping_parcels_within_one_upload_are_refused(app, client, draft):
    project, token = draft
    collection = parcels_in(app)
    copy_of_first = copy.deepcopy(collection["features"][0])
    copy_of_first["properties"]["identifier"] = "7-99"
    collection["features"][-1] = copy_of_first
    answer = upload(client, project.id, token, collection)
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "parcel_overlap" and "小班 7-1" in error["message"] and "7-99" in error["message"]


def test_the_check_uses_the_spatial_index_not_a_scan(app, client, factory, draft):
    """Parcels far away are never loaded: the bounding-box query returns only neighbours."""
    from marketplace.registry import parcels

    project, token = draft
    assert upload(client, project.id, token, parcels_in(app)).status_code == 200
    with app.app_context():
        from marketplace.registry.models import Project

        db.session.execute(sa.update(Project).where(Project.id == project.id).values(status="submitted"))
        db.session.commit()
        near = parcels.candidates_near(db.session, [(119.0, 28.0, 119.001, 28.001)], exclude_project_id=0)
        assert near == []
        box = db.session.scalars(sa.select(Parcel).where(Parcel.project_id == project.id)).first()
        found = parcels.candidates_near(db.session, [(box.min_lon, box.min_lat, box.min_lon + 1e-4,
                                                      box.min_lat + 1e-4)], exclude_project_id=0)
        assert [c.identifier for c in found] == [box.identifier]


@pytest.mark.postgres
def test_two_concurrent_submissions_of_the_same_forest_cannot_both_pass(app, client, factory):
    """Two cooperatives' drafts claim the same forest; both are submitted at once on two connections. The
    claims lock makes the second wait for the first to commit, then see it and be refused."""
    from marketplace.accounts.models import User
    from marketplace.registry import service as registry
    from marketplace.registry.models import Project
    from marketplace.registry.parcels import ParcelOverlap

    sellers = [factory.user("seller"), factory.user("seller")]
    projects = [factory.project(seller=s, verified=False) for s in sellers]
    for n, (project, seller) in enumerate(zip(projects, sellers, strict=True)):
        assert upload(client, project.id, factory.token(seller), parcels_in(app, prefix=str(n + 1),
                                                                             east_m=n * 400)).status_code == 200
        with app.app_context():
            registry.add_document(db.session, db.session.get(Project, project.id),
                                  actor=db.session.get(User, seller.id), kind="verification_statement",
                                  filename="s.pdf", data=MINIMAL_PDF)
            db.session.commit()

    first_checked, release, outcomes = threading.Event(), threading.Event(), {}

    def submit(n: int, *, hold: bool):
        with app.app_context():
            try:
                registry.transition_project(db.session, db.session.get(Project, projects[n].id), "submitted",
                                            actor=db.session.get(User, sellers[n].id))
                if hold:
                    first_checked.set()
                    release.wait(10)  # the transaction stays open, holding the lock
                db.session.commit()
                outcomes[n] = "submitted"
            except ParcelOverlap as exc:
                db.session.rollback()
                outcomes[n] = exc.code
            finally:
                db.session.remove()

    first = threading.Thread(target=submit, args=(0,), kwargs={"hold": True})
    first.start()
    assert first_checked.wait(10)
    second = threading.Thread(target=submit, args=(1,), kwargs={"hold": False})
    second.start()
    time.sleep(0.5)
    assert second.is_alive(), "the second submission must wait for the first one's lock"
    release.set()
    first.join(10)
    second.join(10)
    assert outcomes == {0: "submitted", 1: "parcel_overlap"}


@pytest.mark.postgres
def test_two_concurrent_verifications_of_overlapping_projects_cannot_both_pass(app, client, factory):
    from marketplace.accounts.models import User
    from marketplace.registry import service as registry
    from marketplace.registry.models import Project
    from marketplace.registry.parcels import ParcelOverlap

    bureau = factory.user("bureau")
    sellers = [factory.user("seller"), factory.user("seller")]
    projects = [factory.project(seller=s, verified=False) for s in sellers]
    for n, (project, seller) in enumerate(zip(projects, sellers, strict=True)):
        assert upload(client, project.id, factory.token(seller), parcels_in(app, prefix=str(n + 1),
                                                                             east_m=n * 400)).status_code == 200
    with app.app_context():  # both submitted (as if an older release had let them through)
        db.session.execute(sa.update(Project).where(Project.id.in_([p.id for p in projects])).values(status="submitted"))
        db.session.commit()
    barrier, outcomes = threading.Barrier(2), {}

    def verify(n: int):
        with app.app_context():
            try:
                barrier.wait(10)
                registry.transition_project(db.session, db.session.get(Project, projects[n].id), "verified",
                                            actor=db.session.get(User, bureau.id), note="ok")
                time.sleep(0.3)  # widen the window between the check and the commit
                db.session.commit()
                outcomes[n] = "verified"
            except ParcelOverlap as exc:
                db.session.rollback()
                outcomes[n] = exc.code
            finally:
                db.session.remove()

    threads = [threading.Thread(target=verify, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes.values()) == ["parcel_overlap", "verified"], outcomes


# --- public data and exports ------------------------------------------------------------------------

def test_public_geojson_of_a_verified_project_with_its_serial_blocks(app, client, factory):
    from marketplace.registry.models import Project

    seller = factory.user("seller")
    project = factory.project(seller=seller, verified=False)
    assert upload(client, project.id, factory.token(seller), parcels_in(app)).status_code == 200
    assert client.get(f"/api/v1/public/projects/{project.id}/parcels").status_code == 404
    with app.app_context():
        db.session.execute(sa.update(Project).where(Project.id == project.id).values(status="verified"))
        db.session.commit()
    batch = factory.batch(project, tonnes="2000")
    body = client.get(f"/api/v1/public/projects/{project.id}/parcels").get_json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 12
    assert body["serial_blocks"][0]["serial_start"] == batch.serial_start
    assert body["serial_blocks"][0]["serial_block"].startswith(f"TH-P{project.id:05d}-2023-")
    geometry = body["features"][0]["geometry"]
    assert geometry["type"] == "Polygon" and 118 < geometry["coordinates"][0][0][0] < 121
    html = client.get(f"/registry/projects/{project.id}").get_data(as_text=True)
    assert "parcel-map" in html and "7-1" in html
    html = client.get("/registry/").get_data(as_text=True)
    assert "county-map" in html and "vendor/lishui.js" in html and f"/registry/projects/{project.id}" in html


def test_bureau_exports_every_parcel_as_geojson_and_shapefile(app, client, factory, login, draft):
    project, token = draft
    assert upload(client, project.id, token, parcels_in(app)).status_code == 200
    bureau = factory.user("bureau")
    login(bureau.email)
    html = client.get(f"/bureau/projects/{project.id}").get_data(as_text=True)
    assert "parcel-map" in html and "7-12" in html
    collection = client.get("/bureau/parcels.geojson").get_json(force=True)
    assert len(collection["features"]) == 12
    assert collection["features"][0]["properties"]["county"] == "龙泉市"
    answer = client.get("/bureau/parcels.zip")
    assert answer.status_code == 200 and answer.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.data))
    assert {n.rsplit(".", 1)[1] for n in archive.namelist()} == {"shp", "shx", "dbf", "prj", "cpg"}
    reader = shapefile.Reader(shp=io.BytesIO(archive.read("tanhui-parcels.shp")),
                              shx=io.BytesIO(archive.read("tanhui-parcels.shx")),
                              dbf=io.BytesIO(archive.read("tanhui-parcels.dbf")), encoding="utf-8")
    assert len(reader) == 12 and reader.record(0)["COUNTY"] == "龙泉市"
    # The export reads back as an upload of the same parcels.
    from marketplace.registry.parcel_files import read_parcel_file

    with app.app_context():
        assert len(read_parcel_file("x.zip", answer.data)) == 12


def test_exports_are_for_the_bureau_only(app, client, factory, login):
    login(factory.user("seller").email)
    assert client.get("/bureau/parcels.geojson").status_code in (403, 404)


def test_the_demo_projects_get_generated_parcels_inside_their_counties_guanpuyang_in_longquan(app):
    import shapely

    from marketplace.demo import parcels as demo_parcels
    from marketplace.demo import registry as demo_registry
    from marketplace.demo.people import DemoContext, seed_people
    from marketplace.registry import parcels
    from marketplace.registry.models import PROJECT_SHOWN, Project

    with app.app_context():
        ctx = DemoContext(session=db.session, organisations={}, users={}, say=lambda _m: None)
        for step in (seed_people, demo_registry.seed_regions, demo_registry.seed_projects, demo_parcels.seed_parcels,
                     demo_parcels.seed_parcels):  # twice: idempotent
            step(ctx)
            db.session.commit()
        counties = parcels.county_shapes()
        projects = db.session.scalars(sa.select(Project).options(*PROJECT_SHOWN)).all()
        assert len(projects) == len(demo_registry.PROJECTS)
        for project in projects:
            rows = parcels.parcels_of(db.session, project.id)
            assert len(rows) == demo_parcels.DEMO_PARCELS_PER_PROJECT, project.name
            county = parcels.county_of(project).name
            for row in rows:
                assert counties[county].contains(shapely.from_wkb(row.geometry_wkb)), (project.name, row.identifier)
            total = sum(r.geodesic_area_ha for r in rows)
            assert abs(total - project.area_hectares) < project.area_hectares * parcels.AREA_TOLERANCE
        guanpuyang = next(p for p in projects if p.name == demo_registry.GUANPUYANG.name)
        assert parcels.county_of(guanpuyang).name == "龙泉市"


def test_the_parcel_calls_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    upload_call = paths["/api/v1/projects/{project_id}/parcels"]["post"]
    assert set(upload_call["requestBody"]["content"]) >= {"application/geo+json", "application/zip"}
    assert "get" in paths["/api/v1/public/projects/{project_id}/parcels"]
