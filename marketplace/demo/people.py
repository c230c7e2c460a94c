"""The demo's organisations and people (everyone shares one password, printed by seed-demo)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.accounts import service as accounts
from marketplace.accounts.credit_code import complete_credit_code
from marketplace.accounts.models import Organisation, User

#: Everyone shares this password in the demo; it is printed by `marketplace seed-demo`.
DEMO_PASSWORD = "tanhui-demo-2026"  # noqa: S105 — demo data, printed on purpose


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    kind: str
    name: str
    name_en: str
    code17: str  # the first 17 characters of the credit code; the check character is computed
    email: str
    person: str


ORGANISATIONS = [
    DemoOrganisation("bureau", "bureau", "丽水市生态环境局", "Lishui Ecology and Environment Bureau",
                     "11331100MB1957432", "bureau@lishui.example", "李敏"),
    DemoOrganisation("guanpuyang", "seller", "龙泉市兰巨乡官埔垟村股份经济合作社",
                     "Guanpuyang Village Joint-stock Economic Cooperative, Lanju, Longquan",
                     "N2331181MF3108675", "guanpuyang@lishui.example", "叶建国"),
    DemoOrganisation("summit", "buyer", "第十届“智汇丽水”人才科技峰会组委会",
                     "Organising Committee of the 10th Zhihui Lishui Talent & Technology Summit",
                     "11331100MB2648031", "summit@lishui.example", "周晓"),
    DemoOrganisation("province", "buyer", "浙江省机关事务管理局", "Zhejiang Government Offices Administration",
                     "11330000002482168", "province@zj.example", "王磊"),
    DemoOrganisation("hangzhou", "buyer", "杭州市生态环境局", "Hangzhou Ecology and Environment Bureau",
                     "11330100MB1745923", "hangzhou@zj.example", "陈静"),
    DemoOrganisation("jinhua", "buyer", "金华市生态环境局", "Jinhua Ecology and Environment Bureau",
                     "11330700MB1863347", "jinhua@zj.example", "吴涛"),
    DemoOrganisation("jiaxing", "buyer", "嘉兴市生态环境局", "Jiaxing Ecology and Environment Bureau",
                     "11330400MB1592276", "jiaxing@zj.example", "沈洁"),
    # the platform operator the bureau delegates its settlement work to (statements, payouts, fapiao)
    DemoOrganisation("operator", "operator", "丽水两山生态产品运营有限公司",
                     "Lishui Two Mountains Ecological Products Operating Co.",
                     "91331100MA2E7C3X1", "operator@lishui.example", "郑慧"),
]


@dataclass
class DemoContext:
    session: so.Session
    organisations: dict[str, Organisation]
    users: dict[str, User]
    say: Callable[[str], None]


def ensure_organisation(session: so.Session, spec: DemoOrganisation) -> Organisation:
    org = session.scalar(sa.select(Organisation).where(Organisation.name == spec.name))
    if org is None:
        org = accounts.create_organisation(session, kind=spec.kind, name=spec.name, name_en=spec.name_en,
                                           credit_code=complete_credit_code(spec.code17),
                                           contact_email=spec.email)
    return org


def ensure_user(session: so.Session, org: Organisation, email: str, person: str) -> User:
    user = session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = accounts.create_user(session, organisation_id=org.id, email=email, password=DEMO_PASSWORD,
                                    display_name=person)
    return user


def seed_people(ctx: DemoContext) -> None:
    for spec in ORGANISATIONS:
        org = ensure_organisation(ctx.session, spec)
        ctx.organisations[spec.key] = org
        ctx.users[spec.key] = ensure_user(ctx.session, org, spec.email, spec.person)
    ctx.say(f"organisations and users: {len(ORGANISATIONS)}")


#: Event footprints in integer units (1 unit = 0.0001 tCO2e), by buyer key. The summit's is the story's
#: 175.402 t; the other four buyers' events add up to the story's 629.9914 t. Orders seeding reuses these.
