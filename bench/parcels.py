"""Does one upload's overlap check stay fast as the registry fills up? The check of a 50-parcel upload
against 1,000 and against 100,000 parcels of live projects, p50/p95 and their ratio (target: p95 at 100k
≤ 2 × p95 at 1k).

    .venv/bin/python bench/parcels.py [--sizes 1000 100000] [--runs 60] [--admin-url URL] [--sqlite]

Creates a scratch PostgreSQL database (postgres@127.0.0.1, trust; --sqlite: a scratch SQLite file) with
the application's schema, a verified project per 100 stored parcels and one draft project in Longquan.
Stored parcels are 300 m squares on a regular grid over Lishui (317 × 317 cells, one square per cell);
the first size takes a random sample of the cells, the next adds the rest. The upload is 50 diamonds
(≈ 6 ha) in the gaps between stored squares near the middle of Longquan: it overlaps nothing, but each
diamond's bounding box meets the four squares around it where they are stored (at 100k, all of them), so
the exact test has as many candidates to clear as the density gives. Measured in this process (no HTTP):

- ``overlap``: the overlap checks alone (``overlaps_within`` + ``overlaps_with_others``: the candidate
  query on the bounding-box index, then Shapely's STRtree and exact intersections);
- ``upload``: the whole ``check_upload`` from the file's bytes (parsing, every validation, the overlaps).

The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import shapely  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from marketplace import create_app  # noqa: E402
from marketplace.extensions import db  # noqa: E402

GRID = 317
WEST, SOUTH, EAST, NORTH = 118.72, 27.45, 120.42, 28.92
CELL_LON, CELL_LAT = (EAST - WEST) / GRID, (NORTH - SOUTH) / GRID
SQUARE_LON, SQUARE_LAT = 0.0030, 0.0027     # ≈ 300 m
PARCELS_PER_PROJECT = 100


def say(message: str) -> None:
    print(message, flush=True)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def build_places(conn) -> None:
    x = conn.execute
    x(sa.text("INSERT INTO regions (id, parent_id, level, name, code) VALUES (1, NULL, 'province', '浙江省', '330000'), "
              "(2, 1, 'city', '丽水市', '331100'), (3, 2, 'county', '龙泉市', '331181'), (4, 3, 'township', '兰巨乡', NULL), "
              "(5, 4, 'village', '官埔垟村', NULL)"))
    x(sa.text("INSERT INTO organisations (id, kind, name, credit_code, created_at) VALUES "
              "(1, 'seller', '官埔垟村股份经济合作社', 'N2331181MF0000001X', CURRENT_TIMESTAMP)"))


def add_projects(conn, first_id: int, count: int, *, status: str, area: str = "1000") -> None:
    conn.execute(sa.text(
        "INSERT INTO projects (id, seller_organisation_id, village_id, name, area_hectares, forest_type, methodology, "
        "crediting_start, crediting_end, description, location, status, review_note, created_at) VALUES "
        "(:id, 1, 5, :name, :area, '杉木林', 'CCER-14-001-V01', '2020-01-01', '2040-12-31', '', '', :status, '', "
        "CURRENT_TIMESTAMP)"),
        [{"id": first_id + n, "name": f"项目{first_id + n}", "area": area, "status": status} for n in range(count)])


def add_parcels(conn, cells: list[tuple[int, int]], first_project: int) -> None:
    """One 300 m square per cell, 100 per project."""
    i = np.array([c[0] for c in cells], dtype=float)
    j = np.array([c[1] for c in cells], dtype=float)
    x0, y0 = WEST + i * CELL_LON, SOUTH + j * CELL_LAT
    boxes = shapely.box(x0, y0, x0 + SQUARE_LON, y0 + SQUARE_LAT)
    wkbs = shapely.to_wkb(boxes, hex=True)
    rows = [{"project_id": first_project + n // PARCELS_PER_PROJECT, "identifier": f"{int(a)}-{int(b)}",
             "wkb": wkb, "x0": float(p), "y0": float(q), "x1": float(p + SQUARE_LON), "y1": float(q + SQUARE_LAT)}
            for n, (a, b, wkb, p, q) in enumerate(zip(i, j, wkbs, x0, y0, strict=True))]
    statement = sa.text(
        "INSERT INTO project_parcels (project_id, identifier, forest_type, declared_area_ha, geodesic_area_ha, "
        "geometry_wkb, source_crs, vertex_count, min_lon, min_lat, max_lon, max_lat, created_at) VALUES "
        "(:project_id, :identifier, '杉木林', 9, 9, :wkb, 'EPSG:4326', 5, :x0, :y0, :x1, :y1, CURRENT_TIMESTAMP)")
    for start in range(0, len(rows), 5000):
        conn.execute(statement, rows[start:start + 5000])


def upload_document(centre: tuple[float, float], count: int = 50) -> dict:
    """``count`` diamonds, one where the gaps between four stored squares cross, around ``centre``. Each
    diamond's bounding box takes in a corner of each of the four squares (when they are stored), so those
    are candidates the exact test must clear, but the diamond itself touches none of them."""
    from marketplace.registry.parcels import geodesic_hectares

    ci, cj = int((centre[0] - WEST) / CELL_LON), int((centre[1] - SOUTH) / CELL_LAT)
    half_lon, half_lat = 0.0018, 0.0015
    features, side = [], int(count ** 0.5) + 1
    for n in range(count):
        a, b = ci + n % side, cj + n // side
        x = WEST + a * CELL_LON + SQUARE_LON + (CELL_LON - SQUARE_LON) / 2
        y = SOUTH + b * CELL_LAT + SQUARE_LAT + (CELL_LAT - SQUARE_LAT) / 2
        ring = [[x - half_lon, y], [x, y - half_lat], [x + half_lon, y], [x, y + half_lat], [x - half_lon, y]]
        features.append({"type": "Feature", "properties": {
            "identifier": f"U-{n + 1}", "forest_type": "杉木林",
            "declared_area_ha": str(geodesic_hectares(shapely.Polygon(ring)))},
            "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return {"type": "FeatureCollection", "features": features}


def measure(app, project_id: int, document: dict, runs: int) -> dict[str, list[float]]:
    from marketplace.registry import parcels
    from marketplace.registry.models import PROJECT_SHOWN, Project

    data = json.dumps(document).encode()
    samples = {"overlap": [], "upload": [], "candidates": []}
    with app.app_context():
        project = db.session.get(Project, project_id, options=PROJECT_SHOWN)
        checked = parcels.check_upload(db.session, project, "bench.geojson", data)  # warm-up (and proof it passes)
        for _ in range(3):
            parcels.overlaps_with_others(db.session, project.id, checked)
        for _ in range(runs):
            started = time.perf_counter()
            assert not parcels.overlaps_within(checked)
            assert not parcels.overlaps_with_others(db.session, project.id, checked)
            samples["overlap"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            parcels.check_upload(db.session, project, "bench.geojson", data)
            samples["upload"].append((time.perf_counter() - started) * 1000)
        samples["candidates"] = [len(parcels.candidates_near(db.session, [p.geometry.bounds for p in checked],
                                                             exclude_project_id=project.id))]
        db.session.rollback()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true", help="a scratch SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    if max(args.sizes) > GRID * GRID:
        parser.error(f"at most {GRID * GRID} parcels")

    scratch = tempfile.mkdtemp(prefix="tanhui-bench-parcels-")
    admin, name = None, f"tanhui_bench_parcels_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        url = f"sqlite:///{scratch}/bench.sqlite"
    else:
        admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": scratch,
                      "CELERY_BROKER_URL": "memory://", "RATELIMIT_STORAGE_URI": "memory://", "TESTING": True})
    results = {}
    try:
        with app.app_context():
            db.create_all()
            from marketplace.demo.parcels import county_anchor

            centre = county_anchor("龙泉市")
        document = upload_document(centre)
        area = sum(float(f["properties"]["declared_area_ha"]) for f in document["features"])
        cells = [(a, b) for a in range(GRID) for b in range(GRID)]
        random.Random(2026).shuffle(cells)
        with app.app_context(), db.engine.begin() as conn:
            build_places(conn)
            add_projects(conn, 1, 1, status="draft", area=f"{area:.2f}")
        stored, next_project = 0, 2
        for size in sorted(args.sizes):
            new = cells[stored:size]
            projects = -(-len(new) // PARCELS_PER_PROJECT)
            started = time.perf_counter()
            with app.app_context(), db.engine.begin() as conn:
                add_projects(conn, next_project, projects, status="verified")
                add_parcels(conn, new, next_project)
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("ANALYZE project_parcels"))
            stored, next_project = size, next_project + projects
            say(f"{size:,} parcels stored ({time.perf_counter() - started:.1f} s to add)")
            results[size] = measure(app, 1, document, args.runs)
            r = results[size]
            say(f"  candidates {r['candidates'][0]}; overlap p50 {percentile(r['overlap'], 50):.1f} ms "
                f"p95 {percentile(r['overlap'], 95):.1f} ms; whole upload check p50 {percentile(r['upload'], 50):.1f} ms "
                f"p95 {percentile(r['upload'], 95):.1f} ms")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    small, large = min(results), max(results)
    say(f"\n| check ({'SQLite' if args.sqlite else 'PostgreSQL'}, 50-parcel upload, n={args.runs}) | p50 {small:,} | "
        f"p95 {small:,} | p50 {large:,} | p95 {large:,} | p95 ratio |")
    say("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key, label in (("overlap", "overlap checks"), ("upload", "whole upload check")):
        a, b = results[small][key], results[large][key]
        say(f"| {label} | {percentile(a, 50):.1f} ms | {percentile(a, 95):.1f} ms | {percentile(b, 50):.1f} ms | "
            f"{percentile(b, 95):.1f} ms | {percentile(b, 95) / percentile(a, 95):.2f}× |")
    say(f"candidates read by the bounding-box query: {results[small]['candidates'][0]} at {small:,}, "
        f"{results[large]['candidates'][0]} at {large:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
