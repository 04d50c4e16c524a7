"""Surgical plans on a simulation case: a plan, its elements (screws, wires, cuts) and checks.

A plan belongs to the patient of its case. Every change bumps `version`, and every write says
which version it was made against, so two people editing one plan cannot overwrite each other
unseen. A plan is edited only while a draft; approving it supersedes the case's earlier approved
plan. Points are in the case frame (mm, `index * spacing_mm`; docs/architecture.md).
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.imaging.models import SimulationCase
from clinical_shell.records.models import Patient


class Plan(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        APPROVED = "approved", _("已批准")
        SUPERSEDED = "superseded", _("已被取代")

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="+", verbose_name=_("患者")
    )
    case = models.ForeignKey(
        SimulationCase, on_delete=models.PROTECT, related_name="plans", verbose_name=_("仿真病例")
    )
    title = models.CharField(_("标题"), max_length=200)
    status = models.CharField(
        _("状态"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    # incremented by every change to the plan or its elements (optimistic concurrency)
    version = models.PositiveIntegerField(_("版本"), default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("创建人"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("批准人"),
    )
    approved_at = models.DateTimeField(_("批准时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("手术规划")
        verbose_name_plural = _("手术规划")
        indexes: ClassVar = [
            models.Index(fields=["patient", "created_at"], name="plan_patient_created"),
        ]
        constraints: ClassVar = [
            # at most one approved plan per case: approving supersedes the earlier one
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(status="approved"),
                name="plan_one_approved_per_case",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"


class PlanElement(models.Model):
    class Kind(models.TextChoices):
        PEDICLE_SCREW = "pedicle_screw", _("椎弓根螺钉")
        DRILL_HOLE = "drill_hole", _("钻孔")
        K_WIRE = "k_wire", _("克氏针")
        GUIDE_WIRE = "guide_wire", _("导针")
        OSTEOTOMY_PLANE = "osteotomy_plane", _("截骨平面")
        BURR_REGION = "burr_region", _("磨钻区域")

    # the kinds that need an implant from the catalog (their size is the implant's)
    IMPLANT_KINDS: ClassVar = (Kind.PEDICLE_SCREW, Kind.K_WIRE, Kind.GUIDE_WIRE)

    plan = models.ForeignKey(
        Plan, on_delete=models.CASCADE, related_name="elements", verbose_name=_("规划")
    )
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices)
    label = models.CharField(_("标注"), max_length=100, blank=True)
    # [x, y, z] in the case frame [mm]
    entry_mm = models.JSONField(_("入点"))
    target_mm = models.JSONField(_("靶点"))
    implant_id = models.CharField(_("内植物"), max_length=64, blank=True)
    # an osteotomy's plane normal (unit vector, case frame); a burr region's radius [mm]
    plane_normal = models.JSONField(_("平面法向"), null=True, blank=True)
    radius_mm = models.FloatField(_("半径"), null=True, blank=True)
    # sim_core.plan_checks.ElementChecks.as_dict() of the element as last saved
    checks = models.JSONField(_("检查结果"), default=dict)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("规划要素")
        verbose_name_plural = _("规划要素")
        ordering: ClassVar = ["id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label}"


class Rehearsal(models.Model):
    """One element of an approved plan run at a station ("rehearse on station X"): the session
    the shell started for it, the plan it sent (the element paths, their digest) and, once the
    session's result is verified, the deviation report (`planning.deviation`)."""

    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="rehearsals", verbose_name=_("规划")
    )
    # the plan's version when it was sent (an approved plan changes no more; kept for the record)
    plan_version = models.PositiveIntegerField(_("规划版本"))
    element = models.ForeignKey(
        PlanElement, on_delete=models.PROTECT, related_name="+", verbose_name=_("规划要素")
    )
    session = models.OneToOneField(
        "stations.StationSession",
        on_delete=models.PROTECT,
        related_name="rehearsal",
        verbose_name=_("训练"),
    )
    # bridge.messages.PlanSpec.digest: the station signs it into the result
    plan_digest = models.CharField(_("规划摘要"), max_length=80)
    # bridge.messages.PlanSpec as sent (msgspec.to_builtins)
    spec = models.JSONField(_("发送的规划"))
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("发起人"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    # planning.deviation.deviation_report of the verified result; {} until then
    report = models.JSONField(_("偏差报告"), default=dict, blank=True)
    reported_at = models.DateTimeField(_("报告时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("规划演练")
        verbose_name_plural = _("规划演练")
        indexes: ClassVar = [
            models.Index(fields=["plan", "created_at"], name="rehearsal_plan_created"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} · {self.element_id} · {self.session_id}"
