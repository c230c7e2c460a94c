"""Demo registry: Lishui's regions, Guanpuyang's verified project and other villages' projects, their
batches and listings — built through the registry services, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from io import BytesIO

import sqlalchemy as sa
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from marketplace.core.pdf_fonts import cjk_font
from marketplace.core.quantities import parse_tonnes
from marketplace.demo.people import ORGANISATIONS, DemoOrganisation, ensure_organisation, ensure_user
from marketplace.registry import service as registry
from marketplace.registry.models import CreditBatch, Listing, Project, Region

#: 丽水市 and its counties (administrative division codes).
LISHUI_COUNTIES = [
    ("331102", "莲都区", "Liandu"), ("331121", "青田县", "Qingtian"), ("331122", "缙云县", "Jinyun"),
    ("331123", "遂昌县", "Suichang"), ("331124", "松阳县", "Songyang"), ("331125", "云和县", "Yunhe"),
    ("331126", "庆元县", "Qingyuan"), ("331127", "景宁畲族自治县", "Jingning"), ("331181", "龙泉市", "Longquan"),
]


@dataclass(frozen=True)
class DemoProject:
    seller: DemoOrganisation
    county_code: str
    township: tuple[str, str]
    village: tuple[str, str]
    name: str
    hectares: str
    forest_type: str
    methodology: str
    batch_tonnes: str
    vintage: int
    listing_tonnes: str
    price: str
    #: the batch's labels (the bureau's at issuance): scheme, and whether it may count for a large event
    scheme: str = "zhejiang_forestry"
    event_eligible: bool = True


def _seller(key, name, name_en, code17, email, person):
    return DemoOrganisation(key, "seller", name, name_en, code17, email, person)


GUANPUYANG = DemoProject(
    seller=next(o for o in ORGANISATIONS if o.key == "guanpuyang"),
    county_code="331181", township=("兰巨乡", "Lanju"), village=("官埔垟村", "Guanpuyang"),
    name="官埔垟村森林经营碳汇项目", hectares="1436.80", forest_type="杉木、马尾松针阔混交林",
    methodology="CCER-14-001-V01 造林碳汇", batch_tonnes="2000", vintage=2023, listing_tonnes="1500",
    price="36.00")

PROJECTS = [
    GUANPUYANG,
    DemoProject(
        seller=_seller("qiaoxi", "遂昌县王村口镇桥西村股份经济合作社", "Qiaoxi Village Cooperative, Suichang",
                       "N2331123MF2047713", "qiaoxi@lishui.example", "华丽娟"),
        county_code="331123", township=("王村口镇", "Wangcunkou"), village=("桥西村", "Qiaoxi"),
        name="桥西村竹林经营碳汇项目", hectares="812.40", forest_type="毛竹林",
        methodology="CCER-14-002-V01 竹林经营碳汇", batch_tonnes="900", vintage=2023, listing_tonnes="600",
        price="32.50"),
    DemoProject(
        seller=_seller("zhailang", "庆元县百山祖镇斋郎村股份经济合作社", "Zhailang Village Cooperative, Qingyuan",
                       "N2331126MF1953316", "zhailang@lishui.example", "吴春生"),
        county_code="331126", township=("百山祖镇", "Baishanzu"), village=("斋郎村", "Zhailang"),
        name="斋郎村森林经营碳汇项目", hectares="1024.00", forest_type="常绿阔叶林",
        methodology="CCER-14-001-V01 造林碳汇", batch_tonnes="800", vintage=2022, listing_tonnes="500",
        price="38.00", scheme="lishui_inclusive", event_eligible=False),
    DemoProject(
        seller=_seller("dajun", "景宁畲族自治县大均乡大均村股份经济合作社", "Dajun Village Cooperative, Jingning",
                       "N2331127MF1182749", "dajun@lishui.example", "蓝志明"),
        county_code="331127", township=("大均乡", "Dajun"), village=("大均村", "Dajun"),
        name="大均村生态公益林碳汇项目", hectares="655.30", forest_type="针阔混交林",
        methodology="CCER-14-001-V01 造林碳汇", batch_tonnes="600", vintage=2023, listing_tonnes="400",
        price="34.00"),
]


def seed_regions(ctx) -> None:
    s = ctx.session
    province = registry.ensure_region(s, level="province", name="浙江省", code="330000", name_en="Zhejiang")
    city = registry.ensure_region(s, level="city", name="丽水市", parent=province, code="331100", name_en="Lishui")
    for code, name, name_en in LISHUI_COUNTIES:
        registry.ensure_region(s, level="county", name=name, parent=city, code=code, name_en=name_en)
    ctx.say(f"regions: Lishui and its {len(LISHUI_COUNTIES)} counties")


def _village(session, spec: DemoProject) -> Region:
    county = session.scalar(sa.select(Region).where(Region.code == spec.county_code))
    township = registry.ensure_region(session, level="township", name=spec.township[0], parent=county,
                                      name_en=spec.township[1])
    return registry.ensure_region(session, level="village", name=spec.village[0], parent=township,
                                  name_en=spec.village[1])


def seed_projects(ctx) -> None:
    """Each village's project verified, one batch issued, part of it listed."""
    s = ctx.session
    bureau_user = ctx.users["bureau"]
    for spec in PROJECTS:
        seller_org = ensure_organisation(s, spec.seller)
        seller_user = ctx.users.get(spec.seller.key) or ensure_user(s, seller_org, spec.seller.email,
                                                                    spec.seller.person)
        ctx.organisations[spec.seller.key], ctx.users[spec.seller.key] = seller_org, seller_user
        project = s.scalar(sa.select(Project).where(Project.name == spec.name))
        if project is None:
            project = registry.create_project(
                s, actor=seller_user, village_id=_village(s, spec).id, name=spec.name, area_hectares=spec.hectares,
                forest_type=spec.forest_type, methodology=spec.methodology, crediting_start=date(2016, 1, 1),
                crediting_end=date(2045, 12, 31),
                description="以村集体林地为单元开展森林经营，经第三方审定核证后的林业碳汇减排量。",
                location=f"{spec.township[0]}{spec.village[0]}集体林地")
            registry.add_document(s, project, actor=seller_user, kind="verification_statement",
                                  filename=f"{spec.village[0]}核证报告.pdf", data=demo_pdf(spec.name))
            registry.transition_project(s, project, "submitted", actor=seller_user)
            registry.transition_project(s, project, "verified", actor=bureau_user,
                                        note="材料齐全，监测报告与核证声明一致。")
        batch = s.scalar(sa.select(CreditBatch).where(CreditBatch.project_id == project.id))
        if batch is None:
            batch = registry.issue_batch(
                s, project, actor=bureau_user, quantity_units=parse_tonnes(spec.batch_tonnes),
                vintage_start=date(spec.vintage, 1, 1), vintage_end=date(spec.vintage, 12, 31),
                verification_body="中环联合（北京）认证中心有限公司",
                report_reference=f"CEC-FC-{spec.vintage}-{spec.county_code}", scheme=spec.scheme,
                methodology_code=spec.methodology.split()[0].rsplit("-", 1)[0],
                methodology_version=spec.methodology.split()[0].rsplit("-", 1)[1], event_eligible=spec.event_eligible)
        if s.scalar(sa.select(Listing.id).where(Listing.batch_id == batch.id)) is None:
            registry.create_listing(s, batch, actor=seller_user, units=parse_tonnes(spec.listing_tonnes),
                                    price_cny_per_tonne=Decimal(spec.price), min_order_units=parse_tonnes("1"))
    ctx.say(f"projects verified, issued and listed: {len(PROJECTS)} villages")


def demo_pdf(title: str) -> bytes:
    """A small real PDF standing in for the verification statement."""
    buffer = BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    font = cjk_font()
    pdf.setFont(font, 16)
    pdf.drawString(72, 770, f"{title} 核证声明（演示）")
    pdf.setFont(font, 11)
    pdf.drawString(72, 740, "本文件为演示数据，由 marketplace seed-demo 生成。")
    pdf.save()
    return buffer.getvalue()
