"""Training modules (a scenario on a case), curricula, groups and assignments.

Scores are not stored here: progress is read from the stations app's results, of which only
those verified by replay count as passes (`stations.selectors.verified_scores`).
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution


class Module(models.Model):
    """A scenario from assets/scenarios on one case, with its pass threshold and attempts."""

    class CaseKind(models.TextChoices):
        TEACHING = "teaching", _("教学病例")
        PATIENT = "patient", _("患者病例")

    code = models.SlugField(max_length=48, unique=True)
    title = models.CharField(max_length=128)
    title_en = models.CharField(max_length=160, blank=True)
    scenario = models.CharField(max_length=64)
    case_kind = models.CharField(max_length=12, choices=CaseKind.choices)
    # the case bundle's content hash (what sessions and recordings name); its readable name
    case_content_hash = models.CharField(max_length=80)
    case_label = models.CharField(max_length=128, blank=True)
    pass_score = models.FloatField()
    # 0: unlimited
    attempts_allowed = models.PositiveSmallIntegerField(default=0)
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="unlocks"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["code"]

    def __str__(self) -> str:
        return self.title

    @property
    def display_title(self) -> str:
        if self.title_en and (get_language() or "").startswith("en"):
            return self.title_en
        return self.title


class Curriculum(models.Model):
    class Level(models.TextChoices):
        RESIDENT_Y1 = "resident_y1", _("住院医师第一年")
        RESIDENT_Y2 = "resident_y2", _("住院医师第二年")
        RESIDENT_Y3 = "resident_y3", _("住院医师第三年")
        ATTENDING = "attending", _("主治医师")
        TECHNIQUE = "technique", _("专项技术")

    code = models.SlugField(max_length=48, unique=True)
    name = models.CharField(max_length=128)
    name_en = models.CharField(max_length=160, blank=True)
    level = models.CharField(max_length=16, choices=Level.choices)
    # for a technique curriculum: the credentialing technique code it prepares for
    technique_code = models.CharField(max_length=48, blank=True)
    modules = models.ManyToManyField(Module, through="CurriculumModule", related_name="curricula")

    class Meta:
        ordering: ClassVar = ["level", "code"]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class CurriculumModule(models.Model):
    curriculum = models.ForeignKey(Curriculum, on_delete=models.CASCADE, related_name="entries")
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering: ClassVar = ["position", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["curriculum", "module"], name="curriculum_module_once")
        ]


class TrainingGroup(models.Model):
    """A cohort of trainees and their instructors (e.g. this year's orthopedic residents)."""

    name = models.CharField(max_length=128)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    instructors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    trainees = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="training_groups")

    class Meta:
        ordering: ClassVar = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Assignment(models.Model):
    """An instructor assigns a module to a trainee, due by a date. Attempts count from here."""

    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="assignments")
    trainee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(
        TrainingGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="assignments"
    )
    curriculum = models.ForeignKey(
        Curriculum, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField()
    due_on = models.DateField()

    class Meta:
        ordering: ClassVar = ["due_on", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["module", "trainee"], name="assignment_once")
        ]
