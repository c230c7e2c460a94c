"""The footprint report of an event: the figures the page shows, and the bilingual PDF.

Disclosure follows the guideline's order: boundary, activity data, factors with their sources,
emissions per category, reduction measures, and the remainder to offset.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import force_locale
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from marketplace.accounts.models import Organisation
from marketplace.core.db import utcnow
from marketplace.core.i18n import local_time, zone_label
from marketplace.core.pdf_fonts import cjk_font
from marketplace.core.quantities import UNITS_PER_TONNE, display_tonnes
from marketplace.footprint.models import CATEGORIES, ActivityLine, EmissionFactor, Event, ReductionMeasure
from marketplace.footprint.service import Breakdown, event_breakdown, event_lines, format_quantity
from marketplace.footprint.sources import BY_CODE

#: Category names for the PDF, both languages side by side (the PDF is one bilingual document).
CATEGORY_NAMES = {
    "transport": ("交通", "Transport"),
    "catering": ("餐饮", "Catering"),
    "accommodation": ("住宿", "Accommodation"),
    "venue": ("会场", "Venue"),
    "materials": ("会议资料", "Meeting materials"),
    "waste": ("废弃物处理", "Waste disposal"),
}
GUIDELINE_ZH = "生态环境部《大型活动碳中和实施指南（试行）》（2019）"
GUIDELINE_EN = "MEE Guideline for Carbon Neutrality of Large-scale Events (trial, 2019)"
ROUNDING_ZH = ("计算规则：每行排放量（千克）= 活动数据 × 排放因子，精确计算；每行折算为吨二氧化碳当量后"
               "四舍五入保留4位小数；分类合计与总量均为各行舍入值之和。")
ROUNDING_EN = ("Rule: each line's kg = activity data × factor, exact; each line in tCO2e is rounded half-up "
               "to 4 decimal places; category and event totals are sums of the rounded lines.")
BAR_COLOUR = colors.HexColor("#1f6f4a")


@dataclass
class EventReport:
    event: Event
    organisation: Organisation
    breakdown: Breakdown
    lines: list[ActivityLine]
    factors: list[EmissionFactor]
    reductions: list[ReductionMeasure]

    @property
    def total_units(self) -> int:
        return self.breakdown.total_units


def build_report(session: so.Session, event: Event) -> EventReport:
    """Everything the report discloses, from the stored lines (no recomputation with newer factors)."""
    lines = event_lines(session, event.id)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    lines = sorted(lines, key=lambda line: (order[line.category], line.id))
    factors = {line.factor.id: line.factor for line in lines}
    reductions = session.scalars(sa.select(ReductionMeasure).where(ReductionMeasure.event_id == event.id)
                                 .order_by(ReductionMeasure.id)
                                 .options(so.selectinload(ReductionMeasure.evidence))).all()
    return EventReport(event=event, organisation=session.get(Organisation, event.organisation_id),
                       breakdown=event_breakdown(session, event.id), lines=lines,
                       factors=sorted(factors.values(), key=lambda f: (order[f.category], f.code, f.version)),
                       reductions=reductions)


def source_names(code: str) -> tuple[str, str, str, str]:
    """A source's name and accounting basis in Chinese and in English (the PDF carries both)."""
    source = BY_CODE[code]
    with force_locale("zh_CN"):
        zh = (str(source.name), str(source.basis))
    with force_locale("en"):
        en = (str(source.name), str(source.basis))
    return zh[0], en[0], zh[1], en[1]


def _styles():
    font = cjk_font()
    base = ParagraphStyle("base", fontName=font, fontSize=9, leading=13, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=16, leading=22, spaceAfter=4),
        # A heading never ends a page: it moves to the next with what it introduces.
        "h2": ParagraphStyle("h2", parent=base, fontSize=12, leading=17, spaceBefore=10, spaceAfter=4,
                             keepWithNext=1),
        "body": base,
        # English words and codes in table cells break at spaces only ("passenger-km" stays whole);
        # the CJK rule above would break them anywhere.
        "latin": ParagraphStyle("latin", parent=base, wordWrap=None),
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10),
        "total": ParagraphStyle("total", parent=base, fontSize=13, leading=19, spaceBefore=8),
    }, font


def _table(rows, widths, font, *, header=True, numeric_columns=()):
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9fb0a7")),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e7f3ec")))
    for column in numeric_columns:
        style.append(("ALIGN", (column, 0), (column, -1), "RIGHT"))
    table.setStyle(TableStyle(style))
    return table


def _tick(units) -> str:
    """An axis tick in tonnes, as short as it is exact ("20", "2.5"): ticks are round numbers."""
    return f"{(Decimal(int(units)) / UNITS_PER_TONNE).normalize():,f}"


def _chart(report: EventReport, font) -> Drawing:
    drawing = Drawing(170 * mm, 66 * mm)
    chart = HorizontalBarChart()
    chart.x, chart.y = 38 * mm, 10 * mm
    chart.width, chart.height = 120 * mm, 52 * mm
    # Integer units drawn to scale; the exact figures are in the table beside it.
    chart.data = [[report.breakdown.by_category[c] for c in reversed(CATEGORIES)]]
    chart.categoryAxis.categoryNames = [f"{CATEGORY_NAMES[c][0]} {CATEGORY_NAMES[c][1]}" for c in reversed(CATEGORIES)]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 7.5
    chart.valueAxis.valueMin = 0
    # Tick labels in tonnes (the bars are integer units); the exact figures are on the bars and in the table.
    chart.valueAxis.visibleLabels = True
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = _tick
    drawing.add(String(chart.x + chart.width, 0, "tCO2e", fontName=font, fontSize=7, textAnchor="end"))
    chart.bars[0].fillColor = BAR_COLOUR
    chart.barLabelFormat = lambda units: display_tonnes(int(units))
    chart.barLabels.fontName = font
    chart.barLabels.fontSize = 7
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    drawing.add(chart)
    return drawing


def report_pdf(report: EventReport) -> bytes:
    """The bilingual (Chinese, English) PDF of an event's footprint."""
    styles, font = _styles()
    event = report.event

    def p(text, style="body"):
        return Paragraph(escape(str(text)).replace("\n", "<br/>"), styles[style])

    def both(zh, en):
        """A cell with its Chinese and its English on their own lines, each wrapped by its own rule."""
        return [p(zh), p(en, "latin")]

    story = [
        p("活动碳排放核算报告 · Event carbon footprint report", "title"),
        p(f"{event.name}", "h2"),
        p(f"生成时间 / Generated: {local_time(utcnow())} ({zone_label()})", "small"),
        _table([
            [p("主办方 / Organiser"), p(event.organiser or report.organisation.name)],
            [p("委托单位 / Buyer"), p(report.organisation.name)],
            [p("日期 / Dates"), p(f"{event.starts_on.isoformat()} – {event.ends_on.isoformat()}")],
            [p("地点 / Location"), p(event.location)],
            [p("参会人数 / Attendees"), p("—" if event.attendees is None else str(event.attendees))],
        ], [45 * mm, 125 * mm], font, header=False),
        p("1. 核算依据与边界 / Method and boundary", "h2"),
        p(f"依据{GUIDELINE_ZH}，排放量 = 活动数据 × 排放因子，分交通、餐饮、住宿、会场、会议资料、"
          f"废弃物处理六类核算；先减排，剩余排放通过碳汇抵消。"),
        p(f"Following the {GUIDELINE_EN}: emissions = activity data × emission factor, in six categories; "
          "reduce first, then offset the remainder."),
        p(f"核算边界 / Boundary: {event.boundary or '活动期间六类排放源 / the six categories during the event'}"),
        p(f"{ROUNDING_ZH} {ROUNDING_EN}", "small"),
        p("2. 分类排放量 / Emissions by category (tCO2e)", "h2"),
    ]
    rows = [[p("类别及排放源 / Category and source"), p("核算依据 / Accounting basis"), p("tCO2e"),
             p("占比 / Share")]]
    total = report.total_units

    def share(units):
        return f"{(Decimal(units) * 100 / total).quantize(Decimal('0.1'))}%" if total else "—"

    for category in CATEGORIES:
        units = report.breakdown.by_category[category]
        rows.append([p(" / ".join(CATEGORY_NAMES[category])), "", display_tonnes(units), share(units)])
        for code, source_units in report.breakdown.sources_in(category):
            name_zh, name_en, basis_zh, basis_en = source_names(code)
            rows.append([[p(f"　{name_zh}"), p(f"  {name_en}", "latin")],
                         [p(basis_zh, "small"), p(basis_en, "small")], display_tonnes(source_units),
                         share(source_units)])
    rows.append([p("合计 / Total"), "", display_tonnes(total), "100%" if total else "—"])
    story += [_table(rows, [55 * mm, 65 * mm, 28 * mm, 22 * mm], font, numeric_columns=(2, 3)),
              p("排放源及核算依据按指南列示；分类合计为其下各排放源之和。 Sources and their accounting basis as the "
                "guideline names them; each category is the sum of its sources.", "small"),
              Spacer(1, 4 * mm), _chart(report, font)]

    story.append(p("3. 活动数据 / Activity data", "h2"))
    rows = [[both("类别 · 排放源", "Category · source"), both("排放因子", "Factor"), both("活动数据", "Quantity"),
             both("千克/单位", "kgCO2e/unit"), p("tCO2e", "latin")]]
    for line in report.lines:
        factor = line.factor
        source_zh, source_en, _basis_zh, _basis_en = source_names(line.source)
        rows.append([
            [*both(*CATEGORY_NAMES[line.category]), p(source_zh, "small"), p(source_en, "small")],
            [p(factor.name_zh), p(f"{factor.name_en} ({factor.code} v{factor.version})", "latin"),
             *([p(line.description)] if line.description else [])],
            [p(format_quantity(line.quantity), "latin"), p(factor.unit, "latin")],
            str(factor.kgco2e_per_unit.normalize()),
            display_tonnes(line.emissions_units),
        ])
    if not report.lines:
        rows.append([p("—"), p("尚无活动数据 / No activity data yet"), "", "", ""])
    story.append(_table(rows, [28 * mm, 70 * mm, 30 * mm, 20 * mm, 22 * mm], font, numeric_columns=(3, 4)))

    story.append(p("4. 排放因子来源 / Emission factors and sources", "h2"))
    rows = [[both("因子", "Factor"), both("数值", "Value"), both("来源", "Source"), both("年份", "Year")]]
    for factor in report.factors:
        rows.append([p(f"{factor.code} v{factor.version}", "latin"),
                     p(f"{factor.kgco2e_per_unit.normalize()} kgCO2e/{factor.unit}", "latin"),
                     p(factor.source, "small"), str(factor.year)])
    story.append(_table(rows, [42 * mm, 30 * mm, 84 * mm, 14 * mm], font))

    story.append(p("5. 减排措施 / Reduction measures", "h2"))
    if report.reductions:
        rows = [[p("类别 / Category"), p("措施 / Measure"), p("估算减排量 / Estimated tCO2e"),
                 p("实际减排量 / Achieved tCO2e")]]
        for measure in report.reductions:
            evidence = [p(f"证据 / Evidence: {doc.title}", "small") for doc in measure.evidence]
            rows.append([p(" / ".join(CATEGORY_NAMES[measure.category])), [p(measure.description), *evidence],
                         "—" if measure.estimated_units is None else display_tonnes(measure.estimated_units),
                         "—" if measure.achieved_units is None else display_tonnes(measure.achieved_units)])
        story.append(_table(rows, [32 * mm, 86 * mm, 26 * mm, 26 * mm], font, numeric_columns=(2, 3)))
        story.append(p("减排估算仅作披露；上表排放量为实施措施后的实际排放，不再扣减。"
                       " Estimates are disclosed only: the footprint above is measured after the measures.",
                       "small"))
    else:
        story.append(p("未填报 / None entered."))

    story.append(p("6. 需抵消的排放量 / Emissions to offset", "h2"))
    story.append(p(f"{display_tonnes(total)} tCO2e", "total"))
    story.append(p("以经核证的林业碳汇注销抵消上述排放即可实现本次活动碳中和。"
                   " Retiring this quantity of verified forestry carbon-sink credits neutralises the event."))

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                                 bottomMargin=18 * mm, title=f"{event.name} — carbon footprint",
                                 author="Tanhui", subject="Event carbon footprint report")
    document.build(story)
    return buffer.getvalue()
