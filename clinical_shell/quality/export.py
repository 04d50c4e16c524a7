"""The indicator table as an Excel workbook (openpyxl): figures with the counts behind them, and
the definitions (numerator, denominator, exclusions, thresholds, source)."""

from datetime import date
from io import BytesIO

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from clinical_shell.quality import dashboard, selectors
from clinical_shell.quality.models import IndicatorDefinition, PeriodKind, Status

FILLS = {
    Status.ALARM: "FDECEA",
    Status.WARNING: "FFF4D6",
    Status.OK: "E3F4E8",
    Status.NO_DATA: "ECEFF3",
}


def figure_headers() -> list[str]:
    return [
        _("指标代码"),
        _("指标名称"),
        _("分组"),
        _("数值"),
        _("单位"),
        _("分子"),
        _("分母"),
        _("状态"),
        _("样本量小，结果不可靠"),
        _("目标值"),
        _("预警线"),
        _("报警线"),
        _("方向"),
    ]


def definition_headers() -> list[str]:
    return [
        _("指标代码"),
        _("中文名称"),
        _("英文名称"),
        _("定义(分子、分母、排除)"),
        _("计算方式"),
        _("单位"),
        _("方向"),
        _("目标值"),
        _("预警线"),
        _("报警线"),
        _("最小可靠分母"),
        _("来源"),
    ]


def _status_label(status: str) -> str:
    return str(Status(status).label)


def workbook(*, scope: dashboard.Scope, month: date, period_kind: str = PeriodKind.MONTH) -> bytes:
    figures = selectors.indicator_results(
        month=month, period_kind=period_kind, level=scope.level, key=scope.key
    )
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = _("指标")
    sheet.append([f"{scope.title} · {month:%Y-%m} · {PeriodKind(period_kind).label}"])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append(figure_headers())
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for f in figures:
        sheet.append(
            [
                f.code,
                dashboard.name_of(f),
                dashboard.group_title(dashboard.group_of(f.code)),
                f.value,
                f.unit,
                f.numerator,
                f.denominator,
                _status_label(f.status),
                "" if f.reliable or f.status == Status.NO_DATA else _("是"),
                f.target,
                f.warning,
                f.alarm,
                _("越高越好") if f.direction == "higher" else _("越低越好"),
            ]
        )
        sheet.cell(row=sheet.max_row, column=8).fill = PatternFill(
            "solid", fgColor=FILLS.get(Status(f.status), "FFFFFF")
        )
    sheet.freeze_panes = "C3"
    for index, width in enumerate([28, 40, 18, 10, 8, 8, 8, 10, 14, 10, 10, 10, 12], start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width

    definitions = book.create_sheet(_("指标定义"))
    definitions.append(definition_headers())
    for cell in definitions[1]:
        cell.font = Font(bold=True)
    for d in IndicatorDefinition.objects.filter(active=True).order_by("code"):
        definitions.append(
            [
                d.code,
                d.name_zh,
                d.name_en,
                d.description,
                d.aggregate,
                d.unit,
                d.direction,
                d.target,
                d.warning,
                d.alarm,
                d.min_denominator,
                d.source_note,
            ]
        )
    for index, width in enumerate([28, 32, 40, 80, 14, 8, 8, 8, 8, 8, 10, 40], start=1):
        definitions.column_dimensions[get_column_letter(index)].width = width
    out = BytesIO()
    book.save(out)
    return out.getvalue()
