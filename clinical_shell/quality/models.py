"""Quality indicators as data, clinical facts they need, stored results, warnings.

An indicator's numerator and denominator are a declarative `spec` (see indicators/spec.py), turned
into aggregate ORM queries by indicators/engine.py: nothing here is computed row by row in Python.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.records.models import Encounter, Procedure


class Direction(models.TextChoices):
    HIGHER = "higher", _("越高越好")
    LOWER = "lower", _("越低越好")


class Aggregate(models.TextChoices):
    RATE = "rate", _("比率")
    MEDIAN_MINUTES = "median_minutes", _("中位时间(分钟)")
    COUNT = "count", _("例数")


class Level(models.TextChoices):
    INSTITUTION = "institution", _("机构")
    COUNTY = "county", _("县市")
    PREFECTURE = "prefecture", _("全州")
    SURGEON = "surgeon", _("术者")


class PeriodKind(models.TextChoices):
    MONTH = "month", _("月")
    ROLLING_12 = "rolling12", _("滚动12个月")


class Status(models.TextChoices):
    OK = "ok", _("正常")
    WARNING = "warning", _("预警")
    ALARM = "alarm", _("报警")
    NO_DATA = "no_data", _("暂无数据")


class IndicatorDefinition(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name_zh = models.CharField(max_length=128)
    name_en = models.CharField(max_length=160)
    description = models.TextField(blank=True, help_text="numerator, denominator, exclusions")
    source_note = models.CharField(max_length=300, blank=True)
    # declarative numerator/denominator/inclusion/exclusion: indicators/spec.py
    spec = models.JSONField()
    aggregate = models.CharField(max_length=16, choices=Aggregate.choices)
    unit = models.CharField(max_length=16, help_text="%, min, h, cases")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    per_surgeon = models.BooleanField(default=False)
    target = models.FloatField(null=True, blank=True)
    warning = models.FloatField(null=True, blank=True)
    alarm = models.FloatField(null=True, blank=True)
    # a figure on fewer cases than this is shown but marked not reliable, and raises no warning
    min_denominator = models.PositiveIntegerField(default=20)
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["code"]

    def __str__(self) -> str:
        return self.code


class ThresholdChange(models.Model):
    """History of the thresholds the quality office set (also in the audit chain)."""

    indicator = models.ForeignKey(
        IndicatorDefinition, on_delete=models.PROTECT, related_name="threshold_changes"
    )
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    changed_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField()
    after = models.JSONField()
    reason = models.CharField(max_length=300)


class FactKind(models.TextChoices):
    ARRIVAL = "arrival", _("到达医院(首家医院)")
    SURGERY_START = "surgery_start", _("手术开始")
    ORTHOGERIATRIC_ASSESSMENT = "orthogeriatric_assessment", _("老年骨科评估")
    MOBILISED = "mobilised", _("术后首次下床")
    NON_OPERATIVE = "non_operative", _("非手术治疗")
    TRANSFERRED_OUT = "transferred_out", _("转往他院")
    CLEAN_INCISION = "clean_incision", _("Ⅰ类切口")
    SSI_30D = "ssi_30d", _("30天内手术部位感染")
    DEATH_30D = "death_30d", _("术后30天内死亡")
    UNPLANNED_REOPERATION = "unplanned_reoperation", _("非计划再次手术")
    REHAB_FIRST_SESSION = "rehab_first_session", _("首次康复治疗")
    SEVERE_TRAUMA = "severe_trauma", _("严重创伤(ISS≥16/RTS<11/创伤性休克)")


class ClinicalFact(models.Model):
    """A timed clinical fact against an encounter that the records do not otherwise hold."""

    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="+")
    procedure = models.ForeignKey(
        Procedure, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=FactKind.choices)
    occurred_at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True, help_text="e.g. ISS")
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["encounter", "kind"], name="clinical_fact_once")
        ]
        indexes: ClassVar = [models.Index(fields=["kind", "encounter"], name="fact_kind_enc")]


class IndicatorResult(models.Model):
    """One figure: an indicator over one period for one scope, with the counts behind it."""

    indicator = models.ForeignKey(
        IndicatorDefinition, on_delete=models.CASCADE, related_name="results"
    )
    period_kind = models.CharField(max_length=12, choices=PeriodKind.choices)
    # first day of the month (a rolling-12 result: of the last month in its window)
    period_start = models.DateField()
    level = models.CharField(max_length=12, choices=Level.choices)
    # institution id, county name, "all", or person id (surgeon)
    scope_key = models.CharField(max_length=64)
    numerator = models.IntegerField(null=True)
    denominator = models.IntegerField()
    value = models.FloatField(null=True)
    reliable = models.BooleanField()
    status = models.CharField(max_length=8, choices=Status.choices)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["indicator", "period_kind", "period_start", "level", "scope_key"],
                name="indicator_result_unique",
            )
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["level", "scope_key", "period_kind", "period_start"], name="result_scope"
            )
        ]


class WarningKind(models.TextChoices):
    THRESHOLD_WARNING = "threshold_warning", _("指标越过预警线")
    THRESHOLD_ALARM = "threshold_alarm", _("指标越过报警线")
    PRIVILEGE_OVERRIDE = "privilege_override", _("紧急越权手术")
    DEATH_AFTER_KEY_OPERATION = "death_after_key_op", _("重点手术后30天内死亡")


class WarningStatus(models.TextChoices):
    OPEN = "open", _("待处理")
    ACKNOWLEDGED = "acknowledged", _("已确认")
    CLOSED = "closed", _("已关闭")


class QualityWarning(models.Model):
    kind = models.CharField(max_length=24, choices=WarningKind.choices)
    # what it is about: "<indicator>:<level>:<scope>" or "booking:<id>" / "fact:<id>"
    cause = models.CharField(max_length=160)
    period_start = models.DateField()
    indicator = models.ForeignKey(
        IndicatorDefinition, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    institution = models.ForeignKey(
        Institution, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # both languages are written when it is raised: names of indicators and places are data
    summary = models.CharField(max_length=300)
    summary_en = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=16, choices=WarningStatus.choices, default=WarningStatus.OPEN
    )
    raised_at = models.DateTimeField()
    due_at = models.DateTimeField()
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    action_note = models.TextField(blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            # never raised twice for the same period and cause
            models.UniqueConstraint(
                fields=["kind", "cause", "period_start"], name="quality_warning_once"
            )
        ]
        indexes: ClassVar = [models.Index(fields=["status", "due_at"], name="warning_due")]

    @property
    def shown_summary(self) -> str:
        """The summary in the language of the request (English falls back to Chinese)."""
        if (translation.get_language() or "").startswith("en") and self.summary_en:
            return self.summary_en
        return self.summary
