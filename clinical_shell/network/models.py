"""Institutions (center, county hospitals, township health centres), departments, people, roles."""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Institution(models.Model):
    class Level(models.TextChoices):
        CENTER = "center", _("州级中心医院")
        COUNTY = "county", _("县级医院")
        TOWNSHIP = "township", _("乡镇卫生院")

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=128)
    level = models.CharField(max_length=16, choices=Level.choices)
    county = models.CharField(max_length=32, help_text="县市名, e.g. 双柏县")
    # county hospitals point at the prefecture center, township centres at their county hospital
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # shown on English pages; empty: the Chinese name is shown there too
    name_en = models.CharField(max_length=128, blank=True)
    # WGS-84 degrees, where the quality map draws it; None: quality.geography's demo table, or
    # listed beside the map
    longitude = models.FloatField(null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    # a closed or merged institution keeps its rows (records and the log name it)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["level", "code"]

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="departments"
    )
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    # 科主任: answers for the department's escalations (overdue referrals, quality warnings)
    head = models.ForeignKey(
        "Person",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="headed_departments",
    )

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["institution", "code"], name="department_code_unique")
        ]

    def __str__(self) -> str:
        return f"{self.institution.name} {self.name}"


class Person(models.Model):
    """A member of staff; signs in through the linked Django user."""

    class Title(models.TextChoices):
        CHIEF_PHYSICIAN = "chief", _("主任医师")
        ASSOCIATE_CHIEF = "associate_chief", _("副主任医师")
        ATTENDING = "attending", _("主治医师")
        RESIDENT = "resident", _("住院医师")
        ASSISTANT = "assistant", _("医士")
        CHARGE_NURSE = "charge_nurse", _("主管护师")
        NURSE = "nurse", _("护士")
        TECHNICIAN = "technician", _("技师")
        NONE = "none", _("无职称")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="person"
    )
    full_name = models.CharField(max_length=64)
    title = models.CharField(max_length=32, choices=Title.choices, default=Title.NONE)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.full_name


class Role(models.TextChoices):
    SURGEON = "surgeon", _("外科医生")
    RESIDENT = "resident", _("住院医师")
    NURSE = "nurse", _("护士")
    RADIOLOGIST = "radiologist", _("放射科医生")
    TOWNSHIP_DOCTOR = "township_doctor", _("乡镇医生")
    QUALITY_MANAGER = "quality_manager", _("质控管理员")
    COMMITTEE_MEMBER = "committee_member", _("资格审核委员")
    ADMINISTRATOR = "administrator", _("系统管理员")


# roles that treat patients and so may open records where their institution has a care relationship
CLINICAL_ROLES = frozenset(
    {Role.SURGEON, Role.RESIDENT, Role.NURSE, Role.RADIOLOGIST, Role.TOWNSHIP_DOCTOR}
)
# roles that may write clinical records (a radiologist reports on images, not encounters)
RECORD_WRITER_ROLES = frozenset({Role.SURGEON, Role.RESIDENT, Role.NURSE, Role.TOWNSHIP_DOCTOR})


class Membership(models.Model):
    """A person holds a role at an institution; one person may work at several institutions."""

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="memberships")
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="memberships"
    )
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["person", "institution", "role"], name="membership_person_inst_role_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.person} @ {self.institution} ({self.role})"
